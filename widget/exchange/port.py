"""The mailbox port: what the widget asks of a user's mailbox, whatever the backend (EWS, Microsoft Graph).

Every adapter implements this interface in its own subpackage and is the only code that speaks its protocol.
Callers get the port's values (widget/exchange/values.py) and its exceptions (widget/exchange/problems.py):
ExchangeProblem for a mailbox that cannot be used (its `kind` says why), SyncStateInvalid for a sync state the
server no longer knows, EditConflict for an item changed meanwhile, ItemGone for an item no longer there. Folders
are named by the widget's words (inbox, sentitems, calendar, tasks, or a folder's display name); sync states are
opaque strings the caller stores and gives back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from .values import (
    Availability,
    ChangesPage,
    Event,
    EventFields,
    MessageBody,
    MessageSummary,
    SyncPage,
    TaskData,
    TaskFields,
)


class MailboxPort(Protocol):
    """One user's mailbox."""

    address: str  # the mailbox's primary address, lower-cased
    requests: int  # requests made so far through this port (the sync history shows them)
    bodies_per_request: int  # how many message bodies one request fetches at most

    # -- mail -------------------------------------------------------------------------------------------------------
    def sync_page(self, folder: str, sync_state: str | None) -> SyncPage:
        """The next page of a mail folder's changes since `sync_state` (None: from the start)."""
        ...

    def bodies(self, item_ids: Iterable[str]) -> Iterator[tuple[str, MessageBody | None]]:
        """Bodies and attachment names of messages; None for a message gone meanwhile."""
        ...

    def messages_with(self, folder: str, address: str, since: datetime) -> list[MessageSummary]:
        """The messages of a mail folder received since `since` that `address` sent or received (a search of the
        mailbox, restricted to that address: a catch-up for an address the directory just learnt)."""
        ...

    def send(self, subject: str, text: str, to: list[tuple[str, str]], cc: list[tuple[str, str]],
             message_id: str | None) -> str | None:
        """Send a message, keeping a copy in Sent Items; the Internet Message-ID it went out with (None: the
        server's own)."""
        ...

    # -- calendar and tasks -----------------------------------------------------------------------------------------
    def changes(self, folder: str, sync_state: str | None) -> ChangesPage:
        """The next page of changes of the "calendar" or "tasks" folder since `sync_state` (None: from the start)."""
        ...

    def events(self, item_ids: Iterable[str]) -> Iterator[tuple[str, Event | None]]:
        """Calendar items by id; None for one gone meanwhile."""
        ...

    def tasks(self, item_ids: Iterable[str]) -> Iterator[tuple[str, TaskData | None]]:
        """Tasks by id; None for one gone meanwhile."""
        ...

    def occurrences(self, series: dict[str, Event], start: datetime, end: datetime) -> dict[str, list[Event]]:
        """The occurrences and exceptions during [start, end) of the given series (keyed by any name), by the
        series' item id."""
        ...

    def create_event(self, fields: EventFields, *, invite: bool, uid: str | None = None) -> tuple[str, str]:
        """Create a calendar item; with `invite` its attendees get invitations. Returns (id, version)."""
        ...

    def update_event(self, item_id: str, change_key: str, fields: EventFields, *, notify: bool,
                     overwrite: bool = False) -> tuple[str, str]:
        """Change a calendar item if the mailbox still holds version `change_key` (EditConflict if not), or
        whatever it holds with `overwrite`; with `notify` attendees get the update. Returns (id, new version)."""
        ...

    def delete_event(self, item_id: str, *, notify: bool) -> None:
        """Delete a calendar item; with `notify` its attendees get a cancellation. One gone already counts."""
        ...

    def create_task(self, fields: TaskFields) -> tuple[str, str]:
        """Create a task. Returns (id, version)."""
        ...

    def update_task(self, item_id: str, change_key: str, fields: TaskFields, *,
                    overwrite: bool = False) -> tuple[str, str]:
        """Change a task (EditConflict if it changed meanwhile, unless `overwrite`). Returns (id, new version)."""
        ...

    def delete_task(self, item_id: str) -> None:
        """Delete a task; one gone already counts."""
        ...

    def stored_span(self, fields: EventFields) -> tuple[datetime, datetime]:
        """The instants (UTC) the mailbox keeps for the fields' start and end (an all-day item spans whole days)."""
        ...

    def canonical_zone(self, name: str) -> str:
        """The IANA name the mailbox gives back for a zone it is given (servers may keep another name for it)."""
        ...

    # -- scheduling -------------------------------------------------------------------------------------------------
    def free_busy(self, people: Sequence[str], start: datetime, end: datetime) -> Availability:
        """The free/busy of the mailbox's owner (first) and up to 100 `people` over [start, end) in 30-minute
        intervals, with their working hours."""
        ...

    def resolve_people(self, query: str) -> list[tuple[str, str]]:
        """People of the organisation whose name or address starts with `query`: (address, name), a handful."""
        ...
