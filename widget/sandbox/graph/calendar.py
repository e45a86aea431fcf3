"""Graph's calendar resources on the store: events, instances, calendarView and its delta, getSchedule.

Events are the calendar folder's items: single items, series masters (with an EWS Recurrence) and the
occurrences and exceptions the sandbox computes from them (recurrence.py), so an event made over EWS shows over
Graph and the other way round. Invitations and cancellations go through delivery.py, as over EWS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lxml import etree

from .. import delivery, recurrence
from ..items import Attendee, Body, Item, Mailbox, RawXml
from ..operations.availability import free_busy_events, merged_slots
from ..soap import T_NS, ItemError
from .context import (
    GraphReply,
    GraphRequest,
    check_if_match,
    collection,
    pick,
    require,
    shared_props,
    writable_props,
)
from .convert import (
    GraphError,
    bad_request,
    body_json,
    date_time_time_zone,
    format_datetime,
    graph_id,
    not_found,
    parse_date_time_time_zone,
    parse_datetime,
    parse_recipient,
    recipient,
    store_id,
    zone_display_name,
    zone_named,
)
from .delta import DeltaGone, Snapshot, diff, page_size, read_token, sign_token

SHOW_AS = {"Free": "free", "Tentative": "tentative", "Busy": "busy", "OOF": "oof",
           "WorkingElsewhere": "workingElsewhere", "NoData": "unknown"}
RESPONSES = {"Unknown": "none", "Organizer": "organizer", "Tentative": "tentativelyAccepted", "Accept": "accepted",
             "Decline": "declined", "NoResponseReceived": "notResponded"}
EVENT_TYPES = {"Single": "singleInstance", "Occurrence": "occurrence", "Exception": "exception",
               "RecurringMaster": "seriesMaster"}
ATTENDEE_LISTS = (("RequiredAttendees", "required"), ("OptionalAttendees", "optional"), ("Resources", "resource"))
TRANSACTION_ID = "_TransactionId"
MAX_SCHEDULES = 100
MAX_SCHEDULE_DAYS = 62
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVENT_WRITABLE = {"subject", "body", "start", "end", "isAllDay", "attendees", "location", "showAs",
                  "isReminderOn", "reminderMinutesBeforeStart", "importance", "sensitivity", "categories",
                  "transactionId", "recurrence", "responseRequested", "allowNewTimeProposals", "isOnlineMeeting"}


def _zone(req: GraphRequest) -> str:
    """The zone asked for with Prefer: outlook.timezone (UTC otherwise)."""
    name = req.prefer.get("outlook.timezone") or "UTC"
    zone_named(name)  # 400 for a zone the sandbox does not know
    return name


def event_type(item: Item) -> str:
    """singleInstance, occurrence, exception or seriesMaster."""
    return EVENT_TYPES.get(str(item.value("CalendarItemType") or "Single"), "singleInstance")


def _response_time(when: datetime | None) -> str:
    """A responseStatus time: when the answer came, or Graph's zero date for none yet."""
    return format_datetime(when) if when is not None else "0001-01-01T00:00:00Z"


def event_json(req: GraphRequest, item: Item, zone: str | None = None) -> dict[str, Any]:
    """An event, its times in `zone` (the request's outlook.timezone by default)."""
    zone = zone or _zone(req)
    props = item.props
    kind = event_type(item)
    organizer: Mailbox | None = props.get("Organizer")
    attendees = [{"type": kind_name, "status": {"response": RESPONSES.get(a.response, "none"),
                                                "time": _response_time(a.last_response_time)},
                  "emailAddress": {"name": a.mailbox.name or a.mailbox.email, "address": a.mailbox.email}}
                 for field, kind_name in ATTENDEE_LISTS for a in props.get(field) or []]
    is_organizer = bool(props.get("IsOrganizer", True))
    master_id = recurrence.master_id_of(item.id) if kind in ("occurrence", "exception") else None
    return {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": graph_id(item.id),
        "createdDateTime": format_datetime(item.created),
        "lastModifiedDateTime": format_datetime(item.modified),
        "changeKey": item.change_key,
        "categories": list(props.get("Categories") or []),
        "transactionId": props.get(TRANSACTION_ID),
        "originalStartTimeZone": zone_display_name(str(props.get("StartTimeZone") or "UTC"))
        if isinstance(props.get("StartTimeZone"), str) else "UTC",
        "iCalUId": props.get("UID"),
        "reminderMinutesBeforeStart": int(props.get("ReminderMinutesBeforeStart") or 0),
        "isReminderOn": bool(props.get("ReminderIsSet", False)),
        "hasAttachments": bool(props.get("Attachments")),
        "subject": props.get("Subject") or "",
        "bodyPreview": item.value("Preview") or "",
        "importance": str(props.get("Importance") or "Normal").lower(),
        "sensitivity": str(props.get("Sensitivity") or "Normal").lower(),
        "isAllDay": bool(props.get("IsAllDayEvent", False)),
        "isCancelled": bool(props.get("IsCancelled", False)),
        "isOrganizer": is_organizer,
        "responseRequested": True,
        "seriesMasterId": graph_id(master_id) if master_id else None,
        "showAs": SHOW_AS.get(str(props.get("LegacyFreeBusyStatus") or "Busy"), "busy"),
        "type": kind,
        "responseStatus": {"response": "organizer" if is_organizer else RESPONSES.get(
            str(props.get("MyResponseType") or "NoResponseReceived"), "notResponded"),
                           "time": _response_time(None if is_organizer else props.get("AppointmentReplyTime"))},
        "body": body_json(props.get("Body")),
        "start": date_time_time_zone(props["Start"], zone),
        "end": date_time_time_zone(props["End"], zone),
        "location": {"displayName": str(props.get("Location") or ""), "locationType": "default"},
        "recurrence": recurrence_json(item) if kind == "seriesMaster" else None,
        "attendees": attendees,
        "organizer": recipient(organizer),
    }


# -- recurrence between Graph's patternedRecurrence and EWS's Recurrence -----------------------------------------------
_GRAPH_PATTERNS = {"daily": "DailyRecurrence", "weekly": "WeeklyRecurrence", "absoluteMonthly":
                   "AbsoluteMonthlyRecurrence"}


def recurrence_xml(value: Any) -> RawXml:
    """An EWS Recurrence for a patternedRecurrence (daily, weekly, absoluteMonthly; endDate, numbered, noEnd)."""
    if not isinstance(value, dict) or not isinstance(value.get("pattern"), dict) or not isinstance(
            value.get("range"), dict):
        raise bad_request("'recurrence' must have a 'pattern' and a 'range'.")
    pattern, span = value["pattern"], value["range"]
    kind = _GRAPH_PATTERNS.get(pattern.get("type"))
    if kind is None:
        raise bad_request(f"The recurrence pattern type '{pattern.get('type')}' is not supported by the sandbox.",
                          "ErrorInvalidRecurrence")
    root = etree.Element(f"{{{T_NS}}}Recurrence", nsmap={"t": T_NS})
    elem = etree.SubElement(root, f"{{{T_NS}}}{kind}")
    interval = pattern.get("interval", 1)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 1 <= interval <= 99:
        raise bad_request("'recurrence.pattern.interval' must be a whole number from 1 to 99.")
    etree.SubElement(elem, f"{{{T_NS}}}Interval").text = str(interval)
    if kind == "WeeklyRecurrence":
        days = pattern.get("daysOfWeek") or []
        if not isinstance(days, list) or not days or any(d not in DAY_NAMES for d in days):
            raise bad_request("A weekly pattern needs 'daysOfWeek' (monday ... sunday).")
        etree.SubElement(elem, f"{{{T_NS}}}DaysOfWeek").text = " ".join(d.title() for d in days)
        etree.SubElement(elem, f"{{{T_NS}}}FirstDayOfWeek").text = str(pattern.get("firstDayOfWeek") or
                                                                        "sunday").title()
    if kind == "AbsoluteMonthlyRecurrence":
        day = pattern.get("dayOfMonth")
        if not isinstance(day, int) or not 1 <= day <= 31:
            raise bad_request("An absoluteMonthly pattern needs 'dayOfMonth' from 1 to 31.")
        etree.SubElement(elem, f"{{{T_NS}}}DayOfMonth").text = str(day)
    range_type = span.get("type")
    names = {"endDate": "EndDateRecurrence", "numbered": "NumberedRecurrence", "noEnd": "NoEndRecurrence"}
    if range_type not in names:
        raise bad_request("'recurrence.range.type' must be endDate, numbered or noEnd.")
    holder = etree.SubElement(root, f"{{{T_NS}}}{names[range_type]}")
    etree.SubElement(holder, f"{{{T_NS}}}StartDate").text = _date_text(span.get("startDate"), "startDate")
    if range_type == "endDate":
        etree.SubElement(holder, f"{{{T_NS}}}EndDate").text = _date_text(span.get("endDate"), "endDate")
    if range_type == "numbered":
        count = span.get("numberOfOccurrences")
        if not isinstance(count, int) or not 1 <= count <= 999:
            raise bad_request("'numberOfOccurrences' must be a whole number from 1 to 999.")
        etree.SubElement(holder, f"{{{T_NS}}}NumberOfOccurrences").text = str(count)
    return RawXml(etree.tostring(root))


def _date_text(value: Any, name: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise bad_request(f"'recurrence.range.{name}' must be a date (YYYY-MM-DD).") from None


def recurrence_json(item: Item) -> dict[str, Any] | None:
    """A series master's patternedRecurrence."""
    try:
        parsed = recurrence.parse_recurrence(item.props["Recurrence"])
    except (ItemError, etree.XMLSyntaxError, KeyError):
        return None
    pattern = parsed.pattern
    kinds = {"Daily": "daily", "Weekly": "weekly", "AbsoluteMonthly": "absoluteMonthly",
             "RelativeMonthly": "relativeMonthly", "AbsoluteYearly": "absoluteYearly",
             "RelativeYearly": "relativeYearly"}
    data: dict[str, Any] = {
        "pattern": {"type": kinds[pattern.kind], "interval": pattern.interval, "month": pattern.month
                    if "Yearly" in pattern.kind else 0,
                    "dayOfMonth": pattern.day_of_month if "Absolute" in pattern.kind else 0,
                    "daysOfWeek": [DAY_NAMES[d] for d in pattern.weekdays],
                    "firstDayOfWeek": DAY_NAMES[pattern.first_day_of_week], "index": {1: "first", 2: "second",
                                                                                     3: "third", 4: "fourth",
                                                                                     -1: "last"}[pattern.week_index]},
        "range": {"type": "numbered" if parsed.count else "endDate" if parsed.end else "noEnd",
                  "startDate": parsed.start.isoformat(), "endDate": (parsed.end or date(1, 1, 1)).isoformat(),
                  "recurrenceTimeZone": "UTC", "numberOfOccurrences": parsed.count or 0},
    }
    return data


# -- lookups ------------------------------------------------------------------------------------------------------
def find_event(req: GraphRequest, event_id: str) -> Item:
    """A stored event or a computed occurrence of this mailbox's calendar; 404 otherwise."""
    store = req.store
    raw = store_id(event_id)
    item = store.items.get(raw) or store.occurrence(raw)
    if item is None or item.element != "CalendarItem" or store.folders[item.folder_id].mailbox != req.mailbox:
        raise not_found()
    return item


def _window(req: GraphRequest) -> tuple[datetime, datetime]:
    start, end = req.query.get("startDateTime"), req.query.get("endDateTime")
    if not start or not end:
        raise bad_request("This request requires a time window specified by the query string parameters "
                          "StartDateTime and EndDateTime.", "ErrorInvalidParameter")
    begin, finish = parse_datetime(start, "startDateTime"), parse_datetime(end, "endDateTime")
    if finish <= begin:
        raise bad_request("The endDateTime must be later than the startDateTime.", "ErrorInvalidParameter")
    return begin, finish


def _calendar(req: GraphRequest) -> Any:
    return req.store.folder(req.mailbox, "calendar")


# -- reading -----------------------------------------------------------------------------------------------------
def list_events(req: GraphRequest) -> GraphReply:
    """GET events: single events and series masters (no occurrences), newest start first."""
    items = sorted((item for item in _calendar(req).items.values() if item.element == "CalendarItem"),
                   key=lambda item: item.props.get("Start") or datetime.min.replace(tzinfo=UTC), reverse=True)
    zone, select = _zone(req), req.select()
    return collection(req, items, lambda item: pick(event_json(req, item, zone), select), "event",
                      f"users('{req.mailbox}')/events")


def get_event(req: GraphRequest, event_id: str) -> GraphReply:
    """GET events/{id}."""
    return GraphReply(200, pick(event_json(req, find_event(req, event_id)), req.select()), "event")


def calendar_view(req: GraphRequest) -> GraphReply:
    """GET calendarView?startDateTime&endDateTime: singles, occurrences and exceptions in the window, by start."""
    start, end = _window(req)
    items = recurrence.calendar_instances(_calendar(req), start, end)
    zone, select = _zone(req), req.select()
    return collection(req, items, lambda item: pick(event_json(req, item, zone), select), "event",
                      f"users('{req.mailbox}')/calendarView")


def instances(req: GraphRequest, event_id: str) -> GraphReply:
    """GET events/{master}/instances?startDateTime&endDateTime: the series' occurrences and exceptions."""
    master = find_event(req, event_id)
    start, end = _window(req)
    found = recurrence.expand(master, start, end) if recurrence.is_recurring_master(master) else []
    zone = _zone(req)
    return collection(req, found, lambda item: event_json(req, item, zone), "event",
                      f"users('{req.mailbox}')/events('{event_id}')/instances")


def calendar_view_delta(req: GraphRequest) -> GraphReply:
    """GET calendarView/delta: changes in the window fixed by the first request, with removals of events that left
    it; the state of a round is a snapshot in the front's cache (evicted: 410)."""
    cache = req.front.snapshots
    restart = req.link("calendarView/delta", {})
    token = req.query.get("$skiptoken") or req.query.get("$deltatoken")
    if token is None:
        start, end = _window(req)
        snapshot = Snapshot(owner=req.mailbox, window=(format_datetime(start), format_datetime(end)))
    else:
        state = read_token(req.store.secret, token)
        snapshot = cache.get(state["key"]) if state and state.get("k") == "calendar" else None
        if snapshot is None or snapshot.owner != req.mailbox:
            raise DeltaGone(restart)
        start, end = (parse_datetime(text, "window") for text in snapshot.window)
        snapshot = Snapshot(snapshot.owner, snapshot.window, dict(snapshot.held), list(snapshot.pending),
                            dict(snapshot.next_held))
    if not snapshot.pending and not snapshot.next_held:
        # A new round: what the calendar holds now, against what the client holds.
        current = {item.id: f"{item.change_key}|{format_datetime(item.props['Start'])}"
                   for item in recurrence.calendar_instances(_calendar(req), start, end)}
        snapshot.pending = diff(snapshot.held, current)
        snapshot.next_held = current
    size = page_size(req.prefer)
    page, snapshot.pending = snapshot.pending[:size], snapshot.pending[size:]
    zone = _zone(req)
    value = []
    for removed, item_id in page:
        item = None if removed else (req.store.items.get(item_id) or req.store.occurrence(item_id))
        if item is None:
            value.append({"id": graph_id(item_id), "@removed": {"reason": "deleted"}})
        else:
            value.append(event_json(req, item, zone))
    data: dict[str, Any] = {"@odata.context": req.context_url("Collection(event)"), "value": value}
    if snapshot.pending:
        key = cache.put(snapshot)
        data["@odata.nextLink"] = req.link("calendarView/delta", {"$skiptoken": sign_token(
            req.store.secret, {"k": "calendar", "key": key})})
    else:
        finished = Snapshot(snapshot.owner, snapshot.window, snapshot.next_held)
        key = cache.put(finished)
        data["@odata.deltaLink"] = req.link("calendarView/delta", {"$deltatoken": sign_token(
            req.store.secret, {"k": "calendar", "key": key})})
    return GraphReply(200, data, "Collection(event)")


# -- writing -----------------------------------------------------------------------------------------------------
def _attendees(value: Any) -> dict[str, list[Attendee]]:
    lists: dict[str, list[Attendee]] = {"RequiredAttendees": [], "OptionalAttendees": [], "Resources": []}
    if not isinstance(value, list):
        raise bad_request("'attendees' must be a list.")
    if len(value) > 500:
        raise bad_request("An event can have at most 500 attendees.", "ErrorInvalidAttendees")
    for entry in value:
        box = parse_recipient(entry, "attendees")
        kind = entry.get("type", "required")
        field = {"required": "RequiredAttendees", "optional": "OptionalAttendees", "resource": "Resources"}.get(kind)
        if field is None:
            raise bad_request("An attendee's 'type' must be required, optional or resource.")
        lists[field].append(Attendee(box, "Unknown"))
    return lists


def event_props(data: dict[str, Any]) -> dict[str, Any]:
    """The store's properties for an event a client writes."""
    data = writable_props(data, EVENT_WRITABLE, "event")
    props = shared_props(data)
    for name, field in (("start", "Start"), ("end", "End")):
        if name in data:
            props[field] = parse_date_time_time_zone(data[name], name)
    if isinstance(data.get("start"), dict) and (data["start"].get("timeZone") or "UTC").upper() != "UTC":
        props["StartTimeZone"] = data["start"]["timeZone"]
    if "isAllDay" in data:
        props["IsAllDayEvent"] = require(data["isAllDay"], "isAllDay", bool)
    if "attendees" in data:
        props.update(_attendees(data["attendees"]))
    if "location" in data:
        location = data["location"] or {}
        props["Location"] = require(location.get("displayName", "") if isinstance(location, dict) else None,
                                    "location", str)
    if "showAs" in data:
        names = {value: key for key, value in SHOW_AS.items()}
        if data["showAs"] not in names:
            raise bad_request("'showAs' must be free, tentative, busy, oof or workingElsewhere.")
        props["LegacyFreeBusyStatus"] = names[data["showAs"]]
    if "isReminderOn" in data:
        props["ReminderIsSet"] = require(data["isReminderOn"], "isReminderOn", bool)
    if "reminderMinutesBeforeStart" in data:
        minutes = require(data["reminderMinutesBeforeStart"], "reminderMinutesBeforeStart", int)
        if minutes < 0:
            raise bad_request("'reminderMinutesBeforeStart' must not be negative.")
        props["ReminderMinutesBeforeStart"] = minutes
    if "sensitivity" in data:
        value = require(data["sensitivity"], "sensitivity", str)
        if value not in ("normal", "personal", "private", "confidential"):
            raise bad_request("'sensitivity' must be normal, personal, private or confidential.")
        props["Sensitivity"] = value.title()
    if data.get("recurrence") is not None:
        props["Recurrence"] = recurrence_xml(data["recurrence"])
    return props


def create_event(req: GraphRequest) -> GraphReply:
    """POST events: 201; attendees of the organisation get an invitation and a tentative copy; a retried POST with
    the same transactionId returns the event the first one created."""
    store = req.store
    data = req.json()
    transaction = data.get("transactionId")
    calendar = _calendar(req)
    if transaction is not None:
        require(transaction, "transactionId", str)
        for item in calendar.items.values():
            if item.props.get(TRANSACTION_ID) == transaction:
                return GraphReply(201, event_json(req, item), "event")
    props = event_props(data)
    if "Start" not in props or "End" not in props:
        raise bad_request("An event needs 'start' and 'end'.", "ErrorInvalidRequest")
    if props["End"] < props["Start"]:
        raise bad_request("The event's end is before its start.", "ErrorInvalidRequest")
    props.setdefault("Subject", "")
    props.setdefault("Body", Body("Text", ""))
    if transaction is not None:
        props[TRANSACTION_ID] = transaction
    delivery.calendar_defaults(props, store.users[req.mailbox])
    props["UID"] = "040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper()
    item = store.add_item(calendar, "CalendarItem", props)
    if props.get("RequiredAttendees") or props.get("OptionalAttendees"):
        delivery.send_invitations(store, item)
    return GraphReply(201, event_json(req, item), "event")


def update_event(req: GraphRequest, event_id: str) -> GraphReply:
    """PATCH events/{id}: an organizer's change of a meeting sends updates (and cancellations to removed
    attendees)."""
    store = req.store
    item = find_event(req, event_id)
    if item.id not in store.items:
        raise GraphError(400, "ErrorInvalidRequest", "The sandbox changes single events and series as a whole; "
                         "change an occurrence over EWS.")
    check_if_match(req, item)
    data = req.json()
    data.pop("transactionId", None)
    props = event_props(data)
    before = {name: list(item.props.get(name) or []) for name in ("RequiredAttendees", "OptionalAttendees")}
    item.props.update(props)
    if item.props["End"] < item.props["Start"]:
        raise bad_request("The event's end is before its start.")
    store.touch(item)
    if item.props.get("IsOrganizer", True):
        old = {a.mailbox.email for name in before for a in before[name]}
        new = {a.mailbox.email for name in before for a in item.props.get(name) or []}
        if old - new:
            delivery.cancel_meeting(store, item, only=old - new)
        if new:
            delivery.send_invitations(store, item, kind="update")
    return GraphReply(200, event_json(req, item), "event")


def delete_event(req: GraphRequest, event_id: str) -> GraphReply:
    """DELETE events/{id}: 204; the organizer's delete of a meeting sends cancellations to its attendees."""
    store = req.store
    item = find_event(req, event_id)
    organizer = bool(item.props.get("IsOrganizer", True))
    if item.id not in store.items:  # an occurrence of a series
        master = store.items[recurrence.master_id_of(item.id) or ""]
        original = item.props.get("OriginalStart") or item.props["Start"]
        if organizer:
            delivery.cancel_occurrence_for_attendees(store, master, item)
        delivery.delete_occurrence(master, original)
        store.touch(master)
        return GraphReply(204)
    if organizer and (item.props.get("RequiredAttendees") or item.props.get("OptionalAttendees")):
        delivery.cancel_meeting(store, item)
    store.remove_item(item)
    return GraphReply(204)


# Graph's response actions on an event, and the MyResponseType each gives.
RESPONSE_ACTIONS = {"accept": "Accept", "tentativelyAccept": "Tentative", "decline": "Decline"}


def respond_to_event(req: GraphRequest, event_id: str, action: str) -> GraphReply:
    """POST events/{id}/accept, tentativelyAccept or decline {comment, sendResponse}: 202; the attendee's answer, as
    over EWS: their event shows it and, unless sendResponse is false, the organiser gets a response message and their
    event shows the attendee's response."""
    data = req.action_parameters()
    unknown = set(data) - {"comment", "sendResponse"}
    if unknown:
        raise bad_request(f"Property '{sorted(unknown)[0]}' is not supported by the sandbox's {action} action.",
                          "RequestBodyRead")
    comment, send = data.get("comment"), data.get("sendResponse", True)
    if not isinstance(comment, str | None) or not isinstance(send, bool):
        raise bad_request("'comment' must be text and 'sendResponse' true or false.")
    store = req.store
    item = find_event(req, event_id)
    if item.props.get("IsOrganizer", True):
        raise bad_request("Your request can't be completed. You can't respond to a meeting you organized.")
    if item.props.get("IsCancelled"):
        raise bad_request("Your request can't be completed. The meeting has been canceled.")
    body = Body("Text", comment) if comment else None
    saved = store.folder(req.mailbox, "sentitems") if send else None
    response = RESPONSE_ACTIONS[action]
    if item.id in store.items:
        delivery.respond_to_meeting(store, item, response, body=body, saved_copy_folder=saved, send=send)
    else:
        master = store.items[recurrence.master_id_of(item.id) or ""]
        delivery.respond_to_occurrence(store, master, item, response, body=body, saved_copy_folder=saved, send=send)
    return GraphReply(202)


def cancel_event(req: GraphRequest, event_id: str) -> GraphReply:
    """POST events/{id}/cancel {comment}: 202; the organiser cancels the meeting (or one occurrence) for every
    attendee with the comment as the cancellation's text, and their event goes to Deleted Items."""
    data = req.action_parameters()
    unknown = set(data) - {"comment"}
    if unknown:
        raise bad_request(f"Property '{sorted(unknown)[0]}' does not exist on the cancel action.", "RequestBodyRead")
    comment = data.get("comment")
    if not isinstance(comment, str | None):
        raise bad_request("'comment' must be text.")
    item = find_event(req, event_id)
    if not item.props.get("IsOrganizer", True):
        raise bad_request("Your request can't be completed. You need to be an organizer to cancel a meeting.")
    delivery.cancel_as_organizer(req.store, item, body=Body("Text", comment) if comment else None,
                                 saved_copy_folder=req.store.folder(req.mailbox, "sentitems"))
    return GraphReply(202)


# -- free/busy ---------------------------------------------------------------------------------------------------
def get_schedule(req: GraphRequest) -> GraphReply:
    """POST calendar/getSchedule: availabilityView digits, scheduleItems and workingHours per address; an unknown
    address gets an error entry; at most 100 addresses and 62 days."""
    data = req.action_parameters()
    schedules = data.get("schedules")
    if not isinstance(schedules, list) or not schedules or not all(isinstance(s, str) for s in schedules):
        raise bad_request("'schedules' must be a non-empty list of SMTP addresses.", "ErrorInvalidParameter")
    if len(schedules) > MAX_SCHEDULES:
        raise bad_request(f"The number of mailboxes ({len(schedules)}) exceeds the maximum of {MAX_SCHEDULES}.",
                          "ErrorMailboxDataArrayTooBig")
    start = parse_date_time_time_zone(data.get("startTime"), "startTime")
    end = parse_date_time_time_zone(data.get("endTime"), "endTime")
    if end <= start:
        raise bad_request("The endTime must be later than the startTime.", "ErrorInvalidTimeInterval")
    if end - start > timedelta(days=MAX_SCHEDULE_DAYS):
        raise bad_request(f"The time interval is larger than {MAX_SCHEDULE_DAYS} days.", "ErrorInvalidTimeInterval")
    interval = data.get("availabilityViewInterval", 30)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 5 <= interval <= 1440:
        raise bad_request("'availabilityViewInterval' must be a whole number of minutes from 5 to 1440.",
                          "ErrorInvalidParameter")
    zone = _zone(req)
    value = [_schedule(req, address.strip().lower(), start, end, interval, zone) for address in schedules]
    return GraphReply(200, {"@odata.context": req.context_url("Collection(microsoft.graph.scheduleInformation)"),
                            "value": value}, "Collection(scheduleInformation)")


def _schedule_item(event: Any, zone: str) -> dict[str, Any]:
    """A scheduleItem: a private or confidential item shows its time and status only."""
    props = event.item.props
    private = str(props.get("Sensitivity") or "Normal") in ("Private", "Confidential")
    item: dict[str, Any] = {
        "isPrivate": private,
        "status": SHOW_AS.get(["Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData"][event.busy],
                              "unknown"),
        "start": date_time_time_zone(event.start, zone),
        "end": date_time_time_zone(event.end, zone),
    }
    if not private:
        item.update(subject=props.get("Subject") or "", location=str(props.get("Location") or ""))
    return item


def _schedule(req: GraphRequest, address: str, start: datetime, end: datetime, interval: int,
              zone: str) -> dict[str, Any]:
    user = req.store.users.get(address)
    if user is None:
        return {"scheduleId": address, "availabilityView": "", "scheduleItems": [], "error": {
            "message": f"The mailbox {address} was not found in the organisation.",
            "responseCode": "ErrorMailRecipientNotFound"}}
    events = free_busy_events(req.store, address, start, end)
    slots = merged_slots(start, end, interval, events)
    items = [_schedule_item(event, zone) for event in events]
    begin, finish = user.working_hours
    return {
        "scheduleId": address,
        "availabilityView": "".join(str(min(slot, 4)) for slot in slots),
        "scheduleItems": items,
        "workingHours": {
            "daysOfWeek": list(DAY_NAMES[:5]),
            "startTime": f"{begin // 60:02d}:{begin % 60:02d}:00.0000000",
            "endTime": f"{finish // 60:02d}:{finish % 60:02d}:00.0000000",
            "timeZone": {"name": zone_display_name(user.time_zone)},
        },
    }

