"""Recurring calendar series: reading a Recurrence and expanding a master into its occurrences.

A calendar item created with a ``Recurrence`` keeps it as the XML the client sent (``items.RawXml``). The pattern
(daily, weekly, absolute or relative monthly and yearly) is evaluated on the dates of the item's own time zone
(``StartTimeZone``, or Exchange 2007's ``MeetingTimeZone``; UTC when the item has none), from the range's StartDate
on, until its EndDate or NumberOfOccurrences (or for ever). Every occurrence keeps the master's wall-clock start
and end time in that zone, so a 09:00 meeting in Berlin stays at 09:00 local time across a DST change, as in
Exchange.

An occurrence is not stored: it is computed whenever asked for, with an opaque id derived from the master's id and
the occurrence's original start, so the same occurrence always has the same id and ``occurrence_by_id`` can find
it again (GetItem on an id from a CalendarView).

An occurrence changed on its own (UpdateItem on its id) becomes an exception: the master keeps the changed
properties under EXCEPTIONS, by the occurrence's original start, and every expansion applies them (CalendarItemType
"Exception", its own Start and End, the same id). The master lists them as its ModifiedOccurrences; changing the
series' pattern or times drops them, as in Exchange.
"""

from __future__ import annotations

import base64
import binascii
import calendar
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree
from tzlocal.windows_tz import win_tz

from .items import Item, RawXml, format_datetime
from .soap import T_NS, ItemError, local, sub, t

if TYPE_CHECKING:
    from .store import Folder, Store

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
WEEK_INDEXES = {"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}
# DayOfWeekType also names groups of days: in a weekly pattern they stand for all their days, in a relative
# pattern ("the second weekday of the month") the n-th day of the group is meant.
DAY_GROUPS = {
    "Day": (0, 1, 2, 3, 4, 5, 6),
    "Weekday": (0, 1, 2, 3, 4),
    "WeekendDay": (5, 6),
    **{name: (number,) for number, name in enumerate(DAY_NAMES)},
}
# Occurrence ids: base64 of this prefix, the master's raw id and the occurrence's original start (Unix seconds).
# Like every sandbox id they begin with b"AAMk"; the marker byte keeps them apart from stored items' ids.
_OCCURRENCE_PREFIX = b"AAMk\x07"
_STAMP_BYTES = 8
# Properties that belong to the series as a whole, never to one of its occurrences.
# A master's exceptions: {original start: {property: value (None: removed)}}; stored, never rendered as such.
EXCEPTIONS = "_Exceptions"
_MASTER_ONLY = frozenset(
    "Recurrence FirstOccurrence LastOccurrence ModifiedOccurrences DeletedOccurrences CalendarItemType "
    f"IsRecurring {EXCEPTIONS}".split()
)
# Changing any of these on a master replaces the series' occurrences, and with them their exceptions.
SERIES_SHAPING = frozenset("Recurrence Start End StartTimeZone EndTimeZone MeetingTimeZone IsAllDayEvent".split())
# A pattern that produced no date in this many steps is broken; stop rather than spin.
_MAX_EMPTY_STEPS = 10_000


@dataclass(frozen=True)
class Pattern:
    """One recurrence pattern: which dates, relative to the range's start date, a series falls on."""

    kind: str  # "Daily", "Weekly", "AbsoluteMonthly", "RelativeMonthly", "AbsoluteYearly", "RelativeYearly"
    interval: int = 1
    weekdays: tuple[int, ...] = ()  # date.weekday() numbers (Monday == 0)
    first_day_of_week: int = 6  # Sunday, the schema's default
    day_of_month: int = 1
    week_index: int = 1  # 1..4, or -1 for the last
    month: int = 1


@dataclass(frozen=True)
class Recurrence:
    """A parsed Recurrence: its pattern and its range (a start date and an end date, a count, or neither)."""

    pattern: Pattern
    start: date
    end: date | None = None
    count: int | None = None

    def dates(self, not_before: date | None = None) -> Iterator[date]:
        """The series' dates in order. `not_before` lets an open or dated series skip ahead (never a counted one,
        whose count starts at the first date)."""
        dates = _pattern_dates(self.pattern, self.start, None if self.count is not None else not_before)
        if self.count is not None:
            dates = islice(dates, self.count)
        for day in dates:
            if self.end is not None and day > self.end:
                return
            yield day


def parse_recurrence(value: Any) -> Recurrence:
    """Read a ``<t:Recurrence>`` (an element, or the RawXml the store keeps).

    Raises ItemError("ErrorCalendarInvalidRecurrence") for a pattern or range that cannot be evaluated.
    """
    if isinstance(value, str):
        value = value.encode()
    elem = etree.fromstring(bytes(value)) if isinstance(value, bytes) else value
    if not isinstance(elem, etree._Element):
        raise _invalid("no Recurrence element")
    parts = [child for child in elem if isinstance(child.tag, str)]
    if len(parts) != 2:
        raise _invalid("a Recurrence needs a pattern and a range")
    return _with_range(_pattern(parts[0]), parts[1])


def _invalid(why: str) -> ItemError:
    return ItemError("ErrorCalendarInvalidRecurrence", f"The recurrence pattern is invalid: {why}.")


def _text(elem: etree._Element, name: str) -> str:
    value = elem.findtext(t(name))
    if value is None:
        raise _invalid(f"{local(elem)} has no {name}")
    return value.strip()


def _int(elem: etree._Element, name: str, low: int, high: int) -> int:
    try:
        number = int(_text(elem, name))
    except ValueError:
        raise _invalid(f"{name} is not a number") from None
    if not low <= number <= high:
        raise _invalid(f"{name} {number} is out of range")
    return number


def _day_group(text: str) -> tuple[int, ...]:
    try:
        return DAY_GROUPS[text]
    except KeyError:
        raise _invalid(f"'{text}' is not a day of the week") from None


def _month(elem: etree._Element) -> int:
    try:
        return MONTH_NAMES.index(_text(elem, "Month")) + 1
    except ValueError:
        raise _invalid("unknown month") from None


def _week_index(elem: etree._Element) -> int:
    try:
        return WEEK_INDEXES[_text(elem, "DayOfWeekIndex")]
    except KeyError:
        raise _invalid("unknown DayOfWeekIndex") from None


def _pattern(elem: etree._Element) -> Pattern:
    kind = local(elem).removesuffix("Recurrence")
    if kind == "Daily":
        return Pattern(kind, interval=_int(elem, "Interval", 1, 999))
    if kind == "Weekly":
        days: set[int] = set()
        for name in _text(elem, "DaysOfWeek").split():
            days.update(_day_group(name))
        if not days:
            raise _invalid("a weekly pattern needs DaysOfWeek")
        first = elem.findtext(t("FirstDayOfWeek"))
        return Pattern(kind, interval=_int(elem, "Interval", 1, 99), weekdays=tuple(sorted(days)),
                       first_day_of_week=DAY_NAMES.index(first.strip()) if first and first.strip() in DAY_NAMES
                       else 6)
    if kind == "AbsoluteMonthly":
        return Pattern(kind, interval=_int(elem, "Interval", 1, 99), day_of_month=_int(elem, "DayOfMonth", 1, 31))
    if kind == "RelativeMonthly":
        return Pattern(kind, interval=_int(elem, "Interval", 1, 99), weekdays=_day_group(_text(elem, "DaysOfWeek")),
                       week_index=_week_index(elem))
    if kind == "AbsoluteYearly":
        return Pattern(kind, day_of_month=_int(elem, "DayOfMonth", 1, 31), month=_month(elem))
    if kind == "RelativeYearly":
        return Pattern(kind, weekdays=_day_group(_text(elem, "DaysOfWeek")), week_index=_week_index(elem),
                       month=_month(elem))
    # Task regeneration patterns ("DailyRegeneration", ...) depend on when a task is completed: no fixed dates.
    raise ItemError("ErrorUnsupportedRecurrence", f"{local(elem)} cannot be expanded into occurrences.")


def _date(elem: etree._Element, name: str) -> date:
    text = _text(elem, name)
    try:
        # xs:date may carry a zone ("2026-03-23Z", "2026-03-23+01:00"); the date is what counts.
        return date.fromisoformat(text[:10])
    except ValueError:
        raise _invalid(f"{name} '{text}' is not a date") from None


def _with_range(pattern: Pattern, elem: etree._Element) -> Recurrence:
    kind = local(elem)
    start = _date(elem, "StartDate")
    if kind == "NoEndRecurrence":
        return Recurrence(pattern, start)
    if kind == "EndDateRecurrence":
        end = _date(elem, "EndDate")
        if end < start:
            raise _invalid("EndDate is before StartDate")
        return Recurrence(pattern, start, end=end)
    if kind == "NumberedRecurrence":
        return Recurrence(pattern, start, count=_int(elem, "NumberOfOccurrences", 1, 999))
    raise _invalid(f"unknown range {kind}")


# -- pattern arithmetic ----------------------------------------------------------------------------------------------


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _clamped(year: int, month: int, day: int) -> date:
    # "Day 31 of every month" falls on the last day of shorter months, as in Outlook and Exchange.
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _nth_day(year: int, month: int, weekdays: tuple[int, ...], index: int) -> date:
    """The index-th (-1: last) day of the month whose weekday is one of `weekdays`."""
    last = calendar.monthrange(year, month)[1]
    days = [date(year, month, day) for day in range(1, last + 1) if date(year, month, day).weekday() in weekdays]
    return days[-1] if index == -1 else days[min(index, len(days)) - 1]


def _pattern_dates(pattern: Pattern, start: date, not_before: date | None) -> Iterator[date]:
    """Every date of the pattern on or after `start`, in order (endless; skips ahead to `not_before` if given)."""
    floor = max(start, not_before) if not_before else start
    kind, interval = pattern.kind, pattern.interval
    if kind == "Daily":
        steps = max(0, (floor - start).days // interval)
        day = start + timedelta(days=steps * interval)
        while True:
            if day >= floor:
                yield day
            day += timedelta(days=interval)
    if kind == "Weekly":
        # Weeks are counted from the week (starting on FirstDayOfWeek) holding the start date.
        first_week = start - timedelta(days=(start.weekday() - pattern.first_day_of_week) % 7)
        offsets = sorted((weekday - pattern.first_day_of_week) % 7 for weekday in pattern.weekdays)
        week = max(0, (floor - first_week).days // 7 // interval - 1)
        while True:
            base = first_week + timedelta(weeks=week * interval)
            for offset in offsets:
                day = base + timedelta(days=offset)
                if day >= floor:
                    yield day
            week += 1
    monthly = kind in ("AbsoluteMonthly", "RelativeMonthly")
    step = interval if monthly else 12
    year, month = (start.year, start.month) if monthly else (start.year, pattern.month)
    if floor.year > year + 1:
        # Skip whole periods before `floor`, keeping the series' alignment to its first month.
        periods = max(0, ((floor.year - year) * 12 + floor.month - month) // step - 1)
        year, month = _add_months(year, month, periods * step)
    empty = 0
    while empty < _MAX_EMPTY_STEPS:
        if kind in ("AbsoluteMonthly", "AbsoluteYearly"):
            day = _clamped(year, month, pattern.day_of_month)
        else:
            day = _nth_day(year, month, pattern.weekdays, pattern.week_index)
        if day >= floor:
            empty = 0
            yield day
        else:
            empty += 1
        year, month = _add_months(year, month, step)


# -- time zones -------------------------------------------------------------------------------------------------------


def item_time_zone(item: Item) -> tzinfo:
    """The zone a calendar item's recurrence is evaluated in: its StartTimeZone (or MeetingTimeZone), else UTC.

    A zone is named by a Windows id (``Id`` of a TimeZoneDefinition, or ``TimeZoneName`` of Exchange 2007's
    TimeZoneType), mapped to the IANA database through tzlocal's table; an unknown id with a Periods list falls
    back to the fixed offset of its standard period.
    """
    for name in ("StartTimeZone", "MeetingTimeZone"):
        zone = _zone_of(item.props.get(name))
        if zone is not None:
            return zone
    return UTC


def _zone_of(value: Any) -> tzinfo | None:
    elem: etree._Element | None = None
    if isinstance(value, bytes):
        try:
            elem = etree.fromstring(bytes(value))
        except etree.XMLSyntaxError:
            return None
        ident = elem.get("Id") or elem.get("TimeZoneName") or ""
    elif isinstance(value, etree._Element):
        elem = value
        ident = elem.get("Id") or elem.get("TimeZoneName") or ""
    elif isinstance(value, str):
        ident = value
    else:
        return None
    ident = ident.strip()
    if ident:
        iana = win_tz.get(ident, ident)
        try:
            return ZoneInfo(iana)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if elem is not None:
        return _fixed_zone(elem)
    return None


def _fixed_zone(elem: etree._Element) -> tzinfo | None:
    for period in elem.iter(t("Period")):
        if period.get("Name") == "Standard" and period.get("Bias"):
            minutes = _duration_minutes(period.get("Bias", ""))
            if minutes is not None:
                # Bias is what to add to local time to get UTC: the offset's opposite.
                return timezone(timedelta(minutes=-minutes))
    base = elem.findtext(t("BaseOffset"))
    if base:
        minutes = _duration_minutes(base)
        if minutes is not None:
            return timezone(timedelta(minutes=-minutes))
    return None


def _duration_minutes(text: str) -> int | None:
    """Minutes of a simple xs:duration such as "-PT1H" or "PT5H30M"."""
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("-")
    if not text.startswith("PT"):
        return None
    number, minutes = "", 0
    for char in text[2:]:
        if char.isdigit():
            number += char
        elif char in "HMS" and number:
            minutes += {"H": 60 * int(number), "M": int(number), "S": int(number) // 60}[char]
            number = ""
        else:
            return None
    return sign * minutes


# -- occurrences ------------------------------------------------------------------------------------------------------


def is_recurring_master(item: Item) -> bool:
    """Whether `item` is a calendar item with a recurrence (a series' master)."""
    return item.element == "CalendarItem" and bool(item.props.get("Recurrence"))


def _series(master: Item) -> tuple[Recurrence, tzinfo, time, timedelta] | None:
    """The master's recurrence, zone, local start time and wall-clock duration; None for a broken series."""
    start, end = master.props.get("Start"), master.props.get("End")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    try:
        recurrence = parse_recurrence(master.props["Recurrence"])
    except (ItemError, etree.XMLSyntaxError):
        return None
    zone = item_time_zone(master)
    local_start = start.astimezone(zone).replace(tzinfo=None)
    local_end = end.astimezone(zone).replace(tzinfo=None)
    return recurrence, zone, local_start.time(), local_end - local_start


def _occurrence_times(master: Item, not_before: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
    """(start, end) in UTC of the master's occurrences in order, from those that may end after `not_before`."""
    series = _series(master)
    if series is None:
        return
    recurrence, zone, start_time, duration = series
    skip_to = None
    if not_before is not None:
        # An occurrence that began up to `duration` (plus a day of zone slack) earlier may still be running.
        skip_to = (not_before.astimezone(zone) - duration).date() - timedelta(days=1)
    deleted = set(master.props.get("DeletedOccurrences") or ())
    for day in recurrence.dates(skip_to):
        wall = datetime.combine(day, start_time)
        # Wall-clock arithmetic in the zone keeps 09:00 at 09:00 across DST; zoneinfo picks the first of two
        # ambiguous times and moves a time inside a spring-forward gap by the gap, as Windows does.
        occurrence_start = wall.replace(tzinfo=zone).astimezone(UTC)
        if occurrence_start not in deleted:
            yield occurrence_start, (wall + duration).replace(tzinfo=zone).astimezone(UTC)


def occurrence_id(master: Item, original_start: datetime) -> str:
    """The opaque, stable id of the master's occurrence that originally starts at `original_start`."""
    stamp = int(original_start.timestamp()).to_bytes(_STAMP_BYTES, "big", signed=True)
    return base64.b64encode(_OCCURRENCE_PREFIX + base64.b64decode(master.id) + stamp).decode()


def _make_occurrence(master: Item, start: datetime, end: datetime) -> Item:
    """The occurrence that originally starts at `start` (an exception if it was changed on its own)."""
    props = {name: value for name, value in master.props.items() if name not in _MASTER_ONLY}
    props.update(Start=start, End=end, CalendarItemType="Occurrence", IsRecurring=True, RecurrenceId=start,
                 OriginalStart=start)
    changes = exceptions_of(master).get(start)
    if changes:
        props.update(changes)
        props = {name: value for name, value in props.items() if value is not None}
        props["CalendarItemType"] = "Exception"
    return Item(id=occurrence_id(master, start), element="CalendarItem", folder_id=master.folder_id, props=props,
                change_key=master.change_key, created=master.created, modified=master.modified)


def exceptions_of(master: Item) -> dict[datetime, dict[str, Any]]:
    """The master's changed occurrences: {original start: the properties changed}."""
    return master.props.get(EXCEPTIONS) or {}


def set_exception(master: Item, original_start: datetime, changes: dict[str, Any]) -> None:
    """Record changes of one occurrence (merged with earlier ones); the caller touches the master."""
    exceptions = dict(exceptions_of(master))
    exceptions[original_start] = {**exceptions.get(original_start, {}), **changes}
    master.props[EXCEPTIONS] = exceptions


def drop_exception(master: Item, original_start: datetime) -> None:
    """Forget the changes of one occurrence (it was deleted)."""
    exceptions = dict(exceptions_of(master))
    exceptions.pop(original_start, None)
    master.props[EXCEPTIONS] = exceptions


def modified_occurrences(item: Item) -> RawXml | None:
    """A master's ``<t:ModifiedOccurrences>`` (OccurrenceInfoType: ItemId, Start, End, OriginalStart), or None."""
    if not is_recurring_master(item):
        return None
    deleted = set(item.props.get("DeletedOccurrences") or ())
    originals = sorted(start for start in exceptions_of(item) if start not in deleted)
    if not originals:
        return None
    elem = etree.Element(t("ModifiedOccurrences"), nsmap={"t": T_NS})
    for original in originals:
        occurrence = _make_occurrence(item, original, original)
        holder = sub(elem, t("Occurrence"))
        sub(holder, t("ItemId"), Id=occurrence.id, ChangeKey=item.change_key)
        sub(holder, t("Start"), format_datetime(occurrence.props["Start"]))
        sub(holder, t("End"), format_datetime(occurrence.props["End"]))
        sub(holder, t("OriginalStart"), format_datetime(original))
    return RawXml(etree.tostring(elem))


def expand(item: Item, start: datetime, end: datetime, *, touching: bool = False) -> list[Item]:
    """The occurrences of recurring master `item` that overlap the window [start, end), in order of start.

    Each occurrence is an ``Item`` (not stored in any folder) with CalendarItemType "Occurrence", IsRecurring
    true, its own Start/End, RecurrenceId/OriginalStart (its original start), the master's other properties and
    a stable id that GetItem understands. An occurrence overlaps when it starts before `end` and ends after
    `start`; a zero-length one counts when it starts inside the window. With `touching`, one that ends exactly
    at `start` counts too (what FindItem's CalendarView does). A non-recurring item has no occurrences: [].
    """
    if not is_recurring_master(item):
        return []
    exceptions = exceptions_of(item)
    found = []
    for occ_start, occ_end in _occurrence_times(item, start):
        if occ_start >= end:
            break
        if occ_start not in exceptions and _overlaps(occ_start, occ_end, start, end, touching):
            found.append(_make_occurrence(item, occ_start, occ_end))
    # An exception may have moved anywhere: each is checked at its own times.
    deleted = set(item.props.get("DeletedOccurrences") or ())
    for original in exceptions:
        if original in deleted:
            continue
        occurrence = _make_occurrence(item, original, original)
        if _overlaps(occurrence.props["Start"], occurrence.props["End"], start, end, touching):
            found.append(occurrence)
    found.sort(key=lambda occurrence: (occurrence.props["Start"], occurrence.props["End"]))
    return found


def _overlaps(item_start: datetime, item_end: datetime, start: datetime, end: datetime, touching: bool) -> bool:
    if item_start >= end:
        return False
    if item_end > start or (touching and item_end == start):
        return True
    return item_start == item_end and item_start >= start


def calendar_instances(folder: Folder, start: datetime, end: datetime, *, touching: bool = False) -> list[Item]:
    """Everything that appears in calendar `folder` during the window [start, end), sorted by start, then end.

    That is every single (non-recurring) calendar item of the folder that overlaps the window, plus, for every
    recurring master, its occurrences that overlap it (see ``expand``); masters themselves never appear. Items
    overlap when they start before `end` and end after `start` (a zero-length item counts when it starts in the
    window; with `touching`, an item ending exactly at `start` counts too, as in a CalendarView).

    Nothing is filtered out on status: cancelled meetings (IsCancelled), free, tentative or out-of-office
    items are all returned; read ``value("LegacyFreeBusyStatus")`` and ``value("IsCancelled")`` to build
    free/busy. `start` and `end` must be timezone-aware datetimes. The returned items are the stored ones for
    single items (do not modify them) and computed ones for occurrences.
    """
    found: list[Item] = []
    for item in folder.items.values():
        if item.element != "CalendarItem":
            continue
        if is_recurring_master(item) and _series(item) is not None:
            found.extend(expand(item, start, end, touching=touching))
            continue
        item_start, item_end = item.props.get("Start"), item.props.get("End")
        if (isinstance(item_start, datetime) and isinstance(item_end, datetime)
                and _overlaps(item_start, item_end, start, end, touching)):
            found.append(item)
    found.sort(key=lambda found_item: (found_item.props["Start"], found_item.props["End"]))
    return found


def occurrence_by_id(store: Store, item_id: str) -> Item | None:
    """The occurrence an id from ``occurrence_id`` names, or None if it is not (or no longer) one."""
    master_id = master_id_of(item_id)
    master = store.items.get(master_id) if master_id else None
    if master is None or not is_recurring_master(master):
        return None
    raw = base64.b64decode(item_id)
    wanted = datetime.fromtimestamp(int.from_bytes(raw[-_STAMP_BYTES:], "big", signed=True), UTC)
    for occ_start, occ_end in _occurrence_times(master, wanted):
        if int(occ_start.timestamp()) == int(wanted.timestamp()):
            return _make_occurrence(master, occ_start, occ_end)
        if occ_start > wanted:
            break
    return None


def master_id_of(item_id: str) -> str | None:
    """The id of the master an occurrence id (from ``occurrence_id``) belongs to; None for any other id.

    What GetItem needs for a ``<t:RecurringMasterItemId OccurrenceId="..."/>``.
    """
    try:
        raw = base64.b64decode(item_id, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_OCCURRENCE_PREFIX) or len(raw) <= len(_OCCURRENCE_PREFIX) + _STAMP_BYTES:
        return None
    return base64.b64encode(raw[len(_OCCURRENCE_PREFIX):-_STAMP_BYTES]).decode()


def nth_occurrence(master: Item, index: int) -> Item | None:
    """The `index`-th (1-based) occurrence of a recurring master, as ``<t:OccurrenceItemId InstanceIndex>`` names
    it; None when the series has no such occurrence (Exchange: ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange).
    """
    if index < 1 or not is_recurring_master(master):
        return None
    found = next(islice(_occurrence_times(master), index - 1, None), None)
    return _make_occurrence(master, *found) if found is not None else None


def occurrence_info(item: Item, which: str) -> RawXml | None:
    """A master's ``<t:FirstOccurrence>`` or ``<t:LastOccurrence>`` (OccurrenceInfoType: ItemId, Start, End,
    OriginalStart) as RawXml, ready to render; None for a non-recurring item or an endless series' last one."""
    if not is_recurring_master(item) or which not in ("FirstOccurrence", "LastOccurrence"):
        return None
    series = _series(item)
    if series is None:
        return None
    recurrence = series[0]
    times = _occurrence_times(item)
    if which == "FirstOccurrence":
        chosen = next(times, None)
    elif recurrence.end is None and recurrence.count is None:
        return None
    else:
        last = deque(times, maxlen=1)
        chosen = last[0] if last else None
    if chosen is None:
        return None
    occ_start, occ_end = chosen
    elem = etree.Element(t(which), nsmap={"t": T_NS})
    sub(elem, t("ItemId"), Id=occurrence_id(item, occ_start), ChangeKey=item.change_key)
    sub(elem, t("Start"), format_datetime(occ_start))
    sub(elem, t("End"), format_datetime(occ_end))
    sub(elem, t("OriginalStart"), format_datetime(occ_start))
    return RawXml(etree.tostring(elem))


__all__ = [
    "Pattern",
    "Recurrence",
    "EXCEPTIONS",
    "SERIES_SHAPING",
    "calendar_instances",
    "drop_exception",
    "exceptions_of",
    "expand",
    "is_recurring_master",
    "item_time_zone",
    "master_id_of",
    "modified_occurrences",
    "nth_occurrence",
    "occurrence_by_id",
    "occurrence_id",
    "occurrence_info",
    "parse_recurrence",
    "set_exception",
]
