"""The time zones of the Exchange sandbox: the data behind the EWS operation GetServerTimeZones.

A real Exchange 2016 server answers GetServerTimeZones from the Windows registry of its host. The sandbox has no
registry, so it derives the same information from the IANA database (``zoneinfo``) through the Windows -> IANA
mapping that tzlocal ships (CLDR's windowsZones). For each Windows zone it publishes the rule of one year (the
current one unless told otherwise), in the shape Exchange uses for a registry rule:

* one ``t:Period`` per offset, named "Standard" or "Daylight", its ``Bias`` the negative UTC offset as an
  xs:duration and its ``Id`` ``trule:Microsoft/Registry/<windows id>/<rule id>-<Standard|Daylight>``;
* one ``t:TransitionsGroup`` (Id "0") holding a ``t:RecurringDayTransition`` per switch (to Daylight first, then
  to Standard), or a single plain ``t:Transition`` to the standard period when the zone keeps one offset all year;
* a ``t:Transitions`` list with one plain ``t:Transition`` to group "0".

exchangelib (``TimeZoneDefinition.get_std_and_dst``) reads exactly that: it tells the periods apart by their
``Name`` attribute, follows ``To`` references by ``Id``, needs one or two transitions in the group, and treats a
group with a single transition as "no daylight saving time".
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from lxml import etree
from tzlocal.windows_tz import win_tz

T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"

# Day names as the schema's DayOfWeekType spells them, indexed by datetime.date.weekday() (Monday == 0).
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Switches between standard and daylight time are weeks apart; scanning the year in one-day steps finds every
# change of offset, and bisection then pins each one to the second.
_SCAN_STEP = datetime.timedelta(days=1)
_ONE_SECOND = datetime.timedelta(seconds=1)

_UTC = datetime.UTC


@dataclass(frozen=True)
class _Switch:
    """One yearly switch between the standard and the daylight period, as a Windows registry rule states it."""

    to_daylight: bool
    month: int
    weekday: int  # datetime.date.weekday(): Monday == 0
    occurrence: int  # 1..4, or -1 for the last such weekday of the month
    # Time of day on the local wall clock just before the switch, i.e. in the period being left. Windows (and so
    # Exchange) states both dates that way: W. Europe switches to daylight at 02:00 and back to standard at 03:00.
    time_of_day: datetime.timedelta


@dataclass(frozen=True)
class _ZoneRule:
    """The offsets and switches of one zone in one year; ``switches`` is empty for a zone without DST."""

    standard_offset: datetime.timedelta
    daylight_offset: datetime.timedelta | None
    switches: tuple[_Switch, ...]


def windows_zone_ids() -> list[str]:
    """Return the Windows time zone ids the sandbox server knows, sorted; "UTC" is always among them."""
    return list(_zone_ids())


def time_zone_definition(windows_id: str, full: bool, year: int | None = None) -> etree._Element:
    """Build the ``t:TimeZoneDefinition`` element that Exchange returns for ``windows_id`` in GetServerTimeZones.

    Without ``full`` (ReturnFullTimeZoneData="false") the element carries only the Id and Name attributes. With it,
    the element also holds Periods, TransitionsGroups and Transitions describing the zone's rule in ``year`` (the
    current year when omitted), computed from ``zoneinfo``.

    Every call returns a new element, so callers may attach it to a response tree (lxml moves an element when it
    is appended elsewhere; a shared cached element would be stolen from earlier responses).

    Raises KeyError for an id the server does not know, as Exchange answers such a request with an error.
    """
    if windows_id not in _zone_ids():
        raise KeyError(windows_id)
    if year is None:
        year = datetime.datetime.now(_UTC).year
    rule = _zone_rule(windows_id, year)

    definition = etree.Element(_t("TimeZoneDefinition"), nsmap={"t": T_NS})
    definition.set("Id", windows_id)
    definition.set("Name", _display_name(windows_id, rule.standard_offset))
    if not full:
        return definition

    # Exchange names the rule of a registry entry by its first year ("1" for a zone's undated base rule); the
    # sandbox publishes the rule of `year` alone, so that year names it.
    standard_id = _period_id(windows_id, year, "Standard")
    daylight_id = _period_id(windows_id, year, "Daylight")

    periods = etree.SubElement(definition, _t("Periods"))
    _add_period(periods, standard_id, "Standard", rule.standard_offset)
    if rule.daylight_offset is not None:
        _add_period(periods, daylight_id, "Daylight", rule.daylight_offset)

    groups = etree.SubElement(definition, _t("TransitionsGroups"))
    group = etree.SubElement(groups, _t("TransitionsGroup"), Id="0")
    if rule.switches:
        for switch in rule.switches:
            _add_recurring_day_transition(group, daylight_id if switch.to_daylight else standard_id, switch)
    else:
        # One offset all year: a single plain transition into the standard period, which is how Exchange writes a
        # zone without DST and what exchangelib reads as such. An empty group would not do: exchangelib needs a
        # standard period reachable from the group.
        _add_target(etree.SubElement(group, _t("Transition")), "Period", standard_id)

    transitions = etree.SubElement(definition, _t("Transitions"))
    _add_target(etree.SubElement(transitions, _t("Transition")), "Group", "0")
    return definition


@lru_cache(maxsize=1)
def _zone_ids() -> tuple[str, ...]:
    # tzlocal's mapping has "UTC" already; the union guards against a future tzlocal that drops it.
    return tuple(sorted(set(win_tz) | {"UTC"}))


def _iana_name(windows_id: str) -> str:
    return win_tz.get(windows_id, "Etc/UTC")


@lru_cache(maxsize=1024)
def _zone_rule(windows_id: str, year: int) -> _ZoneRule:
    # Cached: the sandbox asks for the same zones over and over, and scanning a year takes a few hundred zoneinfo
    # look-ups. Only immutable data is cached; elements are built fresh on every call (see time_zone_definition).
    zone = ZoneInfo(_iana_name(windows_id))
    changes = _offset_changes(zone, year)
    if len(changes) == 2 and changes[0][1] == changes[1][2]:
        # The usual DST year: offset A -> B, later B -> A. Which one is "daylight" is zoneinfo's call (its dst() is
        # non-zero there), which keeps a zone with negative DST (Morocco during Ramadan) on its usual offset as
        # standard time. Should zoneinfo not tell them apart, the larger offset is daylight time.
        (first_instant, a, b), (second_instant, _, _) = changes
        b_is_dst, a_is_dst = _is_dst(zone, first_instant), _is_dst(zone, second_instant)
        if a_is_dst != b_is_dst:
            standard, daylight = (a, b) if b_is_dst else (b, a)
        else:
            standard, daylight = min(a, b), max(a, b)
        # Exchange lists the switch to daylight time first, in both hemispheres.
        switches = sorted(
            (_switch(instant, before, to_daylight=after == daylight) for instant, before, after in changes),
            key=lambda switch: not switch.to_daylight,
        )
        return _ZoneRule(standard_offset=standard, daylight_offset=daylight, switches=tuple(switches))
    # No change this year, or an irregular year (a one-off change of the standard offset, or more than one DST
    # episode): publish the offset the year ends with, which is what the zone's law says from then on.
    end_offset = datetime.datetime(year + 1, 1, 1, tzinfo=_UTC).astimezone(zone).utcoffset()
    assert end_offset is not None  # zoneinfo zones always have an offset
    return _ZoneRule(standard_offset=end_offset, daylight_offset=None, switches=())


def _offset_changes(
    zone: ZoneInfo, year: int
) -> list[tuple[datetime.datetime, datetime.timedelta, datetime.timedelta]]:
    """Return (UTC instant, offset before, offset after) for every change of UTC offset in `year` (local time)."""
    # Scan a little beyond the year in UTC, then keep the changes whose local wall-clock date lies in the year.
    start = datetime.datetime(year, 1, 1, tzinfo=_UTC) - _SCAN_STEP
    end = datetime.datetime(year + 1, 1, 1, tzinfo=_UTC) + _SCAN_STEP
    changes = []
    low, low_offset = start, _offset(zone, start)
    while low < end:
        high = low + _SCAN_STEP
        high_offset = _offset(zone, high)
        if high_offset != low_offset:
            instant = _bisect_change(zone, low, high, low_offset)
            if (instant + low_offset).year == year:
                changes.append((instant, low_offset, high_offset))
        low, low_offset = high, high_offset
    return changes


def _bisect_change(
    zone: ZoneInfo, low: datetime.datetime, high: datetime.datetime, low_offset: datetime.timedelta
) -> datetime.datetime:
    """Return the first instant in (low, high] whose offset differs from `low_offset`, to the second."""
    while high - low > _ONE_SECOND:
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if _offset(zone, middle) == low_offset:
            low = middle
        else:
            high = middle
    return high


def _offset(zone: ZoneInfo, instant: datetime.datetime) -> datetime.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # zoneinfo zones always have an offset
    return offset


def _is_dst(zone: ZoneInfo, instant: datetime.datetime) -> bool:
    """Whether zoneinfo counts the period that starts at `instant` as daylight saving time."""
    return bool(instant.astimezone(zone).dst())


def _switch(instant: datetime.datetime, offset_before: datetime.timedelta, to_daylight: bool) -> _Switch:
    # Windows states a switch on the wall clock of the period being left (see _Switch.time_of_day).
    wall = (instant + offset_before).replace(tzinfo=None)
    days_in_month = calendar.monthrange(wall.year, wall.month)[1]
    # A weekday within the month's last seven days is "the last one" (-1): rules are written that way ("last Sunday
    # in October"), and it stays right in the years where that Sunday is only the fourth.
    occurrence = -1 if wall.day + 7 > days_in_month else (wall.day - 1) // 7 + 1
    time_of_day = datetime.timedelta(hours=wall.hour, minutes=wall.minute, seconds=wall.second)
    return _Switch(to_daylight, wall.month, wall.weekday(), occurrence, time_of_day)


def _display_name(windows_id: str, standard_offset: datetime.timedelta) -> str:
    # Windows display names ("(UTC+01:00) Amsterdam, Berlin, ...") come from the host's registry and change between
    # Windows releases; the sandbox keeps Windows' "(UTC+hh:mm)" prefix and the id. Clients use the Id, not the
    # Name. The UTC zones get their Windows names, which follow a pattern.
    minutes = int(standard_offset.total_seconds()) // 60
    if windows_id == "UTC":
        return "(UTC) Coordinated Universal Time"
    sign = "-" if minutes < 0 else "+"
    prefix = f"(UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"
    if windows_id.startswith("UTC"):
        return f"{prefix} Coordinated Universal Time{windows_id[3:]}"
    return f"{prefix} {windows_id}"


def _period_id(windows_id: str, rule_id: int, name: str) -> str:
    # Exchange's form; older exchangelib releases split it on "/" and "-" to get (rule year, period name).
    return f"trule:Microsoft/Registry/{windows_id}/{rule_id}-{name}"


def _add_period(periods: etree._Element, period_id: str, name: str, utc_offset: datetime.timedelta) -> None:
    # Bias is what to add to local time to get UTC: the negative of the offset (UTC+1 -> "-PT1H").
    etree.SubElement(periods, _t("Period"), Bias=_xs_duration(-utc_offset), Name=name, Id=period_id)


def _add_recurring_day_transition(group: etree._Element, period_id: str, switch: _Switch) -> None:
    transition = etree.SubElement(group, _t("RecurringDayTransition"))
    _add_target(transition, "Period", period_id)
    etree.SubElement(transition, _t("TimeOffset")).text = _xs_duration(switch.time_of_day)
    etree.SubElement(transition, _t("Month")).text = str(switch.month)
    etree.SubElement(transition, _t("DayOfWeek")).text = _DAY_NAMES[switch.weekday]
    etree.SubElement(transition, _t("Occurrence")).text = str(switch.occurrence)


def _add_target(transition: etree._Element, kind: str, target: str) -> None:
    to = etree.SubElement(transition, _t("To"), Kind=kind)
    to.text = target


def _xs_duration(value: datetime.timedelta) -> str:
    """Format a timedelta as .NET's XmlConvert does for Exchange: "PT2H", "-PT5H30M", "PT0S"."""
    total = int(value.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P" + (f"{days}D" if days else "")
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if time_part:
        return f"{text}T{time_part}"
    return text if days else f"{sign}PT0S"


def _t(tag: str) -> str:
    return f"{{{T_NS}}}{tag}"
