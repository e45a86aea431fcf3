"""GetUserAvailability: free/busy and meeting suggestions, through exchangelib and the widget's own client."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from ews_suggestions import suggested
from exchangelib import IMPERSONATION, CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorMailRecipientNotFound, TransportError
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY
from exchangelib.recurrence import DailyPattern, Recurrence

from widget.exchange.ews.availability import AvailabilityError, WorkingPeriod, get_availability

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def _monday(weeks_ahead: int = 2) -> date:
    """A Monday in the future (Exchange suggests no meeting times in the past)."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


def _at(day: date, hour: int, minute: int = 0, zone: tzinfo = AMSTERDAM) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


def _offset_change_day(zone: ZoneInfo, month: int) -> date:
    """Next year's day in `month` on which `zone` changes its UTC offset."""
    day = date(datetime.now(UTC).year + 1, month, 1)
    while _at(day, 12, zone=zone).utcoffset() == _at(day - timedelta(days=1), 12, zone=zone).utcoffset():
        day += timedelta(days=1)
    return day


def _appointment(account, start: datetime, end: datetime, subject: str = "Busy", **fields) -> CalendarItem:  # noqa: ANN001
    item = CalendarItem(account=account, folder=account.calendar, subject=subject, start=start, end=end, **fields)
    item.save()
    return item


def _free_busy(account, emails: list[str], start: datetime, end: datetime, **options):  # noqa: ANN001, ANN202
    """exchangelib's own call: one (address, attendee type, exclude conflicts) tuple per mailbox."""
    mailboxes = [(email, "Required", False) for email in emails]
    return list(account.protocol.get_free_busy_info(mailboxes, start, end, **options))


def test_it_puts_an_invited_meeting_in_the_attendees_calendar_and_free_busy(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    day = _monday()
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject="Quarterly plan", start=_at(day, 10),
                           end=_at(day, 11), required_attendees=["bob@contoso.com"])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)

    in_bobs_calendar = list(bob.calendar.view(start=_at(day, 0), end=_at(day + timedelta(days=1), 0)))
    assert [item.subject for item in in_bobs_calendar] == ["Quarterly plan"]

    tz = EWSTimeZone("Europe/Amsterdam")
    start = EWSDateTime(day.year, day.month, day.day, tzinfo=tz)
    (view,) = _free_busy(alice, ["bob@contoso.com"], start, start + timedelta(days=1))
    assert view.merged == "0" * 20 + "22" + "0" * 26
    assert [(e.start, e.end, e.busy_type) for e in view.calendar_events] == [(_at(day, 10), _at(day, 11), "Busy")]

    ours = get_availability(alice.protocol, ["bob@contoso.com"], _at(day, 0), _at(day + timedelta(days=1), 0))
    bobs = ours.attendee("bob@contoso.com")
    assert bobs.error is None and bobs.merged == view.merged
    assert [(e.start, e.end, e.busy_type) for e in bobs.events] == [(_at(day, 10), _at(day, 11), "Busy")]
    assert bobs.statuses[20:22] == ("Busy", "Busy") and set(bobs.statuses[:20]) == {"Free"}


def test_it_answers_an_outside_address_with_its_own_error_and_the_others_normally(account):
    alice = account("alice@contoso.com")
    day = _monday()
    _appointment(alice, _at(day, 9), _at(day, 10))
    tz = EWSTimeZone("Europe/Amsterdam")
    start = EWSDateTime(day.year, day.month, day.day, tzinfo=tz)

    alices, outsider, bobs = _free_busy(alice, ["alice@contoso.com", "guest@fabrikam.com", "bob@contoso.com"], start,
                                        start + timedelta(days=1))
    assert isinstance(outsider, ErrorMailRecipientNotFound)
    assert "guest@fabrikam.com" in str(outsider)
    assert alices.merged[18:20] == "22" and set(bobs.merged) == {"0"}

    ours = get_availability(alice.protocol, ["alice@contoso.com", "guest@fabrikam.com", "bob@contoso.com"],
                            _at(day, 0), _at(day + timedelta(days=1), 0))
    assert [(a.email, a.error) for a in ours.attendees] == [
        ("alice@contoso.com", None), ("guest@fabrikam.com", "ErrorMailRecipientNotFound"), ("bob@contoso.com", None)]
    assert ours.attendee("guest@fabrikam.com").merged == "" and ours.attendee("bob@contoso.com").merged == "0" * 48


def test_it_maps_free_tentative_busy_and_oof_to_their_digits(account):
    bob = account("bob@contoso.com")
    day = _monday()
    _appointment(bob, _at(day, 8), _at(day, 9), legacy_free_busy_status="Free")
    _appointment(bob, _at(day, 9), _at(day, 10), legacy_free_busy_status="Tentative")
    _appointment(bob, _at(day, 10), _at(day, 11), legacy_free_busy_status="Busy")
    _appointment(bob, _at(day, 11), _at(day, 12), legacy_free_busy_status="OOF")
    # As in Exchange 2013 and later, "working elsewhere" weighs no more than free in the merged string.
    _appointment(bob, _at(day, 12), _at(day, 13), legacy_free_busy_status="WorkingElsewhere")
    # Overlapping events: the strongest status of an interval wins.
    _appointment(bob, _at(day, 13), _at(day, 14), legacy_free_busy_status="Tentative")
    _appointment(bob, _at(day, 13, 30), _at(day, 14), legacy_free_busy_status="OOF")

    ours = get_availability(bob.protocol, ["bob@contoso.com"], _at(day, 8), _at(day, 14), interval_minutes=60)
    assert ours.attendee("bob@contoso.com").merged == "012303"
    assert [e.busy_type for e in ours.attendee("bob@contoso.com").events] == [
        "Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "Tentative", "OOF"]
    tz = EWSTimeZone("Europe/Amsterdam")
    start = EWSDateTime(day.year, day.month, day.day, 8, tzinfo=tz)
    (view,) = _free_busy(bob, ["bob@contoso.com"], start, start + timedelta(hours=6), merged_free_busy_interval=60)
    assert view.merged == "012303"


@pytest.mark.parametrize(("interval", "expected"), [
    (15, "0000" + "0222" + "2000"),  # 09:15-10:10 touches the intervals 09:15, 09:30, 09:45 and 10:00
    (30, "00" + "22" + "20"),
    (60, "0" + "2" + "2"),
])
def test_it_merges_free_busy_at_15_30_and_60_minute_intervals(account, interval, expected):
    carol = account("carol@contoso.com")
    day = _monday()
    _appointment(carol, _at(day, 9, 15), _at(day, 10, 10))

    ours = get_availability(carol.protocol, ["carol@contoso.com"], _at(day, 8), _at(day, 11),
                            interval_minutes=interval)
    assert ours.attendee("carol@contoso.com").merged == expected
    assert len(ours.intervals()) == len(expected)
    assert ours.intervals()[0] == (_at(day, 8), _at(day, 8) + timedelta(minutes=interval))


def test_it_rounds_a_partial_last_interval_up(account):
    carol = account("carol@contoso.com")
    day = _monday()
    ours = get_availability(carol.protocol, ["carol@contoso.com"], _at(day, 8), _at(day, 9, 10))
    assert ours.attendee("carol@contoso.com").merged == "000"


def test_it_gives_pacific_local_times_across_the_spring_dst_change(account):
    bob = account("bob@contoso.com")
    change = _offset_change_day(LOS_ANGELES, 3)
    before = change - timedelta(days=1)
    _appointment(bob, _at(before, 9, zone=LOS_ANGELES), _at(before, 10, zone=LOS_ANGELES))
    _appointment(bob, _at(change, 9, zone=LOS_ANGELES), _at(change, 10, zone=LOS_ANGELES))
    start, end = _at(before, 0, zone=LOS_ANGELES), _at(change + timedelta(days=1), 0, zone=LOS_ANGELES)

    bobs = get_availability(bob.protocol, ["bob@contoso.com"], start, end).attendee("bob@contoso.com")
    assert [(e.start.date(), e.start.time(), e.end.time()) for e in bobs.events] == [
        (before, time(9), time(10)), (change, time(9), time(10))]
    assert [e.start.utcoffset() for e in bobs.events] == [timedelta(hours=-8), timedelta(hours=-7)]
    # 47 hours: the night of the change is an hour short, so 09:00 on the second day is 32 hours in.
    assert len(bobs.merged) == 94
    assert bobs.merged[18:20] == "22" and bobs.merged[64:66] == "22" and bobs.merged.count("2") == 4

    tz = EWSTimeZone("America/Los_Angeles")
    (view,) = _free_busy(bob, ["bob@contoso.com"], EWSDateTime.from_datetime(start).astimezone(tz),
                         EWSDateTime.from_datetime(end).astimezone(tz))
    assert [(e.start.replace(tzinfo=None), e.end.replace(tzinfo=None)) for e in view.calendar_events] == [
        (datetime.combine(before, time(9)), datetime.combine(before, time(10))),
        (datetime.combine(change, time(9)), datetime.combine(change, time(10)))]
    assert view.merged == bobs.merged


def test_it_gives_western_european_local_times_across_the_autumn_dst_change(account):
    carol = account("carol@contoso.com")
    change = _offset_change_day(AMSTERDAM, 10)
    before = change - timedelta(days=1)
    _appointment(carol, _at(before, 9), _at(before, 10))
    _appointment(carol, _at(change, 9), _at(change, 10))
    # Carol's night-time event inside the repeated hour, as an instant: 02:30 of the second pass (01:30 UTC).
    repeated = datetime.combine(change, time(1, 30), tzinfo=UTC)
    _appointment(carol, repeated, repeated + timedelta(minutes=30), subject="Backup")
    start, end = _at(before, 0), _at(change + timedelta(days=1), 0)

    carols = get_availability(carol.protocol, ["carol@contoso.com"], start, end).attendee("carol@contoso.com")
    nine = [(e.start.date(), e.start.time(), e.end.time()) for e in carols.events if e.start.hour == 9]
    assert nine == [(before, time(9), time(10)), (change, time(9), time(10))]
    # 49 hours: 09:00 on the second day is 34 hours in; the 02:30 event 27.5 hours in (the hour is lived twice).
    assert len(carols.merged) == 98
    assert carols.merged[18:20] == "22" and carols.merged[68:70] == "22" and carols.merged[55] == "2"
    assert carols.merged.count("2") == 5

    tz = EWSTimeZone("Europe/Amsterdam")
    (view,) = _free_busy(carol, ["carol@contoso.com"], EWSDateTime.from_datetime(start).astimezone(tz),
                         EWSDateTime.from_datetime(end).astimezone(tz))
    assert view.merged == carols.merged
    assert [e.start.replace(tzinfo=None) for e in view.calendar_events if e.start.hour == 9] == [
        datetime.combine(before, time(9)), datetime.combine(change, time(9))]


def test_it_reports_working_hours_in_the_attendees_own_zone(sandbox, account):
    bob_user = sandbox.store.users["bob@contoso.com"]
    bob_user.working_hours, bob_user.time_zone = (9 * 60, 17 * 60 + 30), "W. Europe Standard Time"
    alice = account("alice@contoso.com")
    day = _monday()

    bobs = get_availability(alice.protocol, ["bob@contoso.com"], _at(day, 0, zone=UTC),
                            _at(day + timedelta(days=1), 0, zone=UTC)).attendee("bob@contoso.com")
    hours = bobs.working_hours
    assert hours is not None and hours.periods == (WorkingPeriod((1, 2, 3, 4, 5), 540, 1050),)
    assert hours.contains(_at(day, 9)) and hours.contains(_at(day, 17, 29))
    assert not hours.contains(_at(day, 8, 59)) and not hours.contains(_at(day, 17, 30))
    assert hours.contains(_at(day, 9).astimezone(LOS_ANGELES))
    assert not hours.contains(_at(day + timedelta(days=5), 10))  # a Saturday
    winter = _offset_change_day(AMSTERDAM, 10) + timedelta(days=1)
    assert hours.contains(_at(winter, 9)) and not hours.contains(_at(winter, 8, 30))

    tz = EWSTimeZone("UTC")
    start = EWSDateTime(day.year, day.month, day.day, tzinfo=tz)
    (view,) = _free_busy(alice, ["bob@contoso.com"], start, start + timedelta(days=1))
    (period,) = view.working_hours
    assert (period.weekdays, period.start, period.end) == ([1, 2, 3, 4, 5], time(9), time(17, 30))
    assert view.working_hours_timezone.bias == -60 and view.working_hours_timezone.daylight_time.bias == -60


def test_it_suggests_free_times_within_the_window_and_working_hours(sandbox, account):
    for email in ("alice@contoso.com", "bob@contoso.com"):
        user = sandbox.store.users[email]
        user.working_hours, user.time_zone = (9 * 60, 17 * 60), "W. Europe Standard Time"
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    day = _monday()
    _appointment(bob, _at(day, 10), _at(day, 12))
    _appointment(alice, _at(day, 14), _at(day, 15))

    whole_day = suggested(alice.protocol, ["alice@contoso.com", "bob@contoso.com"], _at(day, 0),
                                 _at(day + timedelta(days=1), 0), meeting_minutes=60)
    assert whole_day.suggestions_error is None
    # Best first: the hours when both are free, then those where one of them is busy half of the meeting.
    assert [(s.start.time(), s.quality) for s in whole_day.suggestions] == [
        (time(9), "Excellent"), (time(12), "Excellent"), (time(12, 30), "Excellent"), (time(13), "Excellent"),
        (time(15), "Excellent"), (time(15, 30), "Excellent"), (time(16), "Excellent"),
        (time(9, 30), "Good"), (time(13, 30), "Good"), (time(11, 30), "Good"), (time(14, 30), "Good")]
    assert all(s.is_work_time and s.end - s.start == timedelta(hours=1) for s in whole_day.suggestions)

    afternoon = suggested(alice.protocol, ["alice@contoso.com", "bob@contoso.com"], _at(day, 12, 30),
                                 _at(day, 16), meeting_minutes=30)
    assert [s.start.time() for s in afternoon.suggestions if s.quality == "Excellent"] == [
        time(12, 30), time(13), time(13, 30), time(15), time(15, 30)]
    assert all(_at(day, 12, 30) <= s.start and s.end <= _at(day, 16) for s in afternoon.suggestions)


def test_it_rates_a_suggestion_by_the_share_of_attendees_in_conflict(account):
    carol = account("carol@contoso.com")
    day = _monday()
    _appointment(carol, _at(day, 10, zone=UTC), _at(day, 11, zone=UTC))
    window = (_at(day, 8, zone=UTC), _at(day, 12, zone=UTC))
    four = ["alice@contoso.com", "bob@contoso.com", "svc-crm@contoso.com", "carol@contoso.com"]

    rated = suggested(carol.protocol, four, *window, meeting_minutes=60)
    quality = {s.start.time(): s.quality for s in rated.suggestions}
    # One of four attendees busy all the meeting (25 %) is still Good; half of it (12.5 %) too.
    assert quality == {time(8): "Excellent", time(8, 30): "Excellent", time(9): "Excellent", time(9, 30): "Good",
                       time(10): "Good", time(10, 30): "Good", time(11): "Excellent"}
    # One of three (33 %) is only Fair; an outside address has no say.
    three = suggested(carol.protocol, [*four[1:], "guest@fabrikam.com"], *window, meeting_minutes=60)
    assert {s.start.time(): s.quality for s in three.suggestions}[time(10)] == "Fair"


def test_it_leaves_out_suggestions_outside_the_organizers_working_hours(account):
    alice = account("alice@contoso.com")
    day = _monday()
    night = suggested(alice.protocol, ["alice@contoso.com"], _at(day, 0, zone=UTC),
                             _at(day + timedelta(days=1), 0, zone=UTC), meeting_minutes=60)
    starts = [s.start for s in night.suggestions]
    assert starts[0] == _at(day, 8, zone=UTC) and starts[-1] == _at(day, 16, zone=UTC) and len(starts) == 17


@pytest.mark.parametrize("count", [1, 50])
def test_it_costs_one_request_whatever_the_number_of_attendees(sandbox, account, count):
    for number in range(count):
        sandbox.store.add_user(f"colleague{number}@contoso.com", "Colleague-pw-1")
    alice = account("alice@contoso.com")
    day = _monday()
    before = sandbox.stats.operations["GetUserAvailability"]

    found = suggested(alice.protocol, [f"colleague{n}@contoso.com" for n in range(count)], _at(day, 0),
                             _at(day + timedelta(days=1), 0), meeting_minutes=30, organizer="colleague0@contoso.com")
    assert sandbox.stats.operations["GetUserAvailability"] == before + 1
    assert len(found.attendees) == count and all(a.error is None for a in found.attendees)
    assert found.suggestions


def test_it_refuses_more_than_100_mailboxes(sandbox, account):
    alice = account("alice@contoso.com")
    day = _monday()
    guests = [f"guest{number}@fabrikam.com" for number in range(101)]
    with pytest.raises(AvailabilityError) as refused:
        get_availability(alice.protocol, guests, _at(day, 0), _at(day + timedelta(days=1), 0))
    assert refused.value.code == "ErrorMailboxDataArrayTooBig"
    assert "The allowed size = 100; the actual size = 101." in refused.value.message
    assert len(get_availability(alice.protocol, guests[:100], _at(day, 0), _at(day, 12)).attendees) == 100

    # exchangelib's own call cuts the list into requests of 100 instead.
    before = sandbox.stats.operations["GetUserAvailability"]
    tz = EWSTimeZone("UTC")
    start = EWSDateTime(day.year, day.month, day.day, tzinfo=tz)
    assert len(_free_busy(alice, guests, start, start + timedelta(days=1))) == 101
    assert sandbox.stats.operations["GetUserAvailability"] == before + 2


def test_it_refuses_a_window_of_more_than_42_days(account):
    alice = account("alice@contoso.com")
    start = _at(_monday(), 0, zone=UTC)
    assert len(get_availability(alice.protocol, ["bob@contoso.com"], start, start + timedelta(days=42, hours=23),
                                interval_minutes=60).attendee("bob@contoso.com").merged) == 42 * 24 + 23
    with pytest.raises(AvailabilityError) as refused:
        get_availability(alice.protocol, ["bob@contoso.com"], start, start + timedelta(days=43))
    assert refused.value.code == "ErrorTimeIntervalTooBig"
    assert "The allowed limit = 42 days; the actual limit = 43 days." in refused.value.message

    begin = EWSDateTime.from_datetime(start).astimezone(EWSTimeZone("UTC"))
    with pytest.raises(TransportError, match="FreeBusyViewOptions.TimeWindow is too long"):
        _free_busy(alice, ["bob@contoso.com"], begin, begin + timedelta(days=43))


def test_it_shows_event_details_only_to_the_calendars_owner(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    day = _monday()
    _appointment(alice, _at(day, 9), _at(day, 10), subject="Budget review", location="Room 1")
    _appointment(bob, _at(day, 11), _at(day, 12), subject="Dentist", sensitivity="Private")

    seen_by_alice = get_availability(alice.protocol, ["alice@contoso.com", "bob@contoso.com"], _at(day, 0),
                                     _at(day + timedelta(days=1), 0), requested_view="Detailed")
    (own,) = seen_by_alice.attendee("alice@contoso.com").events
    assert seen_by_alice.attendee("alice@contoso.com").view_type == "Detailed"
    assert (own.subject, own.location, own.is_meeting, own.is_private) == ("Budget review", "Room 1", False, False)
    # Exchange's default permission on another's calendar is AvailabilityOnly: times, no details.
    assert seen_by_alice.attendee("bob@contoso.com").view_type == "FreeBusy"
    (others,) = seen_by_alice.attendee("bob@contoso.com").events
    assert (others.start, others.busy_type, others.subject) == (_at(day, 11), "Busy", None)

    (bobs_own,) = get_availability(bob.protocol, ["bob@contoso.com"], _at(day, 0), _at(day + timedelta(days=1), 0),
                                   requested_view="DetailedMerged").attendee("bob@contoso.com").events
    assert (bobs_own.subject, bobs_own.is_private) == ("Dentist", True)


def test_it_answers_a_service_account_with_times_only(account):
    day = _monday()
    _appointment(account("bob@contoso.com"), _at(day, 11), _at(day, 12), subject="1:1 with Carol")
    # Free/busy is asked for on the protocol, as the service account itself: it is nobody's calendar owner.
    service = account("bob@contoso.com", access=IMPERSONATION)
    found = get_availability(service.protocol, ["bob@contoso.com"], _at(day, 0), _at(day + timedelta(days=1), 0),
                             requested_view="Detailed").attendee("bob@contoso.com")
    assert found.view_type == "FreeBusy"
    assert [(e.start, e.end, e.subject) for e in found.events] == [(_at(day, 11), _at(day, 12), None)]


def test_it_expands_a_recurring_meeting_into_each_occurrence(account):
    bob = account("bob@contoso.com")
    day = _monday()
    _appointment(bob, _at(day, 13), _at(day, 13, 30), subject="Stand-up",
                 recurrence=Recurrence(pattern=DailyPattern(interval=1), start=day, number=3))
    found = get_availability(bob.protocol, ["bob@contoso.com"], _at(day, 0), _at(day + timedelta(days=4), 0),
                             interval_minutes=60)
    bobs = found.attendee("bob@contoso.com")
    assert [e.start for e in bobs.events] == [_at(day + timedelta(days=n), 13) for n in range(3)]
    assert [bobs.merged[24 * n + 13] for n in range(4)] == ["2", "2", "2", "0"]


def test_it_frees_the_time_of_a_cancelled_meeting(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    day = _monday()
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject="Kick-off", start=_at(day, 10),
                           end=_at(day, 11), required_attendees=["bob@contoso.com"])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    assert get_availability(bob.protocol, ["bob@contoso.com"], _at(day, 10), _at(day, 11)).attendees[0].merged == "22"

    meeting.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    bobs = get_availability(alice.protocol, ["bob@contoso.com"], _at(day, 10), _at(day, 11)).attendees[0]
    assert bobs.merged == "00" and [e.busy_type for e in bobs.events] == ["Free"]
