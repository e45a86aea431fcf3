"""The EWS adapter of the mailbox port (Exchange Server 2016, 2019, Subscription Edition): one exchangelib Account,
with the mail half (mailbox.py), the calendar and tasks half (calendar.py) and scheduling (scheduling.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..values import Availability
from .calendar import EwsCalendar
from .mailbox import BODY_BATCH, EwsMail
from .scheduling import free_busy, resolve_people


class EwsMailboxPort(EwsMail, EwsCalendar):
    """A user's mailbox over EWS: the user's own credentials, or the service account impersonating them."""

    bodies_per_request = BODY_BATCH

    def free_busy(self, people: Sequence[str], start: datetime, end: datetime) -> Availability:
        """The owner's and `people`'s free/busy: ONE GetUserAvailability request."""
        self.requests += 1
        return free_busy(self.account, people, start, end)

    def resolve_people(self, query: str) -> list[tuple[str, str]]:
        """People of the directory: ONE ResolveNames request."""
        self.requests += 1
        return resolve_people(self.account, query)
