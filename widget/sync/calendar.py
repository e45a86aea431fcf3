"""Calendar sync: Exchange's changes to the widget, page by page, series through their occurrences, never an
invitation or cancellation to anyone.

Each page of the Calendar folder's changes is stored with its new sync state in ONE transaction (the page driver of
pages.py, shared with the email sync): single items and series are upserted on (user, item id), an unchanged
version (change key) is skipped without fetching anything, deletes are idempotent, and a full pass deletes nothing
until it completes. What a page reports as changed is fetched in batches; a changed series is expanded into its
occurrences (modified ones included) over the sync window — from the start
of the history window to a year ahead — in the same transaction as its master. The window moves with time: on the
first sync of a new day every series is expanded again.

When the user changed an item in the widget (pushed to Exchange at once by calendar_actions) and Exchange reports
a change of it too, the conflict rule decides (see calendar_rows); when the widget's version wins, the sync writes
it back to Exchange with SendToNone, as every write of a sync: a sync never notifies anyone.

A deleted item goes from the widget with its occurrences; the widget's deletes reach Exchange through the actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..exchange.port import MailboxPort
from ..exchange.problems import EditConflict, ItemGone
from ..exchange.values import ChangesPage, Event, ItemKind, ItemStamp, Response
from ..extensions import db
from ..models import CalendarAttendee, CalendarItem, FolderSync, User
from .calendar_rows import (
    CALENDAR_FOLDER,
    apply_event,
    changed_since_pulled,
    event_fields,
    same_event,
    set_attendee_rows,
    widget_wins,
)
from .fitting import unstorable
from .pages import FolderResult, Progress, sync_folder

AHEAD = timedelta(days=365)  # how far ahead occurrences of series are kept


@dataclass(frozen=True)
class SyncRules:
    """What the administrator decided for the calendar (or tasks): the sync type, the conflict rule, the window."""

    sync_type: str  # "two_way", "exchange_to_crm", "crm_to_exchange" or "off"
    conflict_rule: str
    window_start: datetime
    window_end: datetime

    @classmethod
    def from_settings(cls, current: Any, sync_type: str, now: datetime) -> SyncRules:
        """The rules of the admin settings at `now`."""
        return cls(sync_type, current.conflict_rule, now - timedelta(days=current.sync_history_days), now + AHEAD)

    @property
    def pulls(self) -> bool:
        """Whether a sync takes Exchange's changes ("CRM → Exchange" only pushes, through the user's actions)."""
        return self.sync_type in ("two_way", "exchange_to_crm")

    @property
    def may_push(self) -> bool:
        """Whether the widget's version may be written back to Exchange when it wins a conflict."""
        return self.sync_type == "two_way"


class _Page:
    """One page's work: the rows it touches and what it changed."""

    def __init__(self, user: User, state: FolderSync, port: MailboxPort, rules: SyncRules, result: FolderResult,
                 now: datetime):
        self.user, self.state, self.port, self.rules, self.result, self.now = user, state, port, rules, result, now

    # -- one row ------------------------------------------------------------------------------------------------
    def merge(self, row: CalendarItem, event: Event) -> bool:
        """Bring a stored row and Exchange's changed version together; True if the row's content changed."""
        if same_event(row, event):
            # Exchange's change is the widget's own (or a sibling occurrence's): only the ChangeKey moves on.
            row.change_key = event.change_key
            row.uid = event.uid or row.uid
            return False
        if changed_since_pulled(row) and self.rules.may_push and widget_wins(
                self.rules.conflict_rule, row.changed_in_widget_at, event.last_modified):
            try:
                row.item_id, row.change_key = self.port.update_event(
                    row.item_id, event.change_key, event_fields(row), notify=False, overwrite=True)
                row.changed_in_exchange_at = self.now
                return False
            except (EditConflict, ItemGone):
                pass  # Exchange moved on again: take its version now, the next sync sees any later change
        apply_event(row, event, now=self.now, series_item_id=row.series_item_id)
        set_attendee_rows(row)
        return True

    def create(self, event: Event, series_item_id: str | None = None) -> CalendarItem:
        """Store an item the widget did not have."""
        row = CalendarItem(user_id=self.user.id, seen_in_pass=self.state.pass_number)
        apply_event(row, event, now=self.now, series_item_id=series_item_id)
        db.session.add(row)
        db.session.flush()
        set_attendee_rows(row)
        self.result.created += 1
        return row

    def mark_private(self, row: CalendarItem, is_private: bool) -> None:
        """An unchanged item's sensitivity (rows stored before it was kept learn it on a full pass); a series'
        occurrences share it."""
        if row.is_private != is_private:
            row.is_private = is_private
            if row.is_recurring_master:
                db.session.execute(db.update(CalendarItem).where(
                    CalendarItem.user_id == self.user.id, CalendarItem.series_item_id == row.item_id,
                ).values(is_private=is_private))

    # -- a page -------------------------------------------------------------------------------------------------
    def wanted(self, stamp: ItemStamp) -> bool:
        """Whether an item not stored yet should be: every series (its occurrences decide), and single items that
        end inside the window or after it."""
        if stamp.kind == ItemKind.SERIES:
            return True
        return stamp.end is None or stamp.end >= self.rules.window_start

    def store(self, page: ChangesPage) -> None:
        """Apply one page's changes to the stored items (the pipeline stores the page's state with them)."""
        user, state = self.user, self.state
        ids = [stamp.item_id for stamp in page.changed]
        existing = {row.item_id: row for row in db.session.scalars(db.select(CalendarItem).where(
            CalendarItem.user_id == user.id, CalendarItem.item_id.in_(ids)))} if ids else {}
        to_fetch, unchanged_series = [], []
        for stamp in page.changed:
            why = unstorable(CalendarItem, stamp.item_id, stamp.change_key)
            if why:
                when = f"the item of {stamp.start:%d %b %Y %H:%M} UTC" if stamp.start else "an item"
                self.result.skip(when, why)
                continue
            row = existing.get(stamp.item_id)
            if row is not None:
                row.seen_in_pass = state.pass_number
                if row.change_key == stamp.change_key:
                    self.mark_private(row, stamp.is_private)
                    if row.is_recurring_master:
                        unchanged_series.append(row.item_id)
                    continue  # unchanged: a full pass sees every item again
                to_fetch.append(stamp.item_id)
            elif self.wanted(stamp):
                to_fetch.append(stamp.item_id)
        events = dict(self.port.events(to_fetch)) if to_fetch else {}
        changed_series: dict[str, Event] = {}
        for item_id in to_fetch:
            event = events.get(item_id)
            if event is None:
                continue  # gone from Exchange since the page was read; a later page says so
            row = existing.get(item_id)
            was_series = row is not None and row.is_recurring_master
            if row is None:
                self.create(event)
            elif self.merge(row, event):
                self.result.updated += 1
            if event.is_series:
                changed_series[item_id] = event
            elif was_series:  # no longer recurring: its occurrences go
                self.result.deleted += _delete(user, CalendarItem.series_item_id == item_id, with_occurrences=False)
        if changed_series:
            self.store_occurrences(changed_series)
        if unchanged_series and not state.pass_complete:
            db.session.execute(db.update(CalendarItem).where(
                CalendarItem.user_id == user.id, CalendarItem.series_item_id.in_(unchanged_series),
            ).values(seen_in_pass=state.pass_number))
        if page.deleted:
            self.result.deleted += _delete(user, CalendarItem.item_id.in_(page.deleted))

    def store_occurrences(self, masters: dict[str, Event]) -> None:
        """Store the occurrences of changed series in the window; drop those no longer there (deleted occurrences,
        or moved out of the window)."""
        found = self.port.occurrences(masters, self.rules.window_start, self.rules.window_end)
        stored = {row.item_id: row for row in db.session.scalars(db.select(CalendarItem).where(
            CalendarItem.user_id == self.user.id, CalendarItem.series_item_id.in_(list(masters))))}
        kept: set[str] = set()
        for master_id, occurrences in found.items():
            for event in occurrences:
                why = unstorable(CalendarItem, event.item_id, event.change_key)
                if why:
                    self.result.skip(event.subject, why)
                    continue
                kept.add(event.item_id)
                row = stored.get(event.item_id)
                if row is None:
                    self.create(event, series_item_id=master_id)
                    continue
                row.seen_in_pass = self.state.pass_number
                if row.change_key != event.change_key and self.merge(row, event):
                    self.result.updated += 1
        gone = [item_id for item_id in stored if item_id not in kept]
        if gone:
            self.result.deleted += _delete(self.user, CalendarItem.item_id.in_(gone), with_occurrences=False)


def _delete(user: User, which: Any, *, with_occurrences: bool = True) -> int:
    """Delete items (and the occurrences of deleted series) of the user; how many rows went."""
    found = db.session.execute(db.select(CalendarItem.id, CalendarItem.item_id, CalendarItem.is_recurring_master)
                               .where(CalendarItem.user_id == user.id, which)).all()
    ids = [row.id for row in found]
    series = [row.item_id for row in found if row.is_recurring_master]
    if with_occurrences and series:
        ids += db.session.scalars(db.select(CalendarItem.id).where(
            CalendarItem.user_id == user.id, CalendarItem.series_item_id.in_(series), CalendarItem.id.not_in(ids)))
    if not ids:
        return 0
    # Attendee rows go with their item (explicitly: SQLite enforces ON DELETE CASCADE only with foreign keys on).
    db.session.execute(db.delete(CalendarAttendee).where(CalendarAttendee.calendar_item_id.in_(ids)))
    db.session.execute(db.delete(CalendarItem).where(CalendarItem.id.in_(ids)))
    return len(ids)


def _finish_full_pass(user: User, state: FolderSync, result: FolderResult) -> None:
    result.deleted += _delete(user, CalendarItem.seen_in_pass < state.pass_number, with_occurrences=False)


def _master_event(row: CalendarItem) -> Event:
    """A stored master as the view needs it (its UID, and what its occurrences inherit)."""
    return Event(
        item_id=row.item_id, change_key=row.change_key or "", kind=ItemKind.SERIES, uid=row.uid or "",
        subject=row.subject, location=row.location, start=row.start_at, end=row.end_at, is_all_day=row.is_all_day,
        time_zone=row.time_zone, organizer=row.organizer_address,
        attendees=tuple((a[0], a[1], a[2] if len(a) > 2 else Response.UNKNOWN) for a in row.attendees or []),
        reminder_minutes=row.reminder_minutes if row.reminder_enabled else None, notes=row.notes,
        is_cancelled=row.is_cancelled, last_modified=row.changed_in_exchange_at, is_private=row.is_private,
    )


def _move_window(user: User, state: FolderSync, page: _Page) -> None:
    """Expand every series again over the window of today (occurrences entering it appear, old ones leave)."""
    masters = {row.item_id: _master_event(row) for row in db.session.scalars(db.select(CalendarItem).where(
        CalendarItem.user_id == user.id, CalendarItem.is_recurring_master.is_(True)))}
    if masters:
        page.store_occurrences(masters)
    state.last_synced_at = page.now
    db.session.commit()


@dataclass
class CalendarFolderPass:
    """The Calendar folder's part of the page pipeline (pages.py)."""

    user: User
    port: MailboxPort
    rules: SyncRules
    now: datetime
    result: FolderResult
    folder: str = CALENDAR_FOLDER

    def read_page(self, sync_state: str | None) -> ChangesPage:
        """The Calendar folder's next page of changes."""
        return self.port.changes(CALENDAR_FOLDER, sync_state)

    def apply_page(self, state: FolderSync, page: ChangesPage) -> int:
        """Store the page's items, with the occurrences of changed series."""
        _Page(self.user, state, self.port, self.rules, self.result, self.now).store(page)
        return len(page.changed) + len(page.deleted)

    def finish_full_pass(self, state: FolderSync) -> None:
        """Delete what the completed full pass did not see."""
        _finish_full_pass(self.user, state, self.result)

    def after_pages(self, state: FolderSync, synced_before: datetime | None) -> None:
        """On the first sync of a new day, move the window: expand every series again."""
        if not self.result.full_pass and synced_before is not None and synced_before.date() < self.now.date():
            _move_window(self.user, state, _Page(self.user, state, self.port, self.rules, self.result, self.now))


def sync_calendar(user: User, port: MailboxPort, rules: SyncRules, *, progress: Progress | None = None,
                  now: datetime | None = None) -> FolderResult:
    """Sync the user's Calendar folder until Exchange says it is up to date."""
    now = now or datetime.now(UTC)
    return sync_folder(user, CalendarFolderPass(user, port, rules, now, FolderResult(folder=CALENDAR_FOLDER)),
                       now=now, progress=progress)
