"""Whether a user's explicit action may go to their Exchange mailbox now, and what a refused password does.

Shared by the views that act on the mailbox for the user (meetings, tasks), as emails.py does for sending: a
password Exchange refused is never tried again (a retried wrong password is how accounts get locked out).
"""

from __future__ import annotations

from typing import Any

from .. import settings
from ..extensions import db
from ..models import UserStatus


def mailbox_problem(user: Any, current: settings.WidgetSettings) -> str | None:
    """Why the widget will not reach `user`'s mailbox now, in words; None when it may try."""
    if user.is_admin and not user.has_password:
        return "Administrators have no Exchange mailbox in the widget: sign in as a user to do this."
    if user.has_password and user.status == UserStatus.NEEDS_PASSWORD:
        return "Exchange no longer accepts your stored password. Update your password, then try again."
    if not user.has_password and not current.impersonation:
        return "Authorize with your Exchange password first."
    return None


def note_refused_password(user: Any, problem: Any) -> None:
    """After an ExchangeProblem: a refused password pauses the account until the user gives a new one (as the
    sync does)."""
    if problem.kind in ("credentials", "locked") and user.has_password:
        user.status = UserStatus.NEEDS_PASSWORD
        user.sync_due_at = None
        db.session.commit()


# What the user's own action met in Exchange, as an HTTP status: the item's state (changed or deleted meanwhile, or
# the sync type forbids writing) is a conflict the user can see and act on; anything else is Exchange being
# unavailable.
_CONFLICTS = ("conflict", "gone", "read_only", "credentials", "locked")


def status_for(problem: Any) -> int:
    """The HTTP status of a response that shows an ExchangeProblem's message."""
    return 409 if problem.kind in _CONFLICTS else 503
