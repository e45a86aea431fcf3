"""What a user's explicit action does to their calendar and tasks: Exchange first, then the widget's store.

Each function writes to Exchange, then stores the result and commits, so what the widget shows is real. When
Exchange refuses, nothing is stored and an ExchangeProblem says why in words for the user. When the widget's own
database fails after Exchange accepted the write, nothing is stored either and `NotStoredYet` (an ExchangeProblem)
says so: the next sync brings the item from Exchange by its item id, so it is never duplicated.

Only these actions ever send invitations, updates or cancellations, and only for meetings: `schedule` of a meeting
invites its attendees, `update_calendar_item` of a meeting sends them the update, `delete_calendar_item` with
`notify_attendees` cancels it for them. An appointment never involves anyone else.

The sync type of settings applies: with "Exchange → CRM" the widget only shows Exchange's calendar (or tasks), and
every action here refuses. An update carries the ChangeKey of the version the widget holds; when Exchange changed the
item meanwhile, the conflict rule decides: the widget's change is written over Exchange's ("crm_wins", and
"latest_wins" since the user's change is the later one), or it is refused and the widget takes Exchange's version
("exchange_wins").
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from .. import settings
from ..exchange.factory import mailbox_for
from ..exchange.port import MailboxPort
from ..exchange.problems import EditConflict, ExchangeProblem, ItemGone
from ..exchange.values import IMPORTANCES, EventFields, Response, TaskFields, TaskStatus
from ..extensions import db
from ..local_time import user_zone
from ..models import CalendarItem, Task, User
from .calendar_rows import (
    CALENDAR_FOLDER,
    TASKS_FOLDER,
    apply_event,
    apply_task,
    due_at,
    due_day,
    set_attendee_rows,
    task_fields,
    widget_wins_now,
)
from .pages import current_pass

KINDS = ("meeting", "appointment")
Row = TypeVar("Row", CalendarItem, Task)


@dataclass(frozen=True)
class MeetingDraft:
    """A meeting or appointment as the user filled it in."""

    kind: str  # "meeting" or "appointment"
    subject: str
    attendees: tuple[tuple[str, str], ...]  # (address lower-cased, display name); empty for an appointment
    location: str
    start: datetime  # timezone-aware
    end: datetime  # timezone-aware, after start
    all_day: bool
    time_zone: str  # the user's IANA zone, e.g. "Europe/Berlin"
    reminder_minutes: int | None  # None: no reminder
    notes: str


@dataclass(frozen=True)
class TaskDraft:
    """A task as the user filled it in."""

    subject: str
    due: datetime | None  # timezone-aware; Exchange keeps the date (of the user's zone)
    reminder_at: datetime | None
    notes: str
    importance: str = "Normal"  # Low, Normal, High


class NotStoredYet(ExchangeProblem):
    """Exchange accepted the change but the widget could not store it: it appears with the next sync."""

    def __init__(self, what: str):
        super().__init__("not_stored", f"Exchange has the {what}, but the widget could not store it just now; "
                                       "it appears here after the next sync.")


# -- checks --------------------------------------------------------------------------------------------------------
def _writable(module: str) -> settings.WidgetSettings:
    """The settings, if the administrator lets the widget write this module to Exchange."""
    current = settings.load()
    sync_type = current.sync_calendar if module == CALENDAR_FOLDER else current.sync_tasks
    if sync_type == "exchange_to_crm":
        what = "Calendar" if module == CALENDAR_FOLDER else "Task"
        raise ExchangeProblem("read_only", f"{what} sync is set to Exchange → CRM by your administrator: make this "
                                           "change in Outlook, and the widget shows it after the next sync.")
    return current


def _check_meeting(draft: MeetingDraft) -> None:
    if draft.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if draft.start.tzinfo is None or draft.end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if draft.end <= draft.start and not draft.all_day:
        raise ValueError("end must be after start")


def _check_task(draft: TaskDraft) -> None:
    if draft.importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {IMPORTANCES}")
    for moment in (draft.due, draft.reminder_at):
        if moment is not None and moment.tzinfo is None:
            raise ValueError("due and reminder times must be timezone-aware")


def _port(user: User, current: settings.WidgetSettings) -> MailboxPort:
    return mailbox_for(user, current)


def _stored(what: str, store: Callable[[], Row], stored_meanwhile: Callable[[], Row | None] | None = None) -> Row:
    """Run the local half of an action (Exchange already has the change) and commit; roll back on failure. A new
    item that a sync running at the same time stored first (by its item id) is that row."""
    try:
        row = store()
        db.session.commit()
        return row
    except SQLAlchemyError:
        db.session.rollback()
    found = None
    with contextlib.suppress(SQLAlchemyError):  # the database may still be failing
        found = stored_meanwhile() if stored_meanwhile else None
    if found is None:
        db.session.rollback()  # end the transaction of the look-up: it would hold its locks until the next request
        raise NotStoredYet(what)
    return found


# -- calendar ------------------------------------------------------------------------------------------------------
def _fields(draft: MeetingDraft) -> EventFields:
    attendees = draft.attendees if draft.kind == "meeting" else ()
    return EventFields(subject=draft.subject, location=draft.location, start=draft.start, end=draft.end,
                       is_all_day=draft.all_day, time_zone=draft.time_zone,
                       attendees=tuple((address.lower(), name) for address, name in attendees),
                       reminder_minutes=draft.reminder_minutes, notes=draft.notes)


def _draft_onto(row: CalendarItem, draft: MeetingDraft, stored_start: datetime, stored_end: datetime,
                time_zone: str) -> None:
    fields = _fields(draft)
    row.kind = "meeting" if fields.attendees else "appointment"
    row.subject = draft.subject
    row.location = draft.location
    row.start_at, row.end_at = stored_start, stored_end
    row.is_all_day = draft.all_day
    row.time_zone = time_zone
    row.attendees = [[address, name, Response.UNKNOWN.value] for address, name in fields.attendees]
    row.reminder_enabled = draft.reminder_minutes is not None
    row.reminder_minutes = draft.reminder_minutes
    row.notes = draft.notes


def schedule(user: User, draft: MeetingDraft) -> CalendarItem:
    """Create a meeting (with invitations to its attendees) or an appointment (inviting nobody) in Exchange, then
    store it with its attendees' addresses; returns the stored item (committed)."""
    _check_meeting(draft)
    current = _writable(CALENDAR_FOLDER)
    port = _port(user, current)
    uid = uuid.uuid4().hex.upper()
    item_id, change_key = port.create_event(_fields(draft), invite=draft.kind == "meeting", uid=uid)
    now = datetime.now(UTC)
    start, end = port.stored_span(_fields(draft))

    def stored_meanwhile() -> CalendarItem | None:
        return db.session.scalar(db.select(CalendarItem).where(CalendarItem.user_id == user.id,
                                                               CalendarItem.item_id == item_id))

    def store() -> CalendarItem:
        already = stored_meanwhile()
        if already is not None:  # a sync running meanwhile stored Exchange's copy first
            return already
        row = CalendarItem(user_id=user.id, item_id=item_id, change_key=change_key, uid=uid,
                           organizer_address=user.email.lower(), changed_in_widget_at=now,
                           changed_in_exchange_at=now, seen_in_pass=current_pass(user, CALENDAR_FOLDER))
        _draft_onto(row, draft, start, end, port.canonical_zone(draft.time_zone))
        db.session.add(row)
        db.session.flush()
        set_attendee_rows(row)
        return row

    return _stored(draft.kind, store, stored_meanwhile)


def _refresh_event(port: MailboxPort, user: User, row: CalendarItem) -> None:
    """Take Exchange's version of the item (after losing a conflict), or forget the item if Exchange has none."""
    event = dict(port.events([row.item_id])).get(row.item_id)
    if event is None:
        db.session.delete(row)
    else:
        apply_event(row, event, now=datetime.now(UTC), series_item_id=row.series_item_id)
        set_attendee_rows(row)
    db.session.commit()


def update_calendar_item(user: User, item: CalendarItem, draft: MeetingDraft) -> CalendarItem:
    """Change a meeting or appointment (or one occurrence of a series) in Exchange, then in the store. A meeting's
    attendees get the update (an attendee removed gets a cancellation)."""
    _check_meeting(draft)
    current = _writable(CALENDAR_FOLDER)
    port = _port(user, current)
    fields = _fields(draft)
    notify = draft.kind == "meeting" or item.kind == "meeting"
    try:
        try:
            item_id, change_key = port.update_event(item.item_id, item.change_key or "", fields, notify=notify)
        except EditConflict:
            if not widget_wins_now(current.conflict_rule):
                _refresh_event(port, user, item)
                raise ExchangeProblem("conflict", "This item was changed in Exchange meanwhile, so your change was "
                                                  "not saved; the widget now shows Exchange's version.") from None
            item_id, change_key = port.update_event(item.item_id, item.change_key or "", fields, notify=notify,
                                                    overwrite=True)
    except ItemGone:
        _forget(item)
        raise ExchangeProblem("gone", "This item no longer exists in Exchange; it was removed here too.") from None
    start, end = port.stored_span(fields)
    now = datetime.now(UTC)

    def store() -> CalendarItem:
        item.item_id, item.change_key = item_id, change_key
        _draft_onto(item, draft, start, end, port.canonical_zone(draft.time_zone))
        item.changed_in_widget_at = now
        set_attendee_rows(item)
        return item

    return _stored(draft.kind, store)


def _forget(row: CalendarItem | Task) -> None:
    if isinstance(row, CalendarItem) and row.is_recurring_master:
        db.session.execute(db.delete(CalendarItem).where(CalendarItem.user_id == row.user_id,
                                                         CalendarItem.series_item_id == row.item_id))
    db.session.delete(row)
    db.session.commit()


def delete_calendar_item(user: User, item: CalendarItem, *, notify_attendees: bool) -> None:
    """Delete a meeting or appointment (or one occurrence) in Exchange, then in the store. With `notify_attendees`,
    the attendees of a meeting the user organises get a cancellation. Deleting what Exchange deleted already is
    fine."""
    current = _writable(CALENDAR_FOLDER)
    port = _port(user, current)
    notify = notify_attendees and item.kind == "meeting" and item.organizer_address.lower() == user.email.lower()
    port.delete_event(item.item_id, notify=notify)
    try:
        _forget(item)
    except SQLAlchemyError:
        db.session.rollback()
        raise NotStoredYet("deletion") from None


# -- tasks ---------------------------------------------------------------------------------------------------------
def _task_fields(user: User, draft: TaskDraft, *, complete: bool = False) -> TaskFields:
    zone = user_zone(user, settings.load())
    return TaskFields(subject=draft.subject, due=due_day(draft.due, zone), reminder_at=draft.reminder_at,
                      notes=draft.notes, importance=draft.importance, complete=complete)


def _task_onto(user: User, row: Task, fields: TaskFields, now: datetime) -> None:
    row.subject = fields.subject
    row.due_at = due_at(fields.due, user_zone(user, settings.load()))
    row.reminder_at = fields.reminder_at
    row.notes = fields.notes
    row.importance = fields.importance
    if fields.complete and not row.is_complete:
        row.completed_at = now
    row.is_complete = fields.complete
    row.status = TaskStatus.COMPLETED if fields.complete else (
        TaskStatus.NOT_STARTED if row.status == TaskStatus.COMPLETED else row.status)
    if not fields.complete:
        row.completed_at = None


def create_task(user: User, draft: TaskDraft) -> Task:
    """Create a task in Exchange, then store it; returns the stored task (committed)."""
    _check_task(draft)
    current = _writable(TASKS_FOLDER)
    port = _port(user, current)
    fields = _task_fields(user, draft)
    item_id, change_key = port.create_task(fields)
    now = datetime.now(UTC)

    def stored_meanwhile() -> Task | None:
        return db.session.scalar(db.select(Task).where(Task.user_id == user.id, Task.item_id == item_id))

    def store() -> Task:
        already = stored_meanwhile()
        if already is not None:
            return already
        row = Task(user_id=user.id, item_id=item_id, change_key=change_key, status=TaskStatus.NOT_STARTED,
                   changed_in_widget_at=now, changed_in_exchange_at=now,
                   seen_in_pass=current_pass(user, TASKS_FOLDER))
        _task_onto(user, row, fields, now)
        db.session.add(row)
        return row

    return _stored("task", store, stored_meanwhile)


def _write_task(user: User, task: Task, fields: TaskFields) -> Task:
    current = _writable(TASKS_FOLDER)
    port = _port(user, current)
    try:
        try:
            item_id, change_key = port.update_task(task.item_id, task.change_key or "", fields)
        except EditConflict:
            if not widget_wins_now(current.conflict_rule):
                data = dict(port.tasks([task.item_id])).get(task.item_id)
                if data is None:
                    raise ItemGone() from None
                apply_task(task, data, user_zone(user, current), now=datetime.now(UTC))
                db.session.commit()
                raise ExchangeProblem("conflict", "This task was changed in Exchange meanwhile, so your change was "
                                                  "not saved; the widget now shows Exchange's version.") from None
            item_id, change_key = port.update_task(task.item_id, task.change_key or "", fields, overwrite=True)
    except ItemGone:
        _forget(task)
        raise ExchangeProblem("gone", "This task no longer exists in Exchange; it was removed here too.") from None
    now = datetime.now(UTC)

    def store() -> Task:
        task.item_id, task.change_key = item_id, change_key
        _task_onto(user, task, fields, now)
        task.changed_in_widget_at = now
        return task

    return _stored("task", store)


def update_task(user: User, task: Task, draft: TaskDraft) -> Task:
    """Change a task in Exchange, then in the store (it stays complete or open as it was)."""
    _check_task(draft)
    return _write_task(user, task, _task_fields(user, draft, complete=task.is_complete))


def complete_task(user: User, task: Task) -> Task:
    """Mark a task complete in Exchange, then in the store."""
    zone = user_zone(user, settings.load())
    fields = task_fields(task, zone)
    return _write_task(user, task, TaskFields(subject=fields.subject, due=fields.due, reminder_at=fields.reminder_at,
                                              notes=fields.notes, importance=fields.importance, complete=True))


def delete_task(user: User, task: Task) -> None:
    """Delete a task in Exchange, then in the store; deleting what Exchange deleted already is fine."""
    current = _writable(TASKS_FOLDER)
    _port(user, current).delete_task(task.item_id)
    try:
        _forget(task)
    except SQLAlchemyError:
        db.session.rollback()
        raise NotStoredYet("deletion") from None
