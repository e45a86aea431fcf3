"""The mailbox port for the calendar and tasks: sync pages, details, a calendar view, and writes.

Like the mail port (mailbox.py), the Calendar and Tasks folders are synced one SyncFolderItems page at a time, so
that the sync engine commits each page with its state. A page asks only for what decides whether an item is
worth fetching (ids, change keys, and for calendar items their start, end and type); the details of the items
that changed come in GetItem batches. Recurring series are read through a CalendarView (FindItem), which expands
them into their occurrences, modified ones (exceptions) included, for a window of time.

Writes go through exchangelib with EWSTimeZone values only: a calendar item's start and end are given in the zone
it is scheduled in, so Exchange keeps that zone (StartTimeZone) and shows the meeting at the right local time to
everyone across daylight-saving changes. Invitations and cancellations are sent only when the caller asks
(`invite=True`, `notify=True`): a sync never does. Updates carry the ChangeKey the widget last saw, so that a change
made in Exchange meanwhile is reported as an EditConflict instead of being overwritten, unless `overwrite` is set.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import nh3
import requests
from exchangelib import (
    Account,
    Attendee,
    Body,
    CalendarItem,
    EWSDate,
    EWSDateTime,
    EWSTimeZone,
)
from exchangelib import Mailbox as EwsMailbox
from exchangelib import Task as EwsTask
from exchangelib import errors as ews_errors
from exchangelib.fields import FieldPath
from exchangelib.folders import BaseFolder
from exchangelib.items import (
    ALWAYS_OVERWRITE,
    NEVER_OVERWRITE,
    SEND_TO_ALL_AND_SAVE_COPY,
    SEND_TO_NONE,
)

from ..problems import EditConflict, ItemGone, SyncStateInvalid
from ..values import (
    IMPORTANCES,
    ChangesPage,
    Event,
    EventFields,
    ItemKind,
    ItemStamp,
    Response,
    TaskData,
    TaskFields,
    TaskStatus,
)
from .connection import explain
from .fast_parse import FastSyncFolderItems
from .mailbox import PAGE_SIZE, PRIVATE_SENSITIVITIES

_EWS_UTC = EWSTimeZone("UTC")
# EWS's words for what the port names in its own (CalendarItemType, ResponseType, TaskStatus).
_KINDS = {"Single": ItemKind.SINGLE, "RecurringMaster": ItemKind.SERIES, "Occurrence": ItemKind.OCCURRENCE,
          "Exception": ItemKind.EXCEPTION}
_RESPONSES = {"Unknown": Response.UNKNOWN, "Organizer": Response.ORGANIZER, "Tentative": Response.TENTATIVE,
              "Accept": Response.ACCEPTED, "Decline": Response.DECLINED, "NoResponseReceived": Response.NOT_ANSWERED}
_STATUSES = {"NotStarted": TaskStatus.NOT_STARTED, "InProgress": TaskStatus.IN_PROGRESS,
             "Completed": TaskStatus.COMPLETED, "WaitingOnOthers": TaskStatus.WAITING_ON_OTHERS,
             "Deferred": TaskStatus.DEFERRED}
_EWS_STATUSES = {status: word for word, status in _STATUSES.items()}
DETAIL_BATCH = 100  # items per GetItem
VIEW_LIMIT = 1000  # Exchange's most items in one FindItem answer (EWSFindCountLimit); a CalendarView cannot page
VIEW_SPAN = timedelta(days=730)  # Exchange refuses calendar views longer than two years
# What a sync page asks of a calendar item: enough to decide whether to fetch it (never bodies or attendees).
STAMP_FIELDS = ("start", "end", "type", "sensitivity")
_STAMP_PATHS = {FieldPath(field=CalendarItem.get_field_by_fieldname(name)) for name in STAMP_FIELDS}
EVENT_FIELDS = (
    "subject", "location", "start", "end", "is_all_day", "_start_timezone", "_end_timezone", "type", "uid",
    "organizer", "required_attendees", "optional_attendees", "reminder_is_set", "reminder_minutes_before_start",
    "text_body", "is_cancelled", "last_modified_time", "sensitivity",
)
# A CalendarView (FindItem) returns no attendees, bodies or time zones: occurrences take those from their master.
VIEW_FIELDS = (
    "subject", "location", "start", "end", "type", "uid", "organizer", "reminder_is_set",
    "reminder_minutes_before_start", "is_cancelled", "last_modified_time", "sensitivity",
)
TASK_FIELDS = (
    "subject", "due_date", "status", "complete_date", "reminder_is_set", "reminder_due_by", "importance", "text_body",
    "last_modified_time",
)


@contextmanager
def _exchange_errors() -> Iterator[None]:
    """exchangelib's failures leave the port as EditConflict, ItemGone, SyncStateInvalid or ExchangeProblem."""
    try:
        yield
    except ews_errors.ErrorIrresolvableConflict:
        raise EditConflict() from None
    except ews_errors.ErrorItemNotFound:
        raise ItemGone() from None
    except ews_errors.ErrorInvalidSyncStateData:
        raise SyncStateInvalid() from None
    except (ews_errors.EWSError, requests.RequestException, OSError) as error:
        raise explain(error) from error


# -- conversions --------------------------------------------------------------------------------------------------
def canonical_zone(name: str) -> str:
    """The IANA name Exchange gives back for a zone (Exchange keeps Windows zone ids: Europe/Vienna returns as
    Europe/Berlin), so that the widget stores what a later sync reads."""
    try:
        return EWSTimeZone.from_ms_id(EWSTimeZone(name).ms_id).key
    except Exception:  # noqa: BLE001 - an unknown zone stays as it was given
        return name


def _plain(value: datetime | None) -> datetime | None:
    """An exchangelib EWSDateTime as a plain UTC datetime (the rest of the widget knows nothing of exchangelib)."""
    if value is None:
        return None
    utc = value.astimezone(_EWS_UTC)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC)


def _ews(value: datetime, zone: EWSTimeZone) -> EWSDateTime:
    """An aware datetime as exchangelib wants it: an EWSDateTime in `zone`."""
    if value.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    local = value.astimezone(zone)
    return local if isinstance(local, EWSDateTime) else EWSDateTime.from_datetime(local)


def _zone_name(zone: object | None) -> str | None:
    return getattr(zone, "key", None) if zone is not None else None


def _event_times(item: CalendarItem, zone_hint: str | None) -> tuple[datetime, datetime]:
    """Start and end in UTC; exchangelib gives an all-day item's as dates (the end one day early), which are days
    of the item's own zone."""
    start, end = item.start, item.end
    if isinstance(start, datetime) and isinstance(end, datetime):
        return _plain(start), _plain(end)  # type: ignore[return-value]
    zone = item._start_timezone or (EWSTimeZone(zone_hint) if zone_hint else _EWS_UTC)

    def midnight(day: date) -> datetime:
        return _plain(EWSDateTime.combine(day, time(0)).replace(tzinfo=zone))  # type: ignore[return-value]

    start_day = start if isinstance(start, date) else start.date()
    end_day = end if isinstance(end, date) else end.date()
    return midnight(start_day), midnight(end_day + timedelta(days=1))


def _address(mailbox: object | None) -> str:
    return (getattr(mailbox, "email_address", None) or "").lower()


def _attendees(item: CalendarItem) -> tuple[tuple[str, str, str], ...]:
    found = []
    for attendee in [*(item.required_attendees or []), *(item.optional_attendees or [])]:
        address = _address(attendee.mailbox)
        if address:
            response = _RESPONSES.get(attendee.response_type or "", Response.UNKNOWN)
            found.append((address, attendee.mailbox.name or "", response))
    return tuple(found)


def _reminder(item: CalendarItem) -> int | None:
    if not item.reminder_is_set:
        return None
    return int(item.reminder_minutes_before_start or 0)


def _notes(item: object) -> str | None:
    """An item's body as plain text: Exchange's TextBody (2013 and later), else the body with any HTML removed."""
    text = getattr(item, "text_body", None)
    if text is not None:
        return str(text)
    body = getattr(item, "body", None)
    if body is None:
        return None
    if type(body).__name__ == "HTMLBody":
        return " ".join(html.unescape(nh3.clean(str(body), tags=set())).split())
    return str(body)


def _event(item: CalendarItem, master: Event | None = None) -> Event:
    """An exchangelib calendar item as an Event; an occurrence from a view borrows what a view lacks from its
    master."""
    zone = _zone_name(getattr(item, "_start_timezone", None)) or (master.time_zone if master else None)
    start, end = _event_times(item, zone)
    text = _notes(item)
    return Event(
        item_id=item.id, change_key=item.changekey, kind=_KINDS.get(item.type or "", ItemKind.SINGLE),
        uid=item.uid or "",
        subject=item.subject or "", location=item.location or "", start=start, end=end,
        is_all_day=bool(item.is_all_day) if master is None else master.is_all_day, time_zone=zone,
        organizer=_address(item.organizer), attendees=_attendees(item) if master is None else master.attendees,
        reminder_minutes=_reminder(item), notes=str(text) if text is not None else (master.notes if master else ""),
        is_cancelled=bool(item.is_cancelled), last_modified=_plain(item.last_modified_time),
        is_private=item.sensitivity in PRIVATE_SENSITIVITIES or bool(master and master.is_private),
    )


def _task(item: EwsTask) -> TaskData:
    text = _notes(item)
    reminder = _plain(item.reminder_due_by) if item.reminder_is_set else None
    return TaskData(
        item_id=item.id, change_key=item.changekey, subject=item.subject or "", due=item.due_date,
        status=_STATUSES.get(item.status or "", TaskStatus.NOT_STARTED), completed_at=_plain(item.complete_date),
        reminder_at=reminder,
        importance=item.importance or "Normal", notes=str(text) if text is not None else "",
        last_modified=_plain(item.last_modified_time),
    )


def _all_day_bounds(start: datetime, end: datetime, zone: EWSTimeZone) -> tuple[EWSDateTime, EWSDateTime]:
    """An all-day item spans whole days of its zone: from the start's midnight to the midnight after its end."""
    first = start.astimezone(zone).date()
    local_end = end.astimezone(zone)
    last = local_end.date() if local_end.time() == time(0) and local_end.date() > first else \
        local_end.date() + timedelta(days=1)
    return (EWSDateTime.combine(first, time(0)).replace(tzinfo=zone),
            EWSDateTime.combine(last, time(0)).replace(tzinfo=zone))


def stored_span(fields: EventFields) -> tuple[datetime, datetime]:
    """The instants (UTC) Exchange keeps for the fields' start and end: an all-day item spans whole days of its zone."""
    if fields.is_all_day:
        start, end = _all_day_bounds(fields.start, fields.end, EWSTimeZone(fields.time_zone))
        return _plain(start), _plain(end)  # type: ignore[return-value]
    return _plain(fields.start), _plain(fields.end)  # type: ignore[return-value]


class EwsCalendar:
    """The Calendar and Tasks folders of one mailbox over EWS: the calendar half of the EWS adapter, beside EwsMail
    (whose account and request count it shares)."""

    account: Account
    requests: int

    def _calendar_folder(self, name: str) -> BaseFolder:
        return self.account.calendar if name == "calendar" else self.account.tasks

    # -- reading ------------------------------------------------------------------------------------------------
    def changes(self, folder: str, sync_state: str | None, max_changes: int = PAGE_SIZE) -> ChangesPage:
        """The next page of changes of the "calendar" or "tasks" folder since `sync_state` (None: from the start)."""
        with _exchange_errors():
            service = FastSyncFolderItems(account=self.account)
            fields = _STAMP_PATHS if folder == "calendar" else None
            page = ChangesPage()
            self.requests += 1
            for kind, value in service.call(folder=self._calendar_folder(folder), shape="IdOnly",
                                            additional_fields=fields,
                                            sync_state=sync_state, ignore=None, max_changes_returned=max_changes,
                                            sync_scope=None):
                if kind in (service.CREATE, service.UPDATE):
                    if isinstance(value, CalendarItem):
                        kind_of = _KINDS.get(value.type or "", ItemKind.SINGLE)
                        page.changed.append(ItemStamp(value.id, value.changekey, kind_of, _plain(value.start),
                                                      _plain(value.end),
                                                      is_private=value.sensitivity in PRIVATE_SENSITIVITIES))
                    elif isinstance(value, EwsTask):
                        page.changed.append(ItemStamp(value.id, value.changekey))
                elif kind == service.DELETE:
                    page.deleted.append(value.id)
            page.sync_state = service.sync_state
            page.done = bool(service.includes_last_item_in_range)
            return page

    def _fetch(self, ids: list[str], fields: tuple[str, ...], folder: str) -> Iterator[tuple[str, object]]:
        if "text_body" in fields and not CalendarItem.get_field_by_fieldname("text_body").supports_version(
                self.account.version):
            fields = tuple("body" if name == "text_body" else name for name in fields)  # before Exchange 2013
        for first in range(0, len(ids), DETAIL_BATCH):
            batch = ids[first:first + DETAIL_BATCH]
            self.requests += 1
            fetched = self.account.fetch(ids=[(item_id, None) for item_id in batch],
                                         folder=self._calendar_folder(folder),
                                         only_fields=list(fields))
            yield from zip(batch, fetched, strict=True)

    def events(self, item_ids: Iterable[str]) -> Iterator[tuple[str, Event | None]]:
        """Calendar items by id, in GetItem batches; None for an item gone meanwhile."""
        with _exchange_errors():
            for item_id, item in self._fetch(list(item_ids), EVENT_FIELDS, "calendar"):
                yield item_id, _event(item) if isinstance(item, CalendarItem) else None

    def tasks(self, item_ids: Iterable[str]) -> Iterator[tuple[str, TaskData | None]]:
        """Tasks by id, in GetItem batches; None for a task gone meanwhile."""
        with _exchange_errors():
            for item_id, item in self._fetch(list(item_ids), TASK_FIELDS, "tasks"):
                yield item_id, _task(item) if isinstance(item, EwsTask) else None

    def occurrences(self, masters: dict[str, Event], start: datetime, end: datetime) -> dict[str, list[Event]]:
        """The occurrences (and exceptions) of the given series during [start, end), by master item id.

        `masters` are the series' masters by their UID. One CalendarView per year of the window, more only when a
        year holds over VIEW_LIMIT items (the next view starts where the last one stopped). Exceptions come with
        their own attendees and notes (one GetItem); plain occurrences take them from their master.
        """
        by_uid = {master.uid: master for master in masters.values() if master.uid}
        found: dict[str, list[Event]] = {master.item_id: [] for master in masters.values()}
        exceptions: list[tuple[str, str]] = []
        with _exchange_errors():
            for item in self._view(start, end):
                master = by_uid.get(item.uid or "")
                if master is None or item.type not in ("Occurrence", "Exception"):
                    continue
                found[master.item_id].append(_event(item, master))
                if item.type == "Exception":
                    exceptions.append((master.item_id, item.id))
            if exceptions:
                details = dict(self.events(item_id for _, item_id in exceptions))
                for master_id, item_id in exceptions:
                    detail = details.get(item_id)
                    if detail is not None:
                        found[master_id] = [detail if e.item_id == item_id else e for e in found[master_id]]
        return found

    def _view(self, start: datetime, end: datetime) -> Iterator[CalendarItem]:
        seen: set[str] = set()
        span_start = start
        while span_start < end:
            span_end = min(span_start + VIEW_SPAN, end)
            cursor = span_start
            while True:
                self.requests += 1
                page = list(self.account.calendar.view(
                    start=_ews(cursor, _EWS_UTC), end=_ews(span_end, _EWS_UTC), max_items=VIEW_LIMIT,
                ).only(*VIEW_FIELDS))
                for item in page:
                    if item.id not in seen:
                        seen.add(item.id)
                        yield item
                last_start = _plain(page[-1].start) if page and isinstance(page[-1].start, datetime) else None
                if len(page) < VIEW_LIMIT or last_start is None or last_start <= cursor:
                    break
                cursor = last_start  # the items starting then are asked for again, and skipped as seen
            span_start = span_end

    def canonical_zone(self, name: str) -> str:
        """The IANA name Exchange gives back for a zone (see canonical_zone)."""
        return canonical_zone(name)

    def stored_span(self, fields: EventFields) -> tuple[datetime, datetime]:
        """The instants (UTC) Exchange keeps for the fields' start and end (see stored_span)."""
        return stored_span(fields)

    # -- writing ------------------------------------------------------------------------------------------------
    def _event_values(self, fields: EventFields) -> dict[str, object]:
        zone = EWSTimeZone(fields.time_zone)
        if fields.is_all_day:
            start, end = _all_day_bounds(fields.start, fields.end, zone)
        else:
            start, end = _ews(fields.start, zone), _ews(fields.end, zone)
        attendees = [Attendee(mailbox=EwsMailbox(email_address=address, name=name or None), response_type="Unknown")
                     for address, name in fields.attendees]
        return {
            "subject": fields.subject, "location": fields.location or None, "start": start, "end": end,
            "is_all_day": fields.is_all_day, "required_attendees": attendees or None,
            "reminder_is_set": fields.reminder_minutes is not None,
            "reminder_minutes_before_start": fields.reminder_minutes or 0,
            "body": Body(fields.notes) if fields.notes else None,
        }

    def create_event(self, fields: EventFields, *, invite: bool, uid: str | None = None) -> tuple[str, str]:
        """Create a calendar item (with the iCalendar UID given, if any); with `invite`, Exchange sends its attendees
        invitations. Returns (id, ChangeKey)."""
        with _exchange_errors():
            item = CalendarItem(account=self.account, folder=self.account.calendar, uid=uid,
                                **self._event_values(fields))
            self.requests += 1
            item.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY if invite and fields.attendees
                      else SEND_TO_NONE)
            return item.id, item.changekey

    def update_event(self, item_id: str, change_key: str, fields: EventFields, *, notify: bool,
                     overwrite: bool = False) -> tuple[str, str]:
        """Change a calendar item (a single item, a series' master or one occurrence) if Exchange still holds the
        version `change_key` names (EditConflict if not), or whatever it holds with `overwrite`. With `notify`,
        attendees get the update. Returns (id, new ChangeKey)."""
        values = self._event_values(fields)
        with _exchange_errors():
            item = CalendarItem(account=self.account, folder=self.account.calendar, id=item_id, changekey=change_key,
                                **values)
            self.requests += 1
            item.save(update_fields=list(values),
                      conflict_resolution=ALWAYS_OVERWRITE if overwrite else NEVER_OVERWRITE,
                      send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY if notify else SEND_TO_NONE)
            return item.id, item.changekey

    def delete_event(self, item_id: str, *, notify: bool) -> None:
        """Delete a calendar item (or one occurrence); with `notify`, the attendees get a cancellation. An item that
        is gone already counts as deleted."""
        try:
            with _exchange_errors():
                self.requests += 1
                CalendarItem(account=self.account, id=item_id, changekey=None).delete(
                    send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY if notify else SEND_TO_NONE)
        except ItemGone:
            pass

    def _task_values(self, fields: TaskFields) -> dict[str, object]:
        if fields.importance not in IMPORTANCES:
            raise ValueError(f"importance must be one of {', '.join(IMPORTANCES)}")
        return {
            "subject": fields.subject, "due_date": EWSDate.from_date(fields.due) if fields.due else None,
            "reminder_is_set": fields.reminder_at is not None,
            "reminder_due_by": _ews(fields.reminder_at, _EWS_UTC) if fields.reminder_at else None,
            "body": Body(fields.notes) if fields.notes else None, "importance": fields.importance,
            "status": _EWS_STATUSES[TaskStatus.COMPLETED if fields.complete else TaskStatus.NOT_STARTED],
            "percent_complete": Decimal(100) if fields.complete else Decimal(0),
        }

    def create_task(self, fields: TaskFields) -> tuple[str, str]:
        """Create a task. Returns (id, ChangeKey)."""
        with _exchange_errors():
            item = EwsTask(account=self.account, folder=self.account.tasks, **self._task_values(fields))
            self.requests += 1
            item.save()
            return item.id, item.changekey

    def update_task(self, item_id: str, change_key: str, fields: TaskFields, *,
                    overwrite: bool = False) -> tuple[str, str]:
        """Change a task if Exchange still holds the version `change_key` names (EditConflict if not), or whatever it
        holds with `overwrite`. Returns (id, new ChangeKey): Exchange may give an updated task a new id."""
        values = self._task_values(fields)
        if values["reminder_due_by"] is None:
            del values["reminder_due_by"]  # Exchange keeps a time once set; reminder_is_set false turns it off
        with _exchange_errors():
            item = EwsTask(account=self.account, folder=self.account.tasks, id=item_id, changekey=change_key, **values)
            self.requests += 1
            item.save(update_fields=list(values),
                      conflict_resolution=ALWAYS_OVERWRITE if overwrite else NEVER_OVERWRITE)
            return item.id, item.changekey

    def delete_task(self, item_id: str) -> None:
        """Delete a task; one that is gone already counts as deleted."""
        try:
            with _exchange_errors():
                self.requests += 1
                EwsTask(account=self.account, id=item_id, changekey=None).delete()
        except ItemGone:
            pass
