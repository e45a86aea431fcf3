"""The mailbox port for the calendar and To Do over Microsoft Graph: delta pages, details in $batch, writes.

Calendar. Graph v1.0 has only calendarView/delta, whose window is fixed by a round's first request. The port's
`changes` has no window, so this adapter picks one: from `history_days` before the first request to AHEAD_DAYS
after it (the sync room's own window, 365 days ahead). The state keeps the link and the window's end; when fewer than
RENEW_DAYS of the window are left ahead, the state counts as invalid and the sync room makes a full pass over a new
window (deleting nothing until it completes). calendarView/delta gives occurrences and exceptions, never series
masters: a page names the masters of the occurrences it holds (read in one $batch), as over EWS, and the sync room
reads their occurrences through `occurrences` (events/{id}/instances). A single item is named by its own stamp.
Removals name occurrences and single items; a series deleted as a whole loses its occurrences at once and its
master at the next full pass.

Tasks: the default To Do list's tasks/delta; a task's version is its @odata.etag.

Writes carry the version the widget last saw in If-Match (unless `overwrite`): 412 is an EditConflict. Events are
created with a transactionId, so that a retried POST never makes two. Graph itself decides whom it tells: a meeting
created with attendees invites them, an appointment (none) nobody; `invite`/`notify` cannot stop an organizer's
update or cancellation going out.
"""

from __future__ import annotations

import contextlib
import html
import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
from tzlocal.windows_tz import tz_win, win_tz

from ..problems import ExchangeProblem, ItemGone, SyncStateInvalid
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
from .client import GraphClient
from .mail import BATCH, PAGE_SIZE, _finish, batch, in_batch, parse_time

AHEAD_DAYS = 365
RENEW_DAYS = 30
_KINDS = {"singleInstance": ItemKind.SINGLE, "seriesMaster": ItemKind.SERIES, "occurrence": ItemKind.OCCURRENCE,
          "exception": ItemKind.EXCEPTION}
_RESPONSES = {"none": Response.UNKNOWN, "organizer": Response.ORGANIZER, "tentativelyAccepted": Response.TENTATIVE,
              "accepted": Response.ACCEPTED, "declined": Response.DECLINED, "notResponded": Response.NOT_ANSWERED}
_STATUSES = {"notStarted": TaskStatus.NOT_STARTED, "inProgress": TaskStatus.IN_PROGRESS,
             "completed": TaskStatus.COMPLETED, "waitingOnOthers": TaskStatus.WAITING_ON_OTHERS,
             "deferred": TaskStatus.DEFERRED}
_PRIVATE = frozenset({"private", "confidential"})
_UTC_PREFER = 'outlook.timezone="UTC", outlook.body-content-type="text"'
STAMP_SELECT = "id,changeKey,start,end,type,sensitivity"


# -- conversions --------------------------------------------------------------------------------------------------
def zone_of(name: str | None) -> ZoneInfo | None:
    """A zone by its IANA or Windows name; None for one unknown."""
    if not name:
        return None
    try:
        return ZoneInfo("UTC" if name.upper() == "UTC" else win_tz.get(name, name))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def canonical_zone(name: str) -> str:
    """The IANA name Exchange Online gives back for a zone: it keeps Windows zones, so Europe/Vienna returns as
    Europe/Berlin (both are "W. Europe Standard Time")."""
    windows = tz_win.get(name)
    return win_tz.get(windows, name) if windows else name


def windows_zone(name: str) -> str:
    """The Windows name Graph keeps for an IANA zone (the IANA name where none exists)."""
    return "UTC" if name.upper() in ("UTC", "ETC/UTC") else tz_win.get(name, name)


def _instant(value: Any) -> datetime | None:
    """A dateTimeTimeZone as an aware UTC datetime."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        return None
    moment = parse_time(value["dateTime"])
    zone = zone_of(value.get("timeZone"))
    if moment is None or zone is None or zone.key == "UTC":
        return moment
    return moment.replace(tzinfo=zone).astimezone(UTC)


def _wall(moment: datetime, zone_name: str) -> dict[str, str]:
    zone = zone_of(zone_name) or UTC
    return {"dateTime": moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": windows_zone(zone_name)}


def _text(body: Any) -> str:
    """A body as plain text (Graph gives HTML where the text preference is not honoured)."""
    if not isinstance(body, dict):
        return ""
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "").lower() == "html":
        return " ".join(html.unescape(nh3.clean(content, tags=set())).split())
    return content


def version_of(entity: dict[str, Any]) -> str:
    """An item's version: its changeKey, or the inside of its @odata.etag (To Do tasks have no changeKey)."""
    if entity.get("changeKey"):
        return str(entity["changeKey"])
    tag = str(entity.get("@odata.etag") or "")
    return tag.removeprefix("W/").strip('"')


def _if_match(change_key: str) -> dict[str, str]:
    return {"If-Match": f'W/"{change_key}"'}


def event_of(data: dict[str, Any]) -> Event:
    """A Graph event as the port's Event."""
    organizer = ((data.get("organizer") or {}).get("emailAddress") or {}).get("address") or ""
    attendees = []
    for attendee in data.get("attendees") or []:
        box = attendee.get("emailAddress") or {}
        address = str(box.get("address") or "").lower()
        if address:
            answer = (attendee.get("status") or {}).get("response") or "none"
            attendees.append((address, str(box.get("name") or ""), _RESPONSES.get(answer, Response.UNKNOWN)))
    zone_name = data.get("originalStartTimeZone")
    zone = zone_of(zone_name)
    return Event(
        item_id=data["id"], change_key=version_of(data), kind=_KINDS.get(data.get("type") or "", ItemKind.SINGLE),
        uid=str(data.get("iCalUId") or ""), subject=data.get("subject") or "",
        location=str((data.get("location") or {}).get("displayName") or ""),
        start=_instant(data.get("start")), end=_instant(data.get("end")),  # type: ignore[arg-type]
        is_all_day=bool(data.get("isAllDay")), time_zone=zone.key if zone else None, organizer=organizer.lower(),
        attendees=tuple(attendees),
        reminder_minutes=int(data.get("reminderMinutesBeforeStart") or 0) if data.get("isReminderOn") else None,
        notes=_text(data.get("body")), is_cancelled=bool(data.get("isCancelled")),
        last_modified=parse_time(data.get("lastModifiedDateTime")),
        is_private=str(data.get("sensitivity") or "").lower() in _PRIVATE,
    )


def task_of(data: dict[str, Any]) -> TaskData:
    """A To Do task as the port's TaskData."""
    due = data.get("dueDateTime")
    importance = str(data.get("importance") or "normal").title()
    return TaskData(
        item_id=data["id"], change_key=version_of(data), subject=data.get("title") or "",
        due=date.fromisoformat(due["dateTime"][:10]) if isinstance(due, dict) and due.get("dateTime") else None,
        status=_STATUSES.get(data.get("status") or "", TaskStatus.NOT_STARTED),
        completed_at=_instant(data.get("completedDateTime")),
        reminder_at=_instant(data.get("reminderDateTime")) if data.get("isReminderOn") else None,
        importance=importance if importance in IMPORTANCES else "Normal", notes=_text(data.get("body")),
        last_modified=parse_time(data.get("lastModifiedDateTime")),
    )


def _all_day_bounds(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """An all-day item spans whole days of its zone: from the start's midnight to the midnight after its end."""
    first = start.astimezone(zone).date()
    local_end = end.astimezone(zone)
    last = local_end.date() if local_end.time() == time(0) and local_end.date() > first else \
        local_end.date() + timedelta(days=1)
    return datetime.combine(first, time(0), zone), datetime.combine(last, time(0), zone)


def stored_span(fields: EventFields) -> tuple[datetime, datetime]:
    """The instants (UTC) Exchange Online keeps for the fields' start and end (whole days for an all-day item)."""
    if fields.is_all_day:
        start, end = _all_day_bounds(fields.start, fields.end, zone_of(fields.time_zone) or ZoneInfo("UTC"))
        return start.astimezone(UTC), end.astimezone(UTC)
    return fields.start.astimezone(UTC), fields.end.astimezone(UTC)


def _event_body(fields: EventFields) -> dict[str, Any]:
    start, end = fields.start, fields.end
    if fields.is_all_day:
        start, end = _all_day_bounds(start, end, zone_of(fields.time_zone) or ZoneInfo("UTC"))
    return {
        "subject": fields.subject, "body": {"contentType": "text", "content": fields.notes},
        "start": _wall(start, fields.time_zone), "end": _wall(end, fields.time_zone), "isAllDay": fields.is_all_day,
        "location": {"displayName": fields.location},
        "attendees": [{"type": "required", "emailAddress": {"address": a, **({"name": n} if n else {})}}
                      for a, n in fields.attendees],
        "isReminderOn": fields.reminder_minutes is not None,
        "reminderMinutesBeforeStart": fields.reminder_minutes or 0,
    }


def _task_body(fields: TaskFields) -> dict[str, Any]:
    if fields.importance not in IMPORTANCES:
        raise ValueError(f"importance must be one of {', '.join(IMPORTANCES)}")
    return {
        "title": fields.subject, "body": {"contentType": "text", "content": fields.notes},
        "importance": fields.importance.lower(), "status": "completed" if fields.complete else "notStarted",
        "dueDateTime": {"dateTime": f"{fields.due.isoformat()}T00:00:00", "timeZone": "UTC"} if fields.due else None,
        "isReminderOn": fields.reminder_at is not None,
        "reminderDateTime": _wall(fields.reminder_at, "UTC") if fields.reminder_at else None,
    }


class GraphCalendar:
    """The calendar and the default To Do list of one mailbox over Graph."""

    client: GraphClient
    history_days: int

    # -- reading ------------------------------------------------------------------------------------------------
    def _task_list(self) -> str:
        """The default To Do list's id (asked once per port)."""
        found = getattr(self, "_task_list_id", None)
        if found is None:
            lists = self.client.get("todo/lists").get("value") or []
            default = next((entry for entry in lists if entry.get("wellknownListName") == "defaultList"), None)
            if default is None:
                raise ExchangeProblem("no_folder", f"The mailbox {self.client.mailbox} has no default To Do list.")
            found = self._task_list_id = str(default["id"])
        return found

    def changes(self, folder: str, sync_state: str | None) -> ChangesPage:
        """The next page of changes of the "calendar" or "tasks" folder since `sync_state` (None: from the start)."""
        prefer = f"odata.maxpagesize={PAGE_SIZE}"
        if folder == "tasks":
            if sync_state:
                data = self.client.send("GET", sync_state, whole=True, prefer=prefer).json()
            else:
                data = self.client.get(f"todo/lists/{quote(self._task_list(), safe='')}/tasks/delta", prefer=prefer)
            page = ChangesPage()
            for entry in data.get("value") or []:
                if "@removed" in entry:
                    page.deleted.append(entry["id"])
                else:
                    page.changed.append(ItemStamp(entry["id"], version_of(entry)))
            return _finish(page, data)
        return self._calendar_changes(sync_state, f"{prefer}, {_UTC_PREFER}")

    def _calendar_changes(self, sync_state: str | None, prefer: str) -> ChangesPage:
        now = datetime.now(UTC)
        if sync_state:
            try:
                state = json.loads(sync_state)
                link, window_end = str(state["link"]), datetime.fromisoformat(state["window_end"])
            except (ValueError, KeyError, TypeError):
                raise SyncStateInvalid() from None
            if window_end < now + timedelta(days=AHEAD_DAYS - RENEW_DAYS):
                raise SyncStateInvalid()  # the window has moved on: a full pass over today's window
            data = self.client.send("GET", link, whole=True, prefer=prefer).json()
        else:
            start = (now - timedelta(days=self.history_days)).replace(microsecond=0)
            window_end = (now + timedelta(days=AHEAD_DAYS)).replace(microsecond=0)
            data = self.client.get("calendarView/delta", prefer=prefer, params={
                "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": window_end.strftime("%Y-%m-%dT%H:%M:%SZ")})
        page = ChangesPage()
        masters: list[str] = []
        for entry in data.get("value") or []:
            kind = entry.get("type")
            if "@removed" in entry:
                page.deleted.append(entry["id"])
            elif kind in ("occurrence", "exception"):
                if entry.get("seriesMasterId") and entry["seriesMasterId"] not in masters:
                    masters.append(entry["seriesMasterId"])
            else:
                page.changed.append(self._stamp(entry))
        page.changed += self._master_stamps(masters)
        _finish(page, data)
        page.sync_state = json.dumps({"link": page.sync_state, "window_end": window_end.isoformat()})
        return page

    def _stamp(self, entry: dict[str, Any]) -> ItemStamp:
        return ItemStamp(entry["id"], version_of(entry), _KINDS.get(entry.get("type") or "", ItemKind.SINGLE),
                         _instant(entry.get("start")), _instant(entry.get("end")),
                         is_private=str(entry.get("sensitivity") or "").lower() in _PRIVATE)

    def _master_stamps(self, masters: list[str]) -> list[ItemStamp]:
        stamps = []
        for first in range(0, len(masters), BATCH):
            chunk = masters[first:first + BATCH]
            answers = self._batch_get([f"events/{quote(m, safe='')}?$select={STAMP_SELECT}" for m in chunk])
            stamps += [self._stamp(answer) for answer in answers if answer is not None]
        return stamps

    def _batch_get(self, paths: list[str]) -> list[dict[str, Any] | None]:
        """GET each path in one $batch; the bodies in order, None for one gone (404)."""
        steps = [{"id": str(n), "method": "GET", "url": in_batch(self.client, path),
                  "headers": {"Prefer": f'IdType="ImmutableId", {_UTC_PREFER}'}} for n, path in enumerate(paths)]
        answers = batch(self.client, steps)
        found: list[dict[str, Any] | None] = []
        for n in range(len(paths)):
            answer = answers.get(str(n)) or {}
            status = int(answer.get("status") or 0)
            if status == 404:
                found.append(None)
            elif status >= 400 or not status:
                raise ExchangeProblem("throttled" if status == 429 else "server",
                                      "Exchange Online could not give an item right now. Try again later.")
            else:
                found.append(answer.get("body"))
        return found

    def _details(self, ids: list[str], path: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
        for first in range(0, len(ids), BATCH):
            chunk = ids[first:first + BATCH]
            yield from zip(chunk, self._batch_get([f"{path}/{quote(i, safe='')}" for i in chunk]), strict=True)

    def events(self, item_ids: Iterable[str]) -> Iterator[tuple[str, Event | None]]:
        """Calendar items by id, BATCH per $batch; None for an item gone meanwhile."""
        for item_id, data in self._details(list(item_ids), "events"):
            yield item_id, event_of(data) if data else None

    def tasks(self, item_ids: Iterable[str]) -> Iterator[tuple[str, TaskData | None]]:
        """Tasks by id, BATCH per $batch; None for a task gone meanwhile."""
        ids = list(item_ids)
        if not ids:
            return
        path = f"todo/lists/{quote(self._task_list(), safe='')}/tasks"
        for item_id, data in self._details(ids, path):
            yield item_id, task_of(data) if data else None

    def occurrences(self, series: dict[str, Event], start: datetime, end: datetime) -> dict[str, list[Event]]:
        """The occurrences and exceptions of each series during [start, end): events/{id}/instances, one request per
        series (more for a series with over PAGE_SIZE of them in the window)."""
        found: dict[str, list[Event]] = {}
        window = {"startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "endDateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for master in series.values():
            events: list[Event] = []
            try:
                data = self.client.get(f"events/{quote(master.item_id, safe='')}/instances", params=window,
                                       prefer=f"odata.maxpagesize={PAGE_SIZE}, {_UTC_PREFER}")
                while True:
                    events += [event_of(entry) for entry in data.get("value") or []]
                    if not data.get("@odata.nextLink"):
                        break
                    data = self.client.send("GET", data["@odata.nextLink"], whole=True, prefer=_UTC_PREFER).json()
            except ItemGone:
                pass  # the series went meanwhile: no occurrences
            found[master.item_id] = events
        return found

    def canonical_zone(self, name: str) -> str:
        """The IANA name Exchange Online gives back for a zone (see canonical_zone)."""
        return canonical_zone(name)

    def stored_span(self, fields: EventFields) -> tuple[datetime, datetime]:
        """The instants (UTC) Exchange Online keeps for the fields' start and end (see stored_span)."""
        return stored_span(fields)

    # -- writing ------------------------------------------------------------------------------------------------
    def create_event(self, fields: EventFields, *, invite: bool, uid: str | None = None) -> tuple[str, str]:
        """Create a calendar item with a transactionId (a retried POST makes no second item). Graph invites the
        attendees of a meeting whatever `invite` says (it has no way to save one quietly). Returns (id, changeKey)."""
        body = _event_body(fields)
        body["transactionId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, uid)) if uid else str(uuid.uuid4())
        created = self.client.send("POST", "events", json=body, prefer=_UTC_PREFER).json()
        return created["id"], version_of(created)

    def update_event(self, item_id: str, change_key: str, fields: EventFields, *, notify: bool,
                     overwrite: bool = False) -> tuple[str, str]:
        """Change a calendar item if Exchange still holds version `change_key` (If-Match; EditConflict if not), or
        whatever it holds with `overwrite`. Returns (id, new changeKey)."""
        headers = {} if overwrite else _if_match(change_key)
        changed = self.client.send("PATCH", f"events/{quote(item_id, safe='')}", json=_event_body(fields),
                                   headers=headers, prefer=_UTC_PREFER).json()
        return changed["id"], version_of(changed)

    def delete_event(self, item_id: str, *, notify: bool) -> None:
        """Delete a calendar item (an organizer's delete of a meeting cancels it); one gone already counts."""
        with contextlib.suppress(ItemGone):
            self.client.send("DELETE", f"events/{quote(item_id, safe='')}")

    def create_task(self, fields: TaskFields) -> tuple[str, str]:
        """Create a task in the default To Do list. Returns (id, etag)."""
        body = {key: value for key, value in _task_body(fields).items() if value is not None}
        created = self.client.send("POST", f"todo/lists/{quote(self._task_list(), safe='')}/tasks", json=body).json()
        return created["id"], version_of(created)

    def update_task(self, item_id: str, change_key: str, fields: TaskFields, *,
                    overwrite: bool = False) -> tuple[str, str]:
        """Change a task if Exchange still holds version `change_key` (EditConflict if not), or whatever it holds
        with `overwrite`. Returns (id, new etag)."""
        headers = {} if overwrite else _if_match(change_key)
        path = f"todo/lists/{quote(self._task_list(), safe='')}/tasks/{quote(item_id, safe='')}"
        changed = self.client.send("PATCH", path, json=_task_body(fields), headers=headers).json()
        return changed["id"], version_of(changed)

    def delete_task(self, item_id: str) -> None:
        """Delete a task; one gone already counts."""
        with contextlib.suppress(ItemGone):
            self.client.send("DELETE", f"todo/lists/{quote(self._task_list(), safe='')}/tasks/"
                                       f"{quote(item_id, safe='')}")
