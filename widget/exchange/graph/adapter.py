"""The Microsoft Graph adapter of the mailbox port (Exchange Online): one GraphClient for the mailbox, with the mail
half (mail.py), the calendar and To Do half (calendar.py) and scheduling (scheduling.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..values import Availability
from .calendar import GraphCalendar
from .client import GraphClient, GraphConfig
from .mail import BODY_BATCH, GraphMail
from .scheduling import free_busy, resolve_people


class GraphMailboxPort(GraphMail, GraphCalendar):
    """A user's mailbox over Graph with the application's own access (application permissions)."""

    bodies_per_request = BODY_BATCH

    def __init__(self, config: GraphConfig, mailbox: str, *, history_days: int = 30):
        self.client = GraphClient(config, mailbox)
        self.address = self.client.mailbox
        self.history_days = history_days  # how far back the calendar's delta window reaches (see calendar.py)

    @property
    def requests(self) -> int:  # type: ignore[override]
        """Graph requests made so far through this port (token requests are msal's, and not counted)."""
        return self.client.requests

    def free_busy(self, people: Sequence[str], start: datetime, end: datetime) -> Availability:
        """The owner's and `people`'s free/busy: ONE getSchedule request."""
        return free_busy(self.client, people, start, end)

    def resolve_people(self, query: str) -> list[tuple[str, str]]:
        """People of the directory: ONE request."""
        return resolve_people(self.client, query)

    def check_inbox(self) -> None:
        """Read the Inbox folder: proves the token, the permission and the reach of the app (ExchangeProblem if
        not)."""
        self.client.get("mailFolders/inbox", params={"$select": "id,displayName"})
