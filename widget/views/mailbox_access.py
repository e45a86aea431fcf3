"""Whether a user's explicit action may go to their Exchange mailbox now, and what a refused password does.

Shared by the views that act on the mailbox for the user (meetings, tasks), as emails.py does for sending: a
password Exchange refused is never tried again (a retried wrong password is how accounts get locked out).
"""

from __future__ import annotations

from typing import Any

from .. import service_account, settings


def mailbox_problem(user: Any, current: settings.WidgetSettings) -> str | None:
    """Why the widget will not reach `user`'s mailbox now, in words; None when it may try."""
    return user.mailbox_unreachable_reason(current.impersonation, service_account.refused())


def note_refused_password(user: Any, problem: Any) -> None:
    """After an ExchangeProblem: a refused password is never tried again (see User.note_refusal)."""
    user.note_refusal(problem.refused_credentials)


# What the user's own action met in Exchange, as an HTTP status: the item's state (changed or deleted meanwhile, or
# the sync type forbids writing) is a conflict the user can see and act on; anything else is Exchange being
# unavailable.
_CONFLICTS = ("conflict", "gone", "read_only", "credentials", "locked", "service_refused")


def status_for(problem: Any) -> int:
    """The HTTP status of a response that shows an ExchangeProblem's message."""
    return 409 if problem.kind in _CONFLICTS else 503
