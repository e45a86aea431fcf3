"""The widget's copies of calendar items and tasks: rows from what Exchange says, fields to write back, and the
conflict rule that decides between the two when both changed.

Both the sync (pulling Exchange's changes) and the user's actions (pushing the widget's) store rows through these
functions, so that a row reads the same whichever side wrote it last, and a later sync finds nothing to change.

A row "changed in the widget since it was last pulled" when `changed_in_widget_at` is later than
`changed_in_exchange_at`: the user changed it (pushed to Exchange first) after the last version the widget took from
Exchange. If Exchange then reports a change too, both sides changed, and the administrator's conflict rule says
which one stays: `exchange_wins`, `crm_wins` (the widget's), or `latest_wins` (the later change by its time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from ..exchange.values import Event, EventFields, TaskData, TaskFields
from ..extensions import db
from ..models import CalendarAttendee, CalendarItem, Task
from .fitting import fit, width

CALENDAR_FOLDER = "calendar"
TASKS_FOLDER = "tasks"
CONFLICT_RULES = ("exchange_wins", "crm_wins", "latest_wins")


def changed_since_pulled(row: CalendarItem | Task) -> bool:
    """Whether the user changed the row after the last version taken from Exchange."""
    if row.changed_in_widget_at is None:
        return False
    return row.changed_in_exchange_at is None or row.changed_in_widget_at > row.changed_in_exchange_at


def widget_wins(rule: str, widget_changed_at: datetime | None, exchange_changed_at: datetime | None) -> bool:
    """The conflict rule, as a sync applies it: whether the widget's version stays when both sides changed an item.

    For "latest_wins" the times are compared to the second, as Exchange gives its LastModifiedTime; a tie goes to
    Exchange, whose change a sync sees after the widget's was pushed.
    """
    if rule == "crm_wins":
        return True
    if rule == "latest_wins":
        if widget_changed_at is None:
            return False
        return exchange_changed_at is None or widget_changed_at.replace(microsecond=0) > exchange_changed_at
    return False


def widget_wins_now(rule: str) -> bool:
    """The conflict rule, as a user's action applies it when Exchange changed the item since the widget last synced:
    the user's change, made now, is the later one."""
    return rule in ("crm_wins", "latest_wins")


def _pulled_at(row: CalendarItem | Task, exchange_changed_at: datetime | None, now: datetime) -> datetime:
    # Both sides now agree on the row: it counts as pulled no earlier than the widget's last change, even when
    # Exchange's clock runs a little behind the widget's.
    moments = [m for m in (exchange_changed_at or now, row.changed_in_widget_at) if m is not None]
    return max(moments)


# -- calendar items ------------------------------------------------------------------------------------------------
def apply_event(row: CalendarItem, event: Event, *, now: datetime, series_item_id: str | None = None) -> None:
    """Make the row Exchange's version of a calendar item (its attendee rows too; the row must be flushed)."""
    row.item_id = event.item_id
    row.change_key = event.change_key
    row.uid = fit(event.uid, CalendarItem.uid) or row.uid
    row.series_item_id = series_item_id
    row.is_recurring_master = event.is_series
    row.kind = "meeting" if event.is_meeting else "appointment"
    row.subject = fit(event.subject, CalendarItem.subject)
    row.location = fit(event.location, CalendarItem.location)
    row.start_at = event.start
    row.end_at = event.end
    row.is_all_day = event.is_all_day
    zone = event.time_zone or row.time_zone
    row.time_zone = zone if zone is None or len(zone) <= (width(CalendarItem.time_zone) or len(zone)) else "UTC"
    row.organizer_address = fit(event.organizer, CalendarAttendee.address)
    row.attendees = [[fit(address, CalendarAttendee.address), fit(name, CalendarItem.subject), response]
                     for address, name, response in event.attendees]
    row.reminder_enabled = event.reminder_minutes is not None
    row.reminder_minutes = event.reminder_minutes
    row.notes = fit(event.notes, CalendarItem.notes)
    row.is_cancelled = event.is_cancelled
    row.is_private = event.is_private
    row.changed_in_exchange_at = _pulled_at(row, event.last_modified, now)


def same_event(row: CalendarItem, event: Event) -> bool:
    """Whether Exchange's version says what the row says (e.g. an occurrence whose series changed elsewhere)."""
    return (row.subject, row.location, row.start_at, row.end_at, row.is_all_day, row.reminder_minutes
            if row.reminder_enabled else None, (row.notes or "").strip(), sorted(a[0] for a in row.attendees or []),
            row.is_private) == (event.subject, event.location, event.start, event.end, event.is_all_day,
                                event.reminder_minutes, event.notes.strip(), sorted(a[0] for a in event.attendees),
                                event.is_private)


def set_attendee_rows(row: CalendarItem) -> None:
    """The addresses by which the item is matched to CRM records: its organiser's and its attendees' (lower-cased)."""
    db.session.execute(db.delete(CalendarAttendee).where(CalendarAttendee.calendar_item_id == row.id))
    addresses = {row.organizer_address.lower()} | {attendee[0].lower() for attendee in row.attendees or []}
    db.session.add_all(CalendarAttendee(calendar_item_id=row.id, address=address) for address in sorted(addresses)
                       if address)


def event_fields(row: CalendarItem) -> EventFields:
    """The row as fields to write to Exchange (the widget's version, when it wins a conflict)."""
    return EventFields(
        subject=row.subject, location=row.location, start=row.start_at, end=row.end_at, is_all_day=row.is_all_day,
        time_zone=row.time_zone or "UTC", attendees=tuple((a[0], a[1]) for a in row.attendees or []),
        reminder_minutes=row.reminder_minutes if row.reminder_enabled else None, notes=row.notes or "",
    )


# -- tasks ---------------------------------------------------------------------------------------------------------
def due_at(day: date | None, zone: ZoneInfo) -> datetime | None:
    """A task's due date as the instant the widget stores: that day's midnight in the user's zone."""
    if day is None:
        return None
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def due_day(moment: datetime | None, zone: ZoneInfo) -> date | None:
    """The due date (of the user's calendar) of a due time."""
    return moment.astimezone(zone).date() if moment is not None else None


def apply_task(row: Task, data: TaskData, zone: ZoneInfo, *, now: datetime) -> None:
    """Make the row Exchange's version of a task."""
    row.item_id = data.item_id
    row.change_key = data.change_key
    row.subject = fit(data.subject, Task.subject)
    row.due_at = due_at(data.due, zone)
    row.status = data.status
    row.is_complete = data.is_complete
    row.completed_at = data.completed_at if data.is_complete else None
    row.reminder_at = data.reminder_at
    row.importance = data.importance
    row.notes = fit(data.notes, Task.notes)
    row.changed_in_exchange_at = _pulled_at(row, data.last_modified, now)


def same_task(row: Task, data: TaskData, zone: ZoneInfo) -> bool:
    """Whether Exchange's version of a task says what the row says."""
    return (row.subject, due_day(row.due_at, zone), row.is_complete, row.reminder_at, row.importance,
            (row.notes or "").strip()) == (data.subject, data.due, data.is_complete, data.reminder_at,
                                           data.importance, data.notes.strip())


def task_fields(row: Task, zone: ZoneInfo) -> TaskFields:
    """The row as fields to write to Exchange."""
    return TaskFields(subject=row.subject, due=due_day(row.due_at, zone), reminder_at=row.reminder_at,
                      notes=row.notes or "", importance=row.importance or "Normal", complete=row.is_complete)
