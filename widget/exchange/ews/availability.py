"""Free/busy of several mailboxes, in one GetUserAvailability request.

exchangelib's own ``Protocol.get_free_busy_info`` cuts the mailboxes into requests of 100 and first asks the
server for its time zones (GetServerTimeZones). ``get_availability`` builds on the same service class but sends
exactly one request per call, whatever the number of attendees (Exchange refuses more than 100 with
ErrorMailboxDataArrayTooBig, which the caller then gets as an ``AvailabilityError``), describes the time zone itself
and reads what exchangelib leaves out: every per-mailbox error.

Times go to Exchange as wall-clock times of the zone of ``start`` (with that zone's rule, as a SerializableTimeZone)
and come back the same way; everything returned is timezone-aware in that zone.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from exchangelib.errors import ErrorServerBusy, ResponseMessageError, SOAPError
from exchangelib.properties import DaylightTime, Email, MailboxData, StandardTime, TimeZone
from exchangelib.services.get_user_availability import GetUserAvailability
from exchangelib.util import TNS, add_xml_child, create_element, set_xml_value

from ..values import Availability, BusyEvent, WorkingHours, WorkingPeriod

BUSY_TYPES = ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData")
VIEWS = ("MergedOnly", "FreeBusy", "FreeBusyMerged", "Detailed", "DetailedMerged")
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Before Exchange2013 a MergedFreeBusy digit 4 means "no data"; from then on 4 is "working elsewhere", 5 "no data".
_OLD_DIGITS = ("Free", "Tentative", "Busy", "OOF", "NoData")
_SCAN_STEP = timedelta(days=1)


class AvailabilityError(Exception):
    """Exchange refused the whole request, e.g. ErrorMailboxDataArrayTooBig or ErrorTimeIntervalTooBig."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AttendeeAvailability:
    """What Exchange says of one attendee: an error code, or the merged free/busy, events and working hours."""

    email: str
    error: str | None = None
    error_message: str | None = None
    view_type: str = "None"
    merged: str = ""  # one digit per interval, as Exchange sends it
    statuses: tuple[str, ...] = ()  # the same, as BUSY_TYPES names
    events: list[BusyEvent] = field(default_factory=list)  # busy_type in EWS's words (LegacyFreeBusyType)
    working_hours: WorkingHours | None = None


# -- time zones ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Switch:
    month: int
    day_order: int  # 1..4, or 5 for the last such weekday of the month
    weekday: int  # Monday == 0
    time: timedelta

    def wall(self, year: int) -> datetime:
        first_weekday, days = calendar.monthrange(year, self.month)
        if self.day_order >= 5 or self.day_order < 0:
            day = days - (calendar.weekday(year, self.month, days) - self.weekday) % 7
        else:
            day = 1 + (self.weekday - first_weekday) % 7 + 7 * (self.day_order - 1)
        return datetime(year, self.month, day) + self.time


class SerializableZone(tzinfo):
    """A tzinfo following a SerializableTimeZone (what Exchange says an attendee's working hours are in)."""

    def __init__(self, bias: int, standard_bias: int = 0, daylight_bias: int = 0,
                 standard: _Switch | None = None, daylight: _Switch | None = None):
        self._std = timedelta(minutes=-(bias + standard_bias))
        self._dst = timedelta(minutes=-(bias + daylight_bias))
        has_dst = standard is not None and daylight is not None and standard_bias != daylight_bias
        self._switches = (daylight, standard) if has_dst else None

    def _bounds(self, year: int) -> tuple[datetime, datetime] | None:
        if self._switches is None:
            return None
        daylight, standard = self._switches
        assert daylight is not None and standard is not None
        return daylight.wall(year), standard.wall(year)  # on the standard clock, then on the daylight clock

    def utcoffset(self, dt: datetime | None) -> timedelta:
        """The UTC offset at a wall-clock time of this zone (fold=1 picks the second pass of a repeated hour)."""
        if dt is None:
            return self._std
        wall = dt.replace(tzinfo=None)
        bounds = self._bounds(wall.year)
        if bounds is None:
            return self._std
        start, end = bounds
        in_dst = start <= wall < end if start < end else (wall >= start or wall < end)
        if in_dst and dt.fold and wall >= end - (self._dst - self._std):
            in_dst = False  # the second pass through the repeated hour
        return self._dst if in_dst else self._std

    def dst(self, dt: datetime | None) -> timedelta:
        """How far daylight saving time moves the clock at `dt`."""
        return self.utcoffset(dt) - self._std

    def tzname(self, dt: datetime | None) -> str | None:
        """A SerializableTimeZone has no name."""
        return None

    def fromutc(self, dt: datetime) -> datetime:
        """The wall-clock time of this zone at a UTC time (what astimezone() calls)."""
        utc = dt.replace(tzinfo=None)
        bounds = self._bounds((utc + self._std).year)
        if bounds is None:
            return (utc + self._std).replace(tzinfo=self)
        start, end = bounds[0] - self._std, bounds[1] - self._dst
        in_dst = start <= utc < end if start < end else (utc >= start or utc < end)
        wall = utc + (self._dst if in_dst else self._std)
        repeated = not in_dst and end <= utc < end + (self._dst - self._std)
        return wall.replace(tzinfo=self, fold=int(repeated))


def _switch_from_xml(elem: Any) -> _Switch | None:
    if elem is None:
        return None
    month = int(elem.findtext(f"{{{TNS}}}Month") or 0)
    if not 1 <= month <= 12:
        return None
    hours, minutes, seconds = ((elem.findtext(f"{{{TNS}}}Time") or "0:0:0").split(":") + ["0", "0"])[:3]
    weekday = elem.findtext(f"{{{TNS}}}DayOfWeek") or "Sunday"
    return _Switch(
        month=month,
        day_order=int(elem.findtext(f"{{{TNS}}}DayOrder") or 1),
        weekday=_DAY_NAMES.index(weekday) if weekday in _DAY_NAMES else 6,
        time=timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds)),
    )


def _zone_from_xml(elem: Any) -> SerializableZone:
    standard, daylight = elem.find(f"{{{TNS}}}StandardTime"), elem.find(f"{{{TNS}}}DaylightTime")
    return SerializableZone(
        bias=int(elem.findtext(f"{{{TNS}}}Bias") or 0),
        standard_bias=int(standard.findtext(f"{{{TNS}}}Bias") or 0) if standard is not None else 0,
        daylight_bias=int(daylight.findtext(f"{{{TNS}}}Bias") or 0) if daylight is not None else 0,
        standard=_switch_from_xml(standard),
        daylight=_switch_from_xml(daylight),
    )


def _offset(zone: tzinfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    return offset if offset is not None else timedelta()


def _offset_changes(zone: tzinfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """(UTC instant, offset before, offset after) of every change of UTC offset in `year`, found by day then
    bisected to the second."""
    changes = []
    low = datetime(year, 1, 1, tzinfo=UTC) - _SCAN_STEP
    low_offset = _offset(zone, low)
    while low < datetime(year + 1, 1, 1, tzinfo=UTC) + _SCAN_STEP:
        high = low + _SCAN_STEP
        high_offset = _offset(zone, high)
        if high_offset != low_offset:
            before, after = low, high
            while after - before > timedelta(seconds=1):
                middle = (before + (after - before) / 2).replace(microsecond=0)
                before, after = (middle, after) if _offset(zone, middle) == low_offset else (before, middle)
            if (after + low_offset).year == year:
                changes.append((after, low_offset, high_offset))
        low, low_offset = high, high_offset
    return changes


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


# Finding a zone's switches scans its year day by day: each refresh of a schedule form's grid would pay for it.
@lru_cache(maxsize=64)
def time_zone_element(zone: tzinfo, year: int) -> TimeZone:
    """The SerializableTimeZone of `zone` in `year`: its standard offset and its yearly switches (Windows' way:
    each switch on the wall clock of the period being left, the last weekday of a month as occurrence 5)."""
    changes = _offset_changes(zone, year)
    if len(changes) != 2 or changes[0][2] != changes[1][1]:
        offset = _offset(zone, datetime(year + 1, 1, 1, tzinfo=UTC))
        # A zone without DST: exchangelib's dummy switches with no bias, which Exchange accepts.
        return TimeZone(
            bias=-_minutes(offset),
            standard_time=StandardTime(bias=0, time=time(0), occurrence=1, iso_month=1, weekday=1),
            daylight_time=DaylightTime(bias=0, time=time(0), occurrence=5, iso_month=12, weekday=7),
        )
    (first, a, b), (second, _, _) = changes
    first_is_dst = bool(first.astimezone(zone).dst())
    if first_is_dst == bool(second.astimezone(zone).dst()):
        first_is_dst = b > a
    standard_offset, daylight_offset = (a, b) if first_is_dst else (b, a)
    switches: dict[str, Any] = {}
    for instant, before, after in changes:
        wall = (instant + before).replace(tzinfo=None)
        last_day = calendar.monthrange(wall.year, wall.month)[1]
        kwargs = dict(
            time=wall.time(),
            occurrence=5 if wall.day + 7 > last_day else (wall.day - 1) // 7 + 1,
            iso_month=wall.month,
            weekday=wall.isoweekday(),
        )
        if after == daylight_offset:
            switches["daylight"] = DaylightTime(bias=-_minutes(daylight_offset - standard_offset), **kwargs)
        else:
            switches["standard"] = StandardTime(bias=0, **kwargs)
    return TimeZone(bias=-_minutes(standard_offset), standard_time=switches["standard"],
                    daylight_time=switches["daylight"])


# -- the service --------------------------------------------------------------------------------------------------
class AvailabilityService(GetUserAvailability):
    """exchangelib's GetUserAvailability, sending everything in one request (free/busy only: the widget finds the
    times that suit everyone in the free/busy itself). `more_options` lets a subclass ask for more."""

    # A failed mailbox comes back as a value, so that one unknown address does not sink the others.
    ERRORS_TO_CATCH_IN_RESPONSE = (ResponseMessageError,)

    def __init__(self, protocol: Any, zone: tzinfo):
        super().__init__(protocol=protocol)
        self.tzinfo = zone

    @property
    def _timezone(self) -> None:
        # The request's own t:TimeZone describes the zone; no TimeZoneContext header (it needs a Windows zone id).
        return None

    def call(self, **kwargs: Any) -> Iterable[Any]:  # type: ignore[override]
        """Send one request; yield per mailbox its FreeBusyView element, or the exception of its error."""
        return self._elems_to_objs(self._get_elements(payload=self.get_payload(**kwargs)))

    def get_payload(  # type: ignore[override]
        self,
        mailbox_data: list[MailboxData],
        time_zone: TimeZone,
        window: tuple[str, str],
        interval: int,
        view: str,
    ) -> Any:
        """The GetUserAvailabilityRequest, its elements in the schema's order."""
        version = self.protocol.version
        payload = create_element(f"m:{self.SERVICE_NAME}Request")
        set_xml_value(payload, time_zone, version=version)
        array = create_element("m:MailboxDataArray")
        set_xml_value(array, mailbox_data, version=version)
        payload.append(array)
        options = create_element("t:FreeBusyViewOptions")
        options.append(window_element("t:TimeWindow", window))
        add_xml_child(options, "t:MergedFreeBusyIntervalInMinutes", interval)
        add_xml_child(options, "t:RequestedView", view)
        payload.append(options)
        self.more_options(payload)
        return payload

    def more_options(self, payload: Any) -> None:
        """Elements to add after FreeBusyViewOptions (none here)."""

    def _elem_to_obj(self, elem: Any) -> Any:
        # Parsed by get_availability, which knows the mailbox and the zone.
        return elem


def window_element(tag: str, window: tuple[str, str]) -> Any:
    """A StartTime/EndTime pair of wall-clock times, as the request's windows are written."""
    elem = create_element(tag)
    add_xml_child(elem, "t:StartTime", window[0])
    add_xml_child(elem, "t:EndTime", window[1])
    return elem


def wall_text(moment: datetime) -> str:
    """A wall-clock time as the request writes it."""
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


def local_time(text: str | None, zone: tzinfo) -> datetime:
    """A wall-clock time of the answer, in `zone`."""
    value = datetime.fromisoformat((text or "").strip())
    return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)


def text_of(elem: Any, path: str) -> str | None:
    """The text of a t: element path below `elem`."""
    return elem.findtext("/".join(f"{{{TNS}}}{part}" for part in path.split("/")))


def flag_of(elem: Any, path: str) -> bool:
    """A boolean of a t: element path below `elem`."""
    return (text_of(elem, path) or "").strip() in ("true", "1")


def _new_digits(api_version: str) -> bool:
    match = re.match(r"Exchange(\d{4})", api_version or "")
    return bool(match) and int(match.group(1)) >= 2013


def _attendee(email: str, view: Any, zone: tzinfo, new_digits: bool) -> AttendeeAvailability:
    merged = text_of(view, "MergedFreeBusy") or ""
    names = BUSY_TYPES if new_digits else _OLD_DIGITS
    statuses = tuple(names[int(d)] if d.isdigit() and int(d) < len(names) else "NoData" for d in merged)
    events = []
    for event in view.iterfind(f"{{{TNS}}}CalendarEventArray/{{{TNS}}}CalendarEvent"):
        events.append(BusyEvent(
            start=local_time(text_of(event, "StartTime"), zone),
            end=local_time(text_of(event, "EndTime"), zone),
            busy_type=text_of(event, "BusyType") or "Busy",
            subject=text_of(event, "CalendarEventDetails/Subject"),
            location=text_of(event, "CalendarEventDetails/Location"),
            is_meeting=flag_of(event, "CalendarEventDetails/IsMeeting"),
            is_recurring=flag_of(event, "CalendarEventDetails/IsRecurring"),
            is_private=flag_of(event, "CalendarEventDetails/IsPrivate"),
        ))
    hours = None
    hours_elem = view.find(f"{{{TNS}}}WorkingHours")
    if hours_elem is not None:
        zone_elem = hours_elem.find(f"{{{TNS}}}TimeZone")
        periods = tuple(
            WorkingPeriod(
                weekdays=tuple(_DAY_NAMES.index(d) + 1 for d in (text_of(p, "DayOfWeek") or "").split()
                               if d in _DAY_NAMES),
                start_minute=int(text_of(p, "StartTimeInMinutes") or 0),
                end_minute=int(text_of(p, "EndTimeInMinutes") or 0),
            )
            for p in hours_elem.iterfind(f"{{{TNS}}}WorkingPeriodArray/{{{TNS}}}WorkingPeriod")
        )
        hours = WorkingHours(_zone_from_xml(zone_elem) if zone_elem is not None else UTC, periods)
    return AttendeeAvailability(email=email, view_type=text_of(view, "FreeBusyViewType") or "None", merged=merged,
                                statuses=statuses, events=events, working_hours=hours)


def _soap_fault(error: SOAPError) -> tuple[str, str]:
    # Exchange answers availability faults with only the code in faultcode ("a:ErrorMailboxDataArrayTooBig"), which
    # exchangelib cannot map to one of its exception classes.
    match = re.search(r"code: (?:\w+:)?(\w+) string: (.*?) actor:", str(error), re.S)
    return (match.group(1), match.group(2)) if match else ("SOAPError", str(error))


def get_availability(
    protocol: Any,
    attendees: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    interval_minutes: int = 30,
    requested_view: str = "DetailedMerged",
    organizer: str | None = None,
    service: AvailabilityService | None = None,
) -> Availability:
    """Free/busy of `attendees` over [start, end).

    One GetUserAvailability request, whatever the number of attendees. `organizer` (by default the first attendee,
    added in front when not among them) is sent as the meeting's organizer. Each attendee gets an entry, in request
    order: an attendee Exchange does not know (an address outside the organisation) has `error` set
    (ErrorMailRecipientNotFound) and nothing else. Raises AvailabilityError when Exchange refuses the request as a
    whole (more than 100 attendees, a window of more than 42 days, ...); ErrorServerBusy and transport errors pass
    through as exchangelib raises them. `service` may be a subclass of AvailabilityService that asks for more.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if not attendees:
        raise ValueError("at least one attendee is needed")
    if requested_view not in VIEWS:
        raise ValueError(f"requested_view must be one of {VIEWS}")
    zone = start.tzinfo
    end = end.astimezone(zone)
    emails = list(attendees)
    organizer = organizer or emails[0]
    if organizer.lower() not in (email.lower() for email in emails):
        emails.insert(0, organizer)
    organizer_index = next(i for i, email in enumerate(emails) if email.lower() == organizer.lower())
    mailbox_data = [
        MailboxData(email=Email(email_address=email), attendee_type="Organizer" if i == organizer_index else "Required",
                    exclude_conflicts=False)
        for i, email in enumerate(emails)
    ]
    service = service or AvailabilityService(protocol, zone)
    try:
        views = list(service.call(
            mailbox_data=mailbox_data,
            time_zone=time_zone_element(zone, start.year),
            window=(wall_text(start), wall_text(end)),
            interval=interval_minutes,
            view=requested_view,
        ))
    except ErrorServerBusy:
        raise
    except ResponseMessageError as error:
        raise AvailabilityError(type(error).__name__, str(error)) from error
    except SOAPError as error:
        raise AvailabilityError(*_soap_fault(error)) from error
    new_digits = _new_digits(protocol.version.api_version)
    entries = []
    for email, view in zip(emails, views, strict=True):
        if isinstance(view, Exception):
            entries.append(AttendeeAvailability(email=email, error=type(view).__name__, error_message=str(view)))
        else:
            entries.append(_attendee(email, view, zone, new_digits))
    return Availability(start=start, end=end, interval_minutes=interval_minutes, attendees=entries)
