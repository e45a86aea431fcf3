"""Unit tests of widget.sandbox.timezones: the GetServerTimeZones data of the Exchange sandbox.

Three kinds of proof:
* the XML validates against the EWS schema that Exchange publishes (inside a full GetServerTimeZonesResponse);
* exchangelib, the client the widget uses, parses it into the bias and DST rules that zoneinfo gives for the
  zone, both for hand-checked zones and, replaying its rules over whole years, for every zone the sandbox knows;
* the element looks the way Exchange 2016 writes it (W. Europe Standard Time, compared element by element).
"""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from ews_schema import SchemaValidator
from exchangelib.properties import DaylightTime, StandardTime, TimeZone, TimeZoneDefinition
from lxml import etree
from tzlocal.windows_tz import win_tz

from widget.sandbox.timezones import time_zone_definition, windows_zone_ids

T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
XS_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"

UTC = datetime.UTC
YEAR = 2026  # A fixed year keeps the hand-written expectations below true whatever today's date is.
SUNDAY = 7  # exchangelib numbers weekdays the ISO way
LAST = 5  # exchangelib turns Exchange's "-1" (last occurrence) into 5

# One zone per kind: northern DST, other northern DST rule, southern hemisphere DST,
# no DST at all, no DST with a half-hour offset.
SAMPLE_ZONES = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Pacific Standard Time": "America/Los_Angeles",
    "UTC": "Etc/UTC",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "India Standard Time": "Asia/Kolkata",
}


# --- helpers ---------------------------------------------------------------------------------------------------


def server_time_zones_response(definitions: list[etree._Element]) -> etree._Element:
    """A GetServerTimeZonesResponse as it sits in the SOAP Body of a successful answer."""
    response = etree.Element(f"{{{M_NS}}}GetServerTimeZonesResponse", nsmap={"m": M_NS, "t": T_NS})
    messages = etree.SubElement(response, f"{{{M_NS}}}ResponseMessages")
    message = etree.SubElement(messages, f"{{{M_NS}}}GetServerTimeZonesResponseMessage", ResponseClass="Success")
    etree.SubElement(message, f"{{{M_NS}}}ResponseCode").text = "NoError"
    container = etree.SubElement(message, f"{{{M_NS}}}TimeZoneDefinitions")
    container.extend(definitions)
    return response


def parse_with_exchangelib(windows_id: str, year: int) -> tuple[TimeZoneDefinition, TimeZone]:
    """What exchangelib makes of the definition: the parsed element and the TimeZone it derives for `year`."""
    # Round-trip through text, so exchangelib sees what goes over the wire, not our in-memory tree.
    elem = etree.fromstring(etree.tostring(time_zone_definition(windows_id, full=True, year=year)))
    definition = TimeZoneDefinition.from_xml(elem=elem, account=None)
    return definition, TimeZone.from_server_timezone(tz_definition=definition, for_year=year)


def nth_weekday(year: int, month: int, iso_weekday: int, occurrence: int) -> datetime.date:
    """The `occurrence`-th (5: last) `iso_weekday` of a month, as Windows rules count."""
    days = [
        datetime.date(year, month, day)
        for day in range(1, calendar.monthrange(year, month)[1] + 1)
        if datetime.date(year, month, day).isoweekday() == iso_weekday
    ]
    return days[-1] if occurrence == LAST else days[occurrence - 1]


def switch_instant(year: int, rule: StandardTime | DaylightTime, offset_before: datetime.timedelta):
    """The UTC instant of a switch; Windows states its time on the wall clock of the period being left."""
    day = nth_weekday(year, rule.iso_month, rule.weekday, rule.occurrence)
    wall = datetime.datetime.combine(day, rule.time)
    return (wall - offset_before).replace(tzinfo=UTC)


def has_dst(tz: TimeZone) -> bool:
    # exchangelib fills zones without DST with dummy rules whose biases are both 0.
    return tz.daylight_time.bias != 0 or tz.standard_time.bias != 0


def switches(tz: TimeZone, year: int) -> tuple[datetime.datetime, datetime.datetime] | None:
    """The UTC instants at which DST starts and ends in `year` by exchangelib's TimeZone; None without DST."""
    if not has_dst(tz):
        return None
    standard = datetime.timedelta(minutes=-tz.bias)
    daylight = standard - datetime.timedelta(minutes=tz.daylight_time.bias)
    return (
        switch_instant(year, tz.daylight_time, offset_before=standard),
        switch_instant(year, tz.standard_time, offset_before=daylight),
    )


def offset_by_rules(tz: TimeZone, year: int) -> Callable[[datetime.datetime], datetime.timedelta]:
    """The UTC offset at an instant by exchangelib's TimeZone, evaluated independently of the sandbox's code."""
    standard = datetime.timedelta(minutes=-tz.bias)
    dst = switches(tz, year)
    if dst is None:
        return lambda instant: standard
    daylight = standard - datetime.timedelta(minutes=tz.daylight_time.bias)
    starts, ends = dst

    def offset(instant: datetime.datetime) -> datetime.timedelta:
        # Northern hemisphere: DST between start and end. Southern: the year starts and ends in DST.
        in_dst = starts <= instant < ends if starts < ends else not ends <= instant < starts
        return daylight if in_dst else standard

    return offset


def mismatches(windows_id: str, iana: str, year: int) -> list[str]:
    """Where the rules exchangelib reads disagree with zoneinfo in `year`: every 3 hours, and 1 s around each switch.

    A switch on the wrong day shows in the 3-hourly samples; one at the wrong time of day shows right at it.
    """
    _, tz = parse_with_exchangelib(windows_id, year)
    rules, zone = offset_by_rules(tz, year), ZoneInfo(iana)
    # From Jan 2 to Dec 30 in UTC, so that every instant lies in `year` on every zone's wall clock.
    start = datetime.datetime(year, 1, 2, tzinfo=UTC)
    instants = [start + datetime.timedelta(hours=hours) for hours in range(0, 363 * 24, 3)]
    for switch in switches(tz, year) or ():
        instants += [switch - datetime.timedelta(seconds=1), switch]
    found = []
    for instant in instants:
        expected = instant.astimezone(zone).utcoffset()
        if rules(instant) != expected:
            found.append(f"{windows_id} {instant:%Y-%m-%d %H:%M:%S}Z: rules {rules(instant)}, zoneinfo {expected}")
    return found


# --- zone ids --------------------------------------------------------------------------------------------------


def test_zone_ids_cover_windows_zones_and_utc() -> None:
    ids = windows_zone_ids()
    assert ids == sorted(set(ids))
    assert set(SAMPLE_ZONES) <= set(ids)
    assert len(ids) > 130  # Windows knows about 140 zones


def test_zone_ids_is_a_fresh_list() -> None:
    windows_zone_ids().clear()
    assert "UTC" in windows_zone_ids()


@pytest.mark.parametrize("full", [False, True])
def test_unknown_zone_raises_key_error(full: bool) -> None:
    with pytest.raises(KeyError):
        time_zone_definition("Mars Standard Time", full=full, year=YEAR)


# --- shape -----------------------------------------------------------------------------------------------------


def test_short_definition_has_only_id_and_name() -> None:
    definition = time_zone_definition("W. Europe Standard Time", full=False, year=YEAR)
    assert definition.tag == f"{{{T_NS}}}TimeZoneDefinition"
    assert dict(definition.attrib) == {
        "Id": "W. Europe Standard Time",
        "Name": "(UTC+01:00) W. Europe Standard Time",
    }
    assert len(definition) == 0


@pytest.mark.parametrize(
    ("windows_id", "name"),
    [
        ("UTC", "(UTC) Coordinated Universal Time"),
        ("UTC-02", "(UTC-02:00) Coordinated Universal Time-02"),
        ("India Standard Time", "(UTC+05:30) India Standard Time"),
        ("Newfoundland Standard Time", "(UTC-03:30) Newfoundland Standard Time"),
    ],
)
def test_display_names_carry_the_standard_offset(windows_id: str, name: str) -> None:
    assert time_zone_definition(windows_id, full=False, year=YEAR).get("Name") == name


def test_full_definition_is_what_exchange_2016_sends() -> None:
    # W. Europe Standard Time as Exchange writes it (the Id of the rule names the year; Exchange uses "1" for an
    # undated registry rule and the first year for dated ones).
    rule = "trule:Microsoft/Registry/W. Europe Standard Time/2026"
    expected = f"""
    <t:TimeZoneDefinition xmlns:t="{T_NS}" Id="W. Europe Standard Time" Name="(UTC+01:00) W. Europe Standard Time">
      <t:Periods>
        <t:Period Bias="-PT1H" Name="Standard" Id="{rule}-Standard"/>
        <t:Period Bias="-PT2H" Name="Daylight" Id="{rule}-Daylight"/>
      </t:Periods>
      <t:TransitionsGroups>
        <t:TransitionsGroup Id="0">
          <t:RecurringDayTransition>
            <t:To Kind="Period">{rule}-Daylight</t:To>
            <t:TimeOffset>PT2H</t:TimeOffset>
            <t:Month>3</t:Month>
            <t:DayOfWeek>Sunday</t:DayOfWeek>
            <t:Occurrence>-1</t:Occurrence>
          </t:RecurringDayTransition>
          <t:RecurringDayTransition>
            <t:To Kind="Period">{rule}-Standard</t:To>
            <t:TimeOffset>PT3H</t:TimeOffset>
            <t:Month>10</t:Month>
            <t:DayOfWeek>Sunday</t:DayOfWeek>
            <t:Occurrence>-1</t:Occurrence>
          </t:RecurringDayTransition>
        </t:TransitionsGroup>
      </t:TransitionsGroups>
      <t:Transitions>
        <t:Transition>
          <t:To Kind="Group">0</t:To>
        </t:Transition>
      </t:Transitions>
    </t:TimeZoneDefinition>
    """
    parser = etree.XMLParser(remove_blank_text=True)
    expected_c14n = etree.tostring(etree.fromstring(expected, parser), method="c14n")
    assert etree.tostring(time_zone_definition("W. Europe Standard Time", full=True, year=YEAR), method="c14n") == (
        expected_c14n
    )


def test_zone_without_dst_has_one_period_and_one_transition() -> None:
    definition = time_zone_definition("India Standard Time", full=True, year=YEAR)
    t = {"t": T_NS}
    (period,) = definition.xpath("t:Periods/t:Period", namespaces=t)
    assert (period.get("Bias"), period.get("Name")) == ("-PT5H30M", "Standard")
    (transition,) = definition.xpath("t:TransitionsGroups/t:TransitionsGroup/*", namespaces=t)
    assert transition.tag == f"{{{T_NS}}}Transition"
    assert transition.findtext(f"{{{T_NS}}}To") == period.get("Id")
    assert time_zone_definition("UTC", full=True, year=YEAR).xpath("t:Periods/t:Period/@Bias", namespaces=t) == ["PT0S"]


def test_each_call_returns_a_new_element() -> None:
    # The definitions are cached, but a shared element would be moved out of one response into the next.
    first = time_zone_definition("Pacific Standard Time", full=True, year=YEAR)
    server_time_zones_response([first])
    second = time_zone_definition("Pacific Standard Time", full=True, year=YEAR)
    assert second is not first
    assert second.getparent() is None
    assert etree.tostring(second, method="c14n", exclusive=True) == etree.tostring(first, method="c14n", exclusive=True)


def test_default_year_is_the_current_one() -> None:
    this_year = datetime.datetime.now(UTC).year
    assert etree.tostring(time_zone_definition("Pacific Standard Time", full=True)) == etree.tostring(
        time_zone_definition("Pacific Standard Time", full=True, year=this_year)
    )


# --- schema ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("full", [True, False])
def test_response_validates_against_ews_schema(full: bool, schema_validator: SchemaValidator) -> None:
    response = server_time_zones_response([time_zone_definition(zone, full=full, year=YEAR) for zone in SAMPLE_ZONES])
    schema = schema_validator.schema
    assert schema.validate(response), schema.error_log


def test_every_zone_validates_against_ews_schema(schema_validator: SchemaValidator) -> None:
    response = server_time_zones_response([time_zone_definition(zone, full=True) for zone in windows_zone_ids()])
    schema = schema_validator.schema
    assert schema.validate(response), schema.error_log


def test_schema_rejects_a_broken_definition(schema_validator: SchemaValidator) -> None:
    # Guards the guard: the patched schema must still check transitions.
    definition = time_zone_definition("W. Europe Standard Time", full=True, year=YEAR)
    month = definition.find(f".//{{{T_NS}}}Month")
    month.addprevious(etree.Element(f"{{{T_NS}}}Day"))
    assert not schema_validator.schema.validate(server_time_zones_response([definition]))


# --- exchangelib -----------------------------------------------------------------------------------------------


def test_exchangelib_reads_w_europe() -> None:
    definition, tz = parse_with_exchangelib("W. Europe Standard Time", YEAR)
    assert (definition.id, [p.name for p in definition.periods]) == (
        "W. Europe Standard Time",
        ["Standard", "Daylight"],
    )
    assert tz.bias == -60
    # DST from the last Sunday in March, 02:00 standard time, to the last Sunday in October, 03:00 daylight time.
    assert tz.daylight_time == DaylightTime(
        bias=-60, time=datetime.time(2), occurrence=LAST, iso_month=3, weekday=SUNDAY
    )
    assert tz.standard_time == StandardTime(
        bias=0, time=datetime.time(3), occurrence=LAST, iso_month=10, weekday=SUNDAY
    )


def test_exchangelib_reads_pacific() -> None:
    _, tz = parse_with_exchangelib("Pacific Standard Time", YEAR)
    assert tz.bias == 480
    assert tz.daylight_time == DaylightTime(bias=-60, time=datetime.time(2), occurrence=2, iso_month=3, weekday=SUNDAY)
    assert tz.standard_time == StandardTime(bias=0, time=datetime.time(2), occurrence=1, iso_month=11, weekday=SUNDAY)


def test_exchangelib_reads_aus_eastern() -> None:
    # Southern hemisphere: DST from the first Sunday in October to the first Sunday in April.
    _, tz = parse_with_exchangelib("AUS Eastern Standard Time", YEAR)
    assert tz.bias == -600
    assert tz.daylight_time == DaylightTime(bias=-60, time=datetime.time(2), occurrence=1, iso_month=10, weekday=SUNDAY)
    assert tz.standard_time == StandardTime(bias=0, time=datetime.time(3), occurrence=1, iso_month=4, weekday=SUNDAY)


@pytest.mark.parametrize(("windows_id", "bias"), [("India Standard Time", -330), ("UTC", 0)])
def test_exchangelib_reads_zones_without_dst(windows_id: str, bias: int) -> None:
    _, tz = parse_with_exchangelib(windows_id, YEAR)
    assert tz.bias == bias
    # exchangelib's stand-in rules for a zone without DST (see TimeZoneDefinition.get_std_and_dst).
    assert tz.standard_time == StandardTime(bias=0, time=datetime.time(0), occurrence=1, iso_month=1, weekday=1)
    assert tz.daylight_time == DaylightTime(bias=0, time=datetime.time(0), occurrence=5, iso_month=12, weekday=7)


@pytest.mark.parametrize("windows_id", sorted(SAMPLE_ZONES))
def test_exchangelib_rules_match_zoneinfo_for_sample_zones(windows_id: str) -> None:
    iana = SAMPLE_ZONES[windows_id]
    _, tz = parse_with_exchangelib(windows_id, YEAR)
    january, july = (datetime.datetime(YEAR, month, 15, tzinfo=UTC) for month in (1, 7))
    offsets = {january.astimezone(ZoneInfo(iana)).utcoffset(), july.astimezone(ZoneInfo(iana)).utcoffset()}
    assert tz.bias == -int(min(offsets).total_seconds()) // 60
    assert has_dst(tz) == (len(offsets) == 2)
    if has_dst(tz):
        assert tz.daylight_time.bias == -int((max(offsets) - min(offsets)).total_seconds()) // 60
    assert mismatches(windows_id, iana, YEAR) == []


# Zones whose law changed during a year: one yearly rule cannot say that (Exchange sends dated groups there), and the
# sandbox publishes the offset the year ends with, so the weeks before the change disagree with zoneinfo.
LAW_CHANGES: dict[int, set[str]] = {
    2022: {"Jordan Standard Time", "Syria Standard Time"},  # both stayed on UTC+3 after October 2022
}


@pytest.mark.parametrize("year", [2022, 2024, 2025, YEAR])
def test_exchangelib_rules_match_zoneinfo_for_every_zone(year: int) -> None:
    # Every zone the sandbox knows, replayed through exchangelib and compared with zoneinfo over the whole year.
    failing = {}
    for windows_id in windows_zone_ids():
        found = mismatches(windows_id, win_tz[windows_id], year)
        if found:
            failing[windows_id] = found
    assert set(failing) == LAW_CHANGES.get(year, set()), {zone: found[:2] for zone, found in failing.items()}
