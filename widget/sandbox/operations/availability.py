"""GetUserAvailability: free/busy views and meeting suggestions, derived from the mailboxes' calendars.

What Exchange 2016's availability service does, and so what this module does:

* Times in the request (TimeWindow, DetailedSuggestionsWindow, CurrentMeetingTime) are wall-clock times of the
  request's SerializableTimeZone (a value that carries a UTC offset is taken as that instant). Times in the reply
  are wall-clock times of that zone without an offset.
* One FreeBusyResponse per MailboxData, in request order. An address outside the organisation gets an Error
  ResponseMessage (ErrorMailRecipientNotFound) and a FreeBusyView of type None; the others still succeed.
* MergedFreeBusy holds one digit per interval: the strongest status of the calendar events touching it. Before
  Exchange2013 requests the digits are 0 free, 1 tentative, 2 busy, 3 OOF, 4 no data; from Exchange2013 on,
  4 is "working elsewhere" and 5 is "no data".
* Everyone in the organisation has Exchange's default calendar permission on everyone else's calendar
  (AvailabilityOnly): a Detailed view of somebody else's calendar is answered as the matching FreeBusy view. The
  owner (or whoever impersonates the owner) gets the details.
* Request-level problems are SOAP faults: more than 100 mailboxes (ErrorMailboxDataArrayTooBig), a window of more
  than 42 days (ErrorTimeIntervalTooBig), and the other checks of Exchange's FreeBusyViewOptions and
  SuggestionsViewOptions.
* Meeting suggestions follow Exchange's algorithm: every 30 minutes of each day of the window (future slots only),
  a slot is rated by the weighted share of required attendees in conflict (busy/OOF 1, tentative/no data 0.5,
  free outside their working hours 0.25): none Excellent, up to GoodThreshold % Good, under 50 % Fair, else Poor.
  IsWorkTime follows the organizer's working hours. Per day, slots below MinimumSuggestionQuality are dropped,
  the rest are ranked best first, non-work-time slots are capped by MaximumNonWorkHourResultsByDay and the day by
  MaximumResultsByDay; DayQuality is the best remaining quality (Poor when none).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from tzlocal.windows_tz import tz_win, win_tz

from .. import timezones
from ..items import Item
from ..recurrence import calendar_instances
from ..soap import E_NS, M_NS, T_NS, EwsFault, ItemError, local, m, response_message, sub, t
from ..store import Store, User
from . import Context, operation

MAX_MAILBOXES = 100  # Exchange's MaximumIdentityArraySize
MAX_QUERY_DAYS = 42  # Exchange 2016 on-premises MaximumQueryIntervalDays (Exchange Online allows 62)
SUGGESTION_INTERVAL = 30  # minutes between two suggested start times
_FREE_BUSY_INTERVAL = 30  # Exchange rates suggestions on a 30-minute merged free/busy string
_SERVER_NAME = "SANDBOX-EX01"

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_WORK_DAYS = "Monday Tuesday Wednesday Thursday Friday"
_VIEWS = {"None": 0, "MergedOnly": 1, "FreeBusy": 2, "FreeBusyMerged": 3, "Detailed": 6, "DetailedMerged": 7}
_VIEW_NAMES = {value: name for name, value in _VIEWS.items()}
_MERGED, _DETAILED = 1, 4
_QUALITIES = ("Excellent", "Good", "Fair", "Poor")
_ATTENDEE_TYPES = {"Organizer", "Required", "Optional", "Room", "Resource"}
# The RequestServerVersion values that know WorkingElsewhere (Exchange's internal "Exchange2012" and later).
_NEW_SCHEMA = {"Exchange2013", "Exchange2013_SP1", "Exchange2015", "Exchange2016"}

# BusyType, in the order of the enumeration (and of the digits of MergedFreeBusy from Exchange2013 on).
FREE, TENTATIVE, BUSY, OOF, WORKING_ELSEWHERE, NO_DATA = range(6)
_BUSY_NAMES = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
_BUSY_BY_NAME = {name: value for value, name in enumerate(_BUSY_NAMES)}


# -- time zones ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Switch:
    """When a SerializableTimeZone enters one of its periods (a SerializableTimeZoneTime)."""

    month: int
    day_order: int  # 1..4, or 5 (or -1) for the last such weekday of the month
    weekday: int  # Monday == 0
    time: timedelta
    year: int | None = None  # an absolute date in that year only, with day_order as the day of the month

    def local(self, year: int) -> datetime | None:
        """The wall-clock moment of the switch in `year`, or None when it does not happen that year."""
        if self.year is not None:
            if self.year != year:
                return None
            return datetime(year, self.month, self.day_order) + self.time
        first_weekday, days = calendar.monthrange(year, self.month)
        if self.day_order >= 5 or self.day_order < 0:
            last = datetime(year, self.month, days)
            day = days - (last.weekday() - self.weekday) % 7
        else:
            day = 1 + (self.weekday - first_weekday) % 7 + 7 * (self.day_order - 1)
        return datetime(year, self.month, day) + self.time


@dataclass(frozen=True)
class RequestZone:
    """A SerializableTimeZone: UTC = local time + bias (+ the bias of the period in force)."""

    bias: int = 0
    standard_bias: int = 0
    daylight_bias: int = 0
    standard: _Switch | None = None
    daylight: _Switch | None = None

    @property
    def _std(self) -> timedelta:
        return timedelta(minutes=self.bias + self.standard_bias)

    @property
    def _dst(self) -> timedelta:
        return timedelta(minutes=self.bias + self.daylight_bias)

    def _dst_bounds(self, year: int) -> tuple[datetime, datetime] | None:
        # exchangelib describes a zone without DST by two dummy switches with equal biases: no DST then either.
        if self.standard is None or self.daylight is None or self.standard_bias == self.daylight_bias:
            return None
        start, end = self.daylight.local(year), self.standard.local(year)
        if start is None or end is None:
            return None
        return start, end

    def to_utc(self, wall: datetime) -> datetime:
        """The instant of a wall-clock time of this zone (in a repeated hour, the first one)."""
        bounds = self._dst_bounds(wall.year)
        offset = self._std
        if bounds is not None:
            start, end = bounds  # daylight starts on the standard clock and ends on the daylight clock
            in_dst = start <= wall < end if start < end else (wall >= start or wall < end)
            offset = self._dst if in_dst else self._std
        return (wall + offset).replace(tzinfo=UTC)

    def to_wall(self, instant: datetime) -> datetime:
        """The wall-clock time of this zone at an instant, without an offset."""
        utc = instant.astimezone(UTC).replace(tzinfo=None)
        bounds = self._dst_bounds((utc - self._std).year)
        if bounds is None:
            return utc - self._std
        start, end = bounds[0] + self._std, bounds[1] + self._dst
        in_dst = start <= utc < end if start < end else (utc >= start or utc < end)
        return utc - (self._dst if in_dst else self._std)


def _int(elem: etree._Element | None, name: str, default: int = 0) -> int:
    text = elem.findtext(t(name)) if elem is not None else None
    if text is None or not text.strip():
        return default
    try:
        return int(text.strip())
    except ValueError:
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {name} '{text}'.") from None


def _switch_from_xml(elem: etree._Element | None) -> _Switch | None:
    if elem is None:
        return None
    month = _int(elem, "Month")
    if not 1 <= month <= 12:
        return None  # Month 0: the zone has no such switch
    hours, minutes, seconds = ((elem.findtext(t("Time")) or "00:00:00").strip().split(":") + ["0", "0"])[:3]
    weekday = (elem.findtext(t("DayOfWeek")) or "Sunday").strip()
    year = (elem.findtext(t("Year")) or "").strip()
    return _Switch(
        month=month,
        day_order=_int(elem, "DayOrder", 1),
        weekday=_DAY_NAMES.index(weekday) if weekday in _DAY_NAMES else 6,
        time=timedelta(hours=int(hours or 0), minutes=int(minutes or 0), seconds=float(seconds or 0)),
        year=int(year) if year.isdigit() else None,
    )


def zone_from_xml(elem: etree._Element) -> RequestZone:
    """Read a SerializableTimeZone (the request's t:TimeZone)."""
    standard, daylight = elem.find(t("StandardTime")), elem.find(t("DaylightTime"))
    return RequestZone(
        bias=_int(elem, "Bias"),
        standard_bias=_int(standard, "Bias"),
        daylight_bias=_int(daylight, "Bias"),
        standard=_switch_from_xml(standard),
        daylight=_switch_from_xml(daylight),
    )


def _duration_minutes(text: str) -> int:
    """Minutes of an xs:duration such as -PT1H or PT5H30M (the Bias of a GetServerTimeZones period)."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    total, number = 0.0, ""
    for char in text.lstrip("-+P"):
        if char.isdigit() or char == ".":
            number += char
        elif char in "DHMS":
            total += float(number or 0) * {"D": 1440, "H": 60, "M": 1, "S": 1 / 60}[char]
            number = ""
    return sign * round(total)


def windows_zone(windows_id: str, year: int) -> RequestZone:
    """A Windows time zone's rule in `year` as a SerializableTimeZone, from the data behind GetServerTimeZones."""
    definition = timezones.time_zone_definition(windows_id, True, year)
    periods = {p.get("Id"): p for p in definition.iter(t("Period"))}
    standard = next(p for p in periods.values() if p.get("Name") == "Standard")
    bias = _duration_minutes(standard.get("Bias", "PT0S"))
    zone = RequestZone(bias=bias)
    for transition in definition.iter(t("RecurringDayTransition")):
        period = periods[transition.findtext(t("To"))]
        switch = _Switch(
            month=int(transition.findtext(t("Month")) or 1),
            day_order=int(transition.findtext(t("Occurrence")) or 1),
            weekday=_DAY_NAMES.index(transition.findtext(t("DayOfWeek")) or "Sunday"),
            time=timedelta(minutes=_duration_minutes(transition.findtext(t("TimeOffset")) or "PT0S")),
        )
        if period.get("Name") == "Daylight":
            zone = RequestZone(bias, zone.standard_bias, _duration_minutes(period.get("Bias", "")) - bias,
                               zone.standard, switch)
        else:
            zone = RequestZone(bias, 0, zone.daylight_bias, switch, zone.daylight)
    return zone


def _user_zone(user: User, year: int) -> RequestZone:
    name = user.time_zone
    if name not in win_tz:
        # An IANA name: its Windows zone (Exchange keeps working hours in a Windows zone).
        name = tz_win.get(name, "UTC")
    try:
        return windows_zone(name, year)
    except KeyError:
        return RequestZone()


def _zone_time_xml(parent: etree._Element, tag: str, bias: int, switch: _Switch | None, dummy: _Switch) -> None:
    holder = sub(parent, t(tag))
    switch = switch or dummy
    sub(holder, t("Bias"), str(bias))
    seconds = int(switch.time.total_seconds())
    sub(holder, t("Time"), f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}")
    sub(holder, t("DayOrder"), str(5 if switch.day_order < 0 else switch.day_order))
    sub(holder, t("Month"), str(switch.month))
    sub(holder, t("DayOfWeek"), _DAY_NAMES[switch.weekday])


def zone_xml(parent: etree._Element, zone: RequestZone) -> etree._Element:
    """Append a SerializableTimeZone as <t:TimeZone> (a zone without DST gets Exchange's all-zero switches)."""
    holder = sub(parent, t("TimeZone"))
    sub(holder, t("Bias"), str(zone.bias))
    no_switch = _Switch(month=0, day_order=0, weekday=6, time=timedelta())
    _zone_time_xml(holder, "StandardTime", zone.standard_bias, zone.standard, no_switch)
    _zone_time_xml(holder, "DaylightTime", zone.daylight_bias, zone.daylight, no_switch)
    return holder


def _wall_text(value: datetime) -> str:
    return value.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")


def _parse_time(text: str | None, zone: RequestZone, name: str) -> datetime:
    """A request time as a UTC instant: a wall-clock time of the request's zone, or an instant with an offset."""
    try:
        value = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {name} '{text}'.") from None
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return zone.to_utc(value)


# -- calendars ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Event:
    start: datetime
    end: datetime
    busy: int
    item: Item


def _events(ctx: Context, email: str, start: datetime, end: datetime, exclude_uid: str | None = None) -> list[_Event]:
    """The free/busy events of a mailbox's calendar overlapping [start, end)."""
    return free_busy_events(ctx.store, email, start, end, exclude_uid)


def free_busy_events(store: Store, email: str, start: datetime, end: datetime,
                     exclude_uid: str | None = None) -> list[_Event]:
    """The free/busy events of a mailbox's calendar overlapping [start, end) (EWS's and Graph's free/busy)."""
    events = []
    # Single items and the occurrences of recurring series, cancelled ones included (they show as free).
    for item in calendar_instances(store.folder(email, "calendar"), start, end):
        if exclude_uid and str(item.props.get("UID", "")).upper() == exclude_uid:
            continue  # the meeting being rescheduled does not conflict with itself
        # No status reads as busy, an unknown one as tentative (Exchange's defaults). A cancelled meeting stays in
        # the calendar until its attendee deletes it, but no longer blocks time.
        status = str(item.value("LegacyFreeBusyStatus") or "Busy")
        busy = FREE if item.value("IsCancelled") else _BUSY_BY_NAME.get(status, TENTATIVE)
        events.append(_Event(item.props["Start"], item.props["End"], busy, item))
    return events


def _weight(busy: int) -> int:
    # Exchange's MergedFreeBusyWeight: a stronger status overwrites a weaker one; "working elsewhere" is no stronger
    # than free, and "no data" (the fill of a failed query) is overwritten by anything.
    if busy == NO_DATA:
        return 0
    if busy == WORKING_ELSEWHERE:
        return 1
    return busy + 1


def _digit(busy: int, new_schema: bool) -> str:
    if new_schema:
        return str(busy)
    return {WORKING_ELSEWHERE: "0", NO_DATA: "4"}.get(busy, str(busy))


def merged_slots(start: datetime, end: datetime, interval: int, events: list[_Event]) -> list[int]:
    """The strongest busy type per interval of [start, end), as Exchange's MergedFreeBusy computes it."""
    slots = [FREE] * math.ceil((end - start).total_seconds() / 60 / interval)
    for event in events:
        # Exchange's arithmetic: whole minutes down for the first interval, any part of an interval for the last.
        first_slot = max(0, int((event.start - start).total_seconds() / 60)) // interval
        last_minutes = (event.end - start).total_seconds() / 60
        last_slot = int(last_minutes / interval) - 1 + (1 if math.fmod(last_minutes, interval) > 0 else 0)
        last_slot = min(last_slot, len(slots) - 1)
        for index in range(first_slot, last_slot + 1):
            if _weight(slots[index]) < _weight(event.busy):
                slots[index] = event.busy
    return slots


# -- working hours ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _WorkHours:
    zone: RequestZone
    start: int  # minutes after midnight
    end: int

    def is_work_time(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies within one working day's working hours (on the attendee's clock)."""
        wall_start, wall_end = self.zone.to_wall(start), self.zone.to_wall(end)
        if wall_start.weekday() >= 5:
            return False
        day = wall_start.replace(hour=0, minute=0, second=0, microsecond=0)
        return day + timedelta(minutes=self.start) <= wall_start and wall_end <= day + timedelta(minutes=self.end)


def _work_hours(user: User, year: int) -> _WorkHours:
    return _WorkHours(_user_zone(user, year), *user.working_hours)


def _working_hours_xml(view: etree._Element, hours: _WorkHours) -> None:
    holder = sub(view, t("WorkingHours"))
    zone_xml(holder, hours.zone)
    period = sub(sub(holder, t("WorkingPeriodArray")), t("WorkingPeriod"))
    sub(period, t("DayOfWeek"), _WORK_DAYS)
    sub(period, t("StartTimeInMinutes"), str(hours.start))
    sub(period, t("EndTimeInMinutes"), str(hours.end))


# -- the request --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Attendee:
    email: str
    attendee_type: str
    exclude_conflicts: bool
    user: User | None


def _attendees(ctx: Context, op: etree._Element) -> list[_Attendee]:
    array = op.find(m("MailboxDataArray"))
    entries = [] if array is None else [e for e in array if isinstance(e.tag, str) and local(e) == "MailboxData"]
    if not entries:
        raise EwsFault("ErrorMailboxDataArrayEmpty", "There are no target users in the EmailAddress array.")
    if len(entries) > MAX_MAILBOXES:
        raise EwsFault(
            "ErrorMailboxDataArrayTooBig",
            f"There are too many target users in the EmailAddress array. The allowed size = {MAX_MAILBOXES}; "
            f"the actual size = {len(entries)}.",
        )
    attendees = []
    for entry in entries:
        email = (entry.findtext(f"{t('Email')}/{t('Address')}") or "").strip().lower()
        attendee_type = (entry.findtext(t("AttendeeType")) or "Required").strip()
        if attendee_type not in _ATTENDEE_TYPES:
            raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: AttendeeType "
                                                    f"'{attendee_type}'.")
        exclude = (entry.findtext(t("ExcludeConflicts")) or "false").strip() in ("true", "1")
        attendees.append(_Attendee(email, attendee_type, exclude, ctx.store.users.get(email)))
    return attendees


def _request_zone(ctx: Context, op: etree._Element, year_hint: int) -> RequestZone:
    elem = op.find(t("TimeZone"))
    if elem is not None:
        return zone_from_xml(elem)
    # Without a SerializableTimeZone, the TimeZoneContext header names the zone; failing both, UTC.
    for header in ctx.request.headers:
        if local(header) == "TimeZoneContext":
            definition = header.find(t("TimeZoneDefinition"))
            if definition is not None and definition.get("Id") in win_tz:
                return windows_zone(definition.get("Id", "UTC"), year_hint)
    return RequestZone()


@dataclass(frozen=True)
class _FreeBusyOptions:
    start: datetime
    end: datetime
    interval: int
    view: int


def _free_busy_options(elem: etree._Element, zone: RequestZone) -> _FreeBusyOptions:
    view_text = (elem.findtext(t("RequestedView")) or "FreeBusy").strip()
    view = _VIEWS.get(view_text)
    if view is None:
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: RequestedView '{view_text}'.")
    if view == 0:
        raise EwsFault("ErrorInvalidFreeBusyViewType", "The specified FreeBusyViewType is not valid.")
    interval = _int(elem, "MergedFreeBusyIntervalInMinutes", 30)
    interval_error = EwsFault(
        "ErrorInvalidMergedFreeBusyInterval",
        "The specified merged free/busy interval is not valid. Specify an interval that is less than the free/busy "
        "time window and between 5 and 1440 minutes.",
    )
    if not 5 <= interval <= 1440:
        raise interval_error
    window = elem.find(t("TimeWindow"))
    if window is None:
        raise EwsFault("ErrorMissingArgument", "FreeBusyViewOptions.TimeWindow is missing.")
    start = _parse_time(window.findtext(t("StartTime")), zone, "StartTime")
    end = _parse_time(window.findtext(t("EndTime")), zone, "EndTime")
    if start >= end:
        raise EwsFault("ErrorInvalidTimeInterval", "The time interval specified for FreeBusyViewOptions.TimeWindow "
                                                   "is not valid: the start time must be earlier than the end time.")
    # Exchange counts whole days between the two wall-clock times.
    days = (zone.to_wall(end) - zone.to_wall(start)).days
    if days > MAX_QUERY_DAYS:
        raise EwsFault(
            "ErrorTimeIntervalTooBig",
            f"The requested time duration specified for FreeBusyViewOptions.TimeWindow is too long. The allowed "
            f"limit = {MAX_QUERY_DAYS} days; the actual limit = {days} days.",
        )
    if (end - start).total_seconds() / 60 < interval:
        raise interval_error
    return _FreeBusyOptions(start, end, interval, view)


@dataclass(frozen=True)
class _SuggestionOptions:
    good_threshold: int
    max_per_day: int
    max_non_work_per_day: int
    duration: int
    minimum_quality: int
    first_day: datetime  # wall-clock midnights of the request's zone
    last_day: datetime  # exclusive
    current_meeting: datetime | None
    global_object_id: str | None


def _suggestion_options(elem: etree._Element, zone: RequestZone) -> _SuggestionOptions:
    window = elem.find(t("DetailedSuggestionsWindow"))
    if window is None:
        raise EwsFault("ErrorMissingArgument", "SuggestionsViewOptions.DetailedSuggestionsWindow is missing.")
    start = zone.to_wall(_parse_time(window.findtext(t("StartTime")), zone, "StartTime"))
    end = zone.to_wall(_parse_time(window.findtext(t("EndTime")), zone, "EndTime"))
    name = "SuggestionsViewOptions.DetailedSuggestionsWindow"
    if start >= end:
        raise EwsFault("ErrorInvalidTimeInterval", f"The time interval specified for {name} is not valid: the start "
                                                   f"time must be earlier than the end time.")
    for value, which in ((start, "StartDate"), (end, "EndDate")):
        if value.time() != datetime.min.time():
            raise EwsFault("ErrorInvalidArgument", f"{name}.{which} must be a date without a time of day.")
    options = dict(
        good_threshold=_int(elem, "GoodThreshold", 25),
        max_per_day=_int(elem, "MaximumResultsByDay", 24),
        max_non_work_per_day=_int(elem, "MaximumNonWorkHourResultsByDay", 0),
        duration=_int(elem, "MeetingDurationInMinutes", 60),
    )
    if not 1 <= options["good_threshold"] <= 49:
        raise EwsFault("ErrorInvalidArgument", "GoodThreshold must be between 1 and 49.")
    if not 0 <= options["max_per_day"] <= 48:
        raise EwsFault("ErrorInvalidArgument", "MaximumResultsByDay must be between 0 and 48.")
    if not 0 <= options["max_non_work_per_day"] <= 48:
        raise EwsFault("ErrorInvalidArgument", "MaximumNonWorkHourResultsByDay must be between 0 and 48.")
    if not 30 <= options["duration"] <= 1440:
        raise EwsFault("ErrorInvalidArgument", "MeetingDurationInMinutes must be between 30 and 1440.")
    quality = (elem.findtext(t("MinimumSuggestionQuality")) or "Fair").strip()
    current = elem.findtext(t("CurrentMeetingTime"))
    goid = (elem.findtext(t("GlobalObjectId")) or "").strip().upper() or None
    return _SuggestionOptions(
        **options,
        minimum_quality=_QUALITIES.index(quality) if quality in _QUALITIES else 2,
        first_day=start,
        last_day=end,
        current_meeting=_parse_time(current, zone, "CurrentMeetingTime") if current else None,
        global_object_id=goid,
    )


# -- free/busy ----------------------------------------------------------------------------------------------------
def _not_found(email: str) -> ItemError:
    return ItemError("ErrorMailRecipientNotFound",
                     f"Unable to resolve e-mail address <>SMTP:{email} to an Active Directory object.")


def _message_xml(message: etree._Element, exception_type: str, code: int) -> None:
    holder = sub(message, m("MessageXml"))
    for name, value in (("ExceptionType", exception_type), ("ExceptionCode", str(code)),
                        ("ExceptionServerName", _SERVER_NAME)):
        etree.SubElement(holder, f"{{{E_NS}}}{name}", nsmap={None: E_NS}).text = value


def _item_hex_id(item: Item) -> str:
    try:
        return base64.b64decode(item.id).hex().upper()
    except (binascii.Error, ValueError):
        return item.id


def _event_details(parent: etree._Element, item: Item, owner: bool) -> None:
    details = sub(parent, t("CalendarEventDetails"))
    private = (item.value("Sensitivity") or "Normal") != "Normal"
    if private and not owner:
        # A private item shows as such and nothing more to anyone but its owner.
        for name in ("IsMeeting", "IsRecurring", "IsException", "IsReminderSet"):
            sub(details, t(name), "false")
        sub(details, t("IsPrivate"), "true")
        return
    sub(details, t("ID"), _item_hex_id(item))
    if item.value("Subject"):
        sub(details, t("Subject"), str(item.value("Subject")))
    if item.value("Location"):
        sub(details, t("Location"), str(item.value("Location")))
    item_type = item.value("CalendarItemType") or "Single"
    sub(details, t("IsMeeting"), "true" if item.value("IsMeeting") else "false")
    sub(details, t("IsRecurring"), "true" if item_type in ("Occurrence", "Exception") else "false")
    sub(details, t("IsException"), "true" if item_type == "Exception" else "false")
    sub(details, t("IsReminderSet"), "true" if item.value("ReminderIsSet") else "false")
    sub(details, t("IsPrivate"), "true" if private else "false")


def _free_busy_response(ctx: Context, array: etree._Element, attendee: _Attendee, options: _FreeBusyOptions,
                        zone: RequestZone, new_schema: bool) -> None:
    holder = sub(array, m("FreeBusyResponse"))
    if attendee.user is None:
        message = response_message(holder, "", _not_found(attendee.email))
        _message_xml(message, "Microsoft.Exchange.InfoWorker.Common.Availability.MailRecipientNotFoundException", 5009)
        sub(sub(holder, m("FreeBusyView")), t("FreeBusyViewType"), "None")
        return
    response_message(holder, "")
    owner = attendee.email == ctx.mailbox
    view_type = options.view
    if view_type & _DETAILED and not owner:
        view_type = _VIEWS["FreeBusy"] | (view_type & _MERGED)  # default permission: AvailabilityOnly
    events = _events(ctx, attendee.email, options.start, options.end)
    view = sub(holder, m("FreeBusyView"))
    sub(view, t("FreeBusyViewType"), _VIEW_NAMES[view_type])
    if view_type & _MERGED:
        slots = merged_slots(options.start, options.end, options.interval, events)
        sub(view, t("MergedFreeBusy"), "".join(_digit(busy, new_schema) for busy in slots))
    if view_type & _VIEWS["FreeBusy"] and events:
        array_elem = sub(view, t("CalendarEventArray"))
        for event in events:
            busy = event.busy if new_schema or event.busy != WORKING_ELSEWHERE else FREE
            calendar_event = sub(array_elem, t("CalendarEvent"))
            sub(calendar_event, t("StartTime"), _wall_text(zone.to_wall(event.start)))
            sub(calendar_event, t("EndTime"), _wall_text(zone.to_wall(event.end)))
            sub(calendar_event, t("BusyType"), _BUSY_NAMES[busy])
            if view_type & _DETAILED:
                _event_details(calendar_event, event.item, owner)
    _working_hours_xml(view, _work_hours(attendee.user, zone.to_wall(options.start).year))


# -- suggestions --------------------------------------------------------------------------------------------------
@dataclass
class _AttendeeData:
    """One attendee's 30-minute free/busy over the suggestions window, and their working hours."""

    attendee: _Attendee
    start: datetime
    slots: list[int] | None
    hours: _WorkHours | None

    def busy_range(self, start: datetime, duration: int) -> list[int]:
        first = int((start - self.start).total_seconds() / 60 / _FREE_BUSY_INTERVAL)
        slots = self.slots or []
        indexes = range(first, first + duration // _FREE_BUSY_INTERVAL)
        return [slots[i] if 0 <= i < len(slots) else NO_DATA for i in indexes]

    def busy_type(self, start: datetime, duration: int) -> int:
        # The enumeration's order decides: "no data" outranks every other status here, as in Exchange.
        return max([FREE, *self.busy_range(start, duration)])

    def is_work_time(self, start: datetime, end: datetime) -> bool:
        return self.hours.is_work_time(start, end) if self.hours else True


@dataclass
class _Suggestion:
    start: datetime
    is_work_time: bool
    quality: int
    rating: tuple[Any, ...]
    conflicts: list[tuple[_Attendee, int | None]] = field(default_factory=list)


def _conflict_value(busy: int) -> float:
    return {TENTATIVE: 0.5, NO_DATA: 0.5, BUSY: 1.0, OOF: 1.0}.get(busy, 0.0)


def _rate(start: datetime, data: list[_AttendeeData], options: _SuggestionOptions) -> _Suggestion:
    """Exchange's Suggestion: the slot's quality bucket and its rating (lower is better)."""
    duration = options.duration
    end = start + timedelta(minutes=duration)
    intervals = duration // _FREE_BUSY_INTERVAL
    required = sum(1 for d in data if d.attendee.attendee_type in ("Required", "Organizer"))
    optional = sum(1 for d in data if d.attendee.attendee_type == "Optional")
    weighted_req = front_sum = opt_overlap = 0.0
    front_min = 1.0
    strongest_req = strongest_opt = FREE
    req_conflicts = opt_conflicts = inconvenience_max = inconvenience_sum = 0
    exclude = False
    rooms = rooms_free = 0
    is_work_time = True
    suggestion = _Suggestion(start, True, 3, ())
    for attendee in data:
        kind = attendee.attendee.attendee_type
        busy = attendee.busy_type(start, duration) if attendee.slots is not None else None
        suggestion.conflicts.append((attendee.attendee, busy))
        if kind == "Organizer":
            is_work_time = attendee.is_work_time(start, end)
        if busy is None or busy == NO_DATA:
            required -= kind in ("Required", "Organizer")
            optional -= kind == "Optional"
            continue
        if kind in ("Required", "Organizer"):
            exclude |= attendee.attendee.exclude_conflicts
            strongest_req = max(strongest_req, busy)
            req_conflicts += busy != FREE
            inconvenient = 0 if attendee.is_work_time(start, end) else 1
            inconvenience_max = max(inconvenience_max, inconvenient)
            inconvenience_sum = min(256, inconvenience_sum + inconvenient)
            conflict, front, conflicted = 0.0, 0, False
            moment = start
            for slot in attendee.busy_range(start, duration):
                following = moment + timedelta(minutes=_FREE_BUSY_INTERVAL)
                if slot != FREE:
                    conflict += _conflict_value(slot)
                    conflicted = True
                elif not attendee.is_work_time(moment, following):
                    conflict += 0.25  # free, but outside this attendee's working hours
                    conflicted = True
                elif not conflicted:
                    front += 1
                moment = following
            if intervals:
                front_sum += front / intervals
                front_min = min(front_min, front / intervals)
                weighted_req += conflict / intervals
        elif kind == "Optional" and busy != FREE:
            strongest_opt = max(strongest_opt, busy)
            opt_conflicts += 1
            opt_overlap += sum(1 for slot in attendee.busy_range(start, duration) if slot != FREE) / max(intervals, 1)
        elif kind == "Room":
            rooms += 1
            rooms_free += busy == FREE
    weighted_pct = weighted_req / required if required else 1.0
    front_pct = front_sum / required if required else 0.0
    if weighted_pct == 0:
        quality = 0
    elif weighted_pct * 100 >= 50:
        quality = 3
    elif weighted_pct * 100 <= options.good_threshold:
        quality = 1
    else:
        quality = 2
    if req_conflicts and exclude:
        rating: tuple[Any, ...] = (-1,)
    else:
        rating = (round(weighted_pct * 100), strongest_req, round((1 - front_min) * 100), round((1 - front_pct) * 100),
                  int(bool(rooms) and not rooms_free), inconvenience_max, inconvenience_sum,
                  round(opt_conflicts / optional * 100) if optional else 0, strongest_opt,
                  round(opt_overlap / optional * 100) if optional else 0)
    suggestion.is_work_time, suggestion.quality, suggestion.rating = is_work_time, quality, rating
    return suggestion


def _day_result(array: etree._Element, day: datetime, zone: RequestZone, data: list[_AttendeeData],
                options: _SuggestionOptions, now: datetime) -> None:
    slot, next_day = zone.to_utc(day), zone.to_utc(day + timedelta(days=1))
    raw = []
    while slot < next_day:
        if slot >= now or slot == options.current_meeting:
            raw.append(_rate(slot, data, options))
        slot += timedelta(minutes=SUGGESTION_INTERVAL)
    current = options.current_meeting
    kept = [s for s in raw if s.start == current or options.minimum_quality == 3
            or (s.rating != (-1,) and s.quality <= options.minimum_quality)]
    kept.sort(key=lambda s: (s.start != current, s.rating, s.start))
    non_work = 0
    limited = []
    for suggestion in kept:
        if not suggestion.is_work_time:
            if non_work >= options.max_non_work_per_day:
                continue
            non_work += 1
        limited.append(suggestion)
    limited = limited[:options.max_per_day]
    result = sub(array, t("SuggestionDayResult"))
    sub(result, t("Date"), _wall_text(day))
    sub(result, t("DayQuality"), _QUALITIES[min((s.quality for s in limited), default=3)])
    suggestions = sub(result, t("SuggestionArray"))
    for suggestion in limited:
        elem = sub(suggestions, t("Suggestion"))
        sub(elem, t("MeetingTime"), _wall_text(zone.to_wall(suggestion.start)))
        sub(elem, t("IsWorkTime"), "true" if suggestion.is_work_time else "false")
        sub(elem, t("SuggestionQuality"), _QUALITIES[suggestion.quality])
        conflicts = sub(elem, t("AttendeeConflictDataArray"))
        for attendee, busy in suggestion.conflicts:
            if attendee.user is None:
                sub(conflicts, t("UnknownAttendeeConflictData"))
            else:
                sub(sub(conflicts, t("IndividualAttendeeConflictData")), t("BusyType"), _BUSY_NAMES[busy or FREE])


def _suggestions_response(ctx: Context, response: etree._Element, attendees: list[_Attendee],
                          options: _SuggestionOptions, zone: RequestZone) -> None:
    holder = sub(response, m("SuggestionsResponse"))
    response_message(holder, "")
    start, end = zone.to_utc(options.first_day), zone.to_utc(options.last_day)
    # Slots late on the last day reach past the window: their free/busy is read too.
    reach = end + timedelta(minutes=options.duration)
    data = []
    for attendee in attendees:
        if attendee.user is None:
            data.append(_AttendeeData(attendee, start, None, None))
            continue
        events = _events(ctx, attendee.email, start, reach, options.global_object_id)
        slots = merged_slots(start, reach, _FREE_BUSY_INTERVAL, events)
        data.append(_AttendeeData(attendee, start, slots, _work_hours(attendee.user, options.first_day.year)))
    array = sub(holder, m("SuggestionDayResultArray"))
    now = datetime.now(UTC)
    day = options.first_day
    while day < options.last_day:
        _day_result(array, day, zone, data, options, now)
        day += timedelta(days=1)


@operation("GetUserAvailability")
def get_user_availability(ctx: Context, op: etree._Element) -> etree._Element:
    """GetUserAvailability: per mailbox a FreeBusyResponse, and meeting suggestions when asked for."""
    attendees = _attendees(ctx, op)
    free_busy_elem, suggestions_elem = op.find(t("FreeBusyViewOptions")), op.find(t("SuggestionsViewOptions"))
    zone = _request_zone(ctx, op, datetime.now(UTC).year)
    free_busy = _free_busy_options(free_busy_elem, zone) if free_busy_elem is not None else None
    suggestions = _suggestion_options(suggestions_elem, zone) if suggestions_elem is not None else None
    new_schema = ctx.request.requested_version in _NEW_SCHEMA
    response = etree.Element(m("GetUserAvailabilityResponse"), nsmap={"m": M_NS, "t": T_NS})
    if free_busy is not None:
        array = sub(response, m("FreeBusyResponseArray"))
        for attendee in attendees:
            _free_busy_response(ctx, array, attendee, free_busy, zone, new_schema)
    if suggestions is not None:
        _suggestions_response(ctx, response, attendees, suggestions, zone)
    return response
