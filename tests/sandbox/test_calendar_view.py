"""Calendar views on the sandbox: single items and recurring series expanded into occurrences, through exchangelib."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

import pytest
from exchangelib import Account, CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.errors import (
    ErrorCalendarFolderIsInvalidForCalendarView,
    ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange,
    ErrorCalendarViewRangeTooBig,
    ErrorInvalidRestriction,
)
from exchangelib.fields import FRIDAY, LAST, MONDAY, NOVEMBER, SECOND, THURSDAY, TUESDAY, FieldPath
from exchangelib.folders import FolderCollection
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    DailyPattern,
    Recurrence,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)
from exchangelib.services import FindItem

from widget.sandbox import Sandbox

UTC_ZONE = EWSTimeZone("UTC")
BERLIN = EWSTimeZone("Europe/Berlin")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: EWSTimeZone = UTC_ZONE) -> EWSDateTime:
    """A point in time as exchangelib wants it."""
    return EWSDateTime(year, month, day, hour, minute, tzinfo=zone)


@pytest.fixture
def alice(account: Callable[..., Account]) -> Account:
    return account("alice@contoso.com")


def create(account: Account, subject: str, start: EWSDateTime, end: EWSDateTime,
           recurrence: Recurrence | None = None) -> CalendarItem:
    """Save an appointment (a series when `recurrence` is given) in the account's calendar."""
    item = CalendarItem(account=account, folder=account.calendar, subject=subject, start=start, end=end,
                        recurrence=recurrence)
    item.save()
    return item


def starts(items: Iterable[CalendarItem]) -> list[datetime]:
    """The start times of calendar items, in UTC."""
    return [item.start.astimezone(UTC_ZONE) for item in items]


def test_it_returns_single_items_overlapping_the_window(alice: Account) -> None:
    create(alice, "ends at the window's start", at(2026, 4, 1, 9), at(2026, 4, 1, 10))
    create(alice, "spans the window", at(2026, 4, 1, 9), at(2026, 4, 1, 13))
    create(alice, "inside", at(2026, 4, 1, 10, 30), at(2026, 4, 1, 11))
    create(alice, "starts at the window's end", at(2026, 4, 1, 12), at(2026, 4, 1, 13))
    create(alice, "before", at(2026, 4, 1, 8), at(2026, 4, 1, 9))

    found = list(alice.calendar.view(start=at(2026, 4, 1, 10), end=at(2026, 4, 1, 12)))

    # As Exchange: whatever ends before the start or starts at or after the end is left out, in order of start.
    assert [item.subject for item in found] == ["ends at the window's start", "spans the window", "inside"]
    assert {item.type for item in found} == {"Single"}


def test_it_expands_a_daily_series_into_occurrences(alice: Account) -> None:
    master = create(alice, "Stand-up", at(2026, 4, 6, 14), at(2026, 4, 6, 14, 15),
                    Recurrence(pattern=DailyPattern(interval=2), start=date(2026, 4, 6)))

    first = list(alice.calendar.view(start=at(2026, 4, 6), end=at(2026, 4, 13)))
    again = list(alice.calendar.view(start=at(2026, 4, 9), end=at(2026, 4, 11)))

    assert starts(first) == [datetime(2026, 4, day, 14, tzinfo=UTC) for day in (6, 8, 10, 12)]
    assert [item.end - item.start for item in first] == [timedelta(minutes=15)] * 4
    assert {(item.subject, item.type, item.is_recurring) for item in first} == {("Stand-up", "Occurrence", True)}
    assert len({item.id for item in first} | {master.id}) == 5
    # The same occurrence keeps its id from one view to the next.
    assert [item.id for item in again] == [first[2].id]


def test_it_expands_a_weekly_series_with_an_end_date(alice: Account) -> None:
    pattern = WeeklyPattern(interval=2, weekdays=[MONDAY, THURSDAY], first_day_of_week=MONDAY)
    create(alice, "Fortnightly", at(2026, 4, 6, 9, 30), at(2026, 4, 6, 10),
           Recurrence(pattern=pattern, start=date(2026, 4, 6), end=date(2026, 5, 7)))

    found = list(alice.calendar.view(start=at(2026, 3, 1), end=at(2026, 7, 1)))

    assert starts(found) == [datetime(2026, month, day, 9, 30, tzinfo=UTC)
                             for month, day in ((4, 6), (4, 9), (4, 20), (4, 23), (5, 4), (5, 7))]


def test_it_expands_numbered_monthly_and_yearly_series(alice: Account) -> None:
    create(alice, "Second Tuesday", at(2026, 1, 13, 16), at(2026, 1, 13, 17),
           Recurrence(pattern=RelativeMonthlyPattern(interval=1, weekday=TUESDAY, week_number=SECOND),
                      start=date(2026, 1, 1), number=4))
    create(alice, "Month end", at(2026, 1, 31, 7), at(2026, 1, 31, 8),
           Recurrence(pattern=AbsoluteMonthlyPattern(interval=1, day_of_month=31), start=date(2026, 1, 1), number=4))
    create(alice, "Last Friday of November", at(2026, 11, 27, 12), at(2026, 11, 27, 13),
           Recurrence(pattern=RelativeYearlyPattern(weekday=FRIDAY, week_number=LAST, month=NOVEMBER),
                      start=date(2026, 1, 1), number=3))

    early = list(alice.calendar.view(start=at(2026, 1, 1), end=at(2026, 12, 31)))
    later = list(alice.calendar.view(start=at(2027, 1, 1), end=at(2028, 12, 31)))

    def of(items: list[CalendarItem], subject: str) -> list[datetime]:
        return starts(item for item in items if item.subject == subject)

    assert of(early, "Second Tuesday") == [datetime(2026, month, day, 16, tzinfo=UTC)
                                           for month, day in ((1, 13), (2, 10), (3, 10), (4, 14))]
    # Day 31 falls on the last day of shorter months.
    assert of(early, "Month end") == [datetime(2026, month, day, 7, tzinfo=UTC)
                                      for month, day in ((1, 31), (2, 28), (3, 31), (4, 30))]
    assert of(early + later, "Last Friday of November") == [
        datetime(2026, 11, 27, 12, tzinfo=UTC), datetime(2027, 11, 26, 12, tzinfo=UTC),
        datetime(2028, 11, 24, 12, tzinfo=UTC)]


def test_it_keeps_the_local_time_of_a_series_across_a_dst_change(alice: Account) -> None:
    # exchangelib names the zone as Windows does: <t:StartTimeZone Id="W. Europe Standard Time"/>.
    create(alice, "Berlin stand-up", at(2026, 3, 26, 9, zone=BERLIN), at(2026, 3, 26, 9, 30, zone=BERLIN),
           Recurrence(pattern=DailyPattern(interval=1), start=date(2026, 3, 26), number=5))

    found = list(alice.calendar.view(start=at(2026, 3, 20), end=at(2026, 4, 10)))

    # Summer time starts on 29 March 2026: the UTC hour moves, 09:00 in Berlin stays.
    assert starts(found) == [datetime(2026, 3, 26, 8, tzinfo=UTC), datetime(2026, 3, 27, 8, tzinfo=UTC),
                             datetime(2026, 3, 28, 8, tzinfo=UTC), datetime(2026, 3, 29, 7, tzinfo=UTC),
                             datetime(2026, 3, 30, 7, tzinfo=UTC)]
    assert {item.start.astimezone(BERLIN).time().isoformat() for item in found} == {"09:00:00"}
    assert {item.end - item.start for item in found} == {timedelta(minutes=30)}


def test_it_gets_an_occurrence_by_its_id(alice: Account) -> None:
    create(alice, "Weekly review", at(2026, 5, 4, 15), at(2026, 5, 4, 16),
           Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[MONDAY]), start=date(2026, 5, 4), number=10))
    (occurrence,) = alice.calendar.view(start=at(2026, 5, 18), end=at(2026, 5, 19))

    fetched = alice.calendar.get(id=occurrence.id)

    assert fetched.id == occurrence.id
    assert fetched.subject == "Weekly review"
    assert fetched.type == "Occurrence"
    assert fetched.start == datetime(2026, 5, 18, 15, tzinfo=UTC)
    assert fetched.end == datetime(2026, 5, 18, 16, tzinfo=UTC)
    assert fetched.recurrence is None


def test_it_lists_the_master_of_a_series_outside_a_view(alice: Account) -> None:
    create(alice, "Series", at(2026, 6, 1, 9), at(2026, 6, 1, 10),
           Recurrence(pattern=DailyPattern(interval=1), start=date(2026, 6, 1), number=3))
    create(alice, "One-off", at(2026, 6, 2, 9), at(2026, 6, 2, 10))

    listed = sorted(alice.calendar.all().only("subject", "type"), key=lambda item: item.subject)

    assert [(item.subject, item.type) for item in listed] == [("One-off", "Single"), ("Series", "RecurringMaster")]


def test_it_tells_the_first_and_last_occurrence_of_a_master(alice: Account) -> None:
    master = create(alice, "Series", at(2026, 6, 1, 9), at(2026, 6, 1, 10),
                    Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[MONDAY, FRIDAY]), start=date(2026, 6, 1),
                               number=5))
    fields = {FieldPath.from_string(name, folder=alice.calendar) for name in ("first_occurrence", "last_occurrence")}

    (found,) = FindItem(account=alice).call(
        folders=[alice.calendar], additional_fields=fields, restriction=None, order_fields=None, shape="IdOnly",
        query_string=None, depth="Shallow", calendar_view=None, max_items=None, offset=0,
    )
    (occurrence,) = alice.calendar.view(start=at(2026, 6, 1), end=at(2026, 6, 2))

    assert found.id == master.id
    assert found.first_occurrence.start == datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert found.first_occurrence.id == occurrence.id
    # Mondays and Fridays: 1, 5, 8, 12 and 15 June.
    assert found.last_occurrence.start == datetime(2026, 6, 15, 9, tzinfo=UTC)
    assert found.last_occurrence.end == datetime(2026, 6, 15, 10, tzinfo=UTC)


def test_it_returns_at_most_max_items_of_a_view(sandbox: Sandbox, alice: Account) -> None:
    create(alice, "Daily", at(2026, 7, 1, 8), at(2026, 7, 1, 9),
           Recurrence(pattern=DailyPattern(interval=1), start=date(2026, 7, 1)))
    roots: list[dict[str, str]] = []
    sandbox.observers.append(lambda direction, envelope: roots.extend(
        dict(root.attrib) for root in envelope.iter("{http://schemas.microsoft.com/exchange/services/2006/messages}"
                                                    "RootFolder") if direction == "response"))

    found = list(alice.calendar.view(start=at(2026, 7, 1), end=at(2026, 8, 1), max_items=3))

    assert starts(found) == [datetime(2026, 7, day, 8, tzinfo=UTC) for day in (1, 2, 3)]
    assert roots == [{"TotalItemsInView": "31", "IncludesLastItemInRange": "false"}]


def test_it_refuses_a_view_longer_than_two_years(alice: Account) -> None:
    with pytest.raises(ErrorCalendarViewRangeTooBig, match="maximum range of two years"):
        list(alice.calendar.view(start=at(2026, 1, 1), end=at(2028, 6, 1)))


def test_it_refuses_a_restriction_on_a_view(alice: Account) -> None:
    with pytest.raises(ErrorInvalidRestriction):
        list(alice.calendar.view(start=at(2026, 1, 1), end=at(2026, 2, 1)).filter(subject="x"))


def test_it_refuses_a_view_of_a_folder_that_is_no_calendar(alice: Account) -> None:
    with pytest.raises(ErrorCalendarFolderIsInvalidForCalendarView):
        list(FolderCollection(account=alice, folders=[alice.inbox]).view(start=at(2026, 1, 1), end=at(2026, 2, 1)))


def test_it_finds_an_occurrence_by_index_and_the_master_from_an_occurrence(alice: Account) -> None:
    master = create(alice, "Stand-up", at(2026, 6, 1, 9), at(2026, 6, 1, 9, 15),
                    Recurrence(pattern=DailyPattern(interval=1), start=date(2026, 6, 1), number=5))

    third = master.occurrence(index=3)
    third.refresh()
    found_master = third.recurring_master()
    found_master.refresh()

    assert third.start == datetime(2026, 6, 3, 9, tzinfo=UTC) and third.type == "Occurrence"
    assert found_master.id == master.id and found_master.type == "RecurringMaster"
    assert found_master.first_occurrence.start == datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert found_master.last_occurrence.start == datetime(2026, 6, 5, 9, tzinfo=UTC)
    with pytest.raises(ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange):
        master.occurrence(index=6).refresh()


def test_it_deletes_one_occurrence_and_keeps_the_rest_of_the_series(sandbox: Sandbox, alice: Account) -> None:
    master = create(alice, "Stand-up", at(2026, 6, 1, 9), at(2026, 6, 1, 9, 15),
                    Recurrence(pattern=DailyPattern(interval=1), start=date(2026, 6, 1), number=4))
    second = alice.calendar.view(start=at(2026, 6, 2), end=at(2026, 6, 3))[0]

    second.delete()

    assert starts(alice.calendar.view(start=at(2026, 6, 1), end=at(2026, 6, 8))) == [
        datetime(2026, 6, d, 9, tzinfo=UTC) for d in (1, 3, 4)
    ]
    master.refresh()
    assert [o.start for o in master.deleted_occurrences] == [datetime(2026, 6, 2, 9, tzinfo=UTC)]
    # One occurrence changed on its own becomes an exception; the series and its other occurrences stay as they were.
    third = alice.calendar.view(start=at(2026, 6, 3), end=at(2026, 6, 4))[0]
    third.subject, third.start, third.end = "Changed", at(2026, 6, 3, 15), at(2026, 6, 3, 16)
    third.save(update_fields=["subject", "start", "end"])
    shown = alice.calendar.view(start=at(2026, 6, 1), end=at(2026, 6, 8))
    assert [(o.subject, o.type, o.start) for o in shown] == [
        ("Stand-up", "Occurrence", datetime(2026, 6, 1, 9, tzinfo=UTC)),
        ("Changed", "Exception", datetime(2026, 6, 3, 15, tzinfo=UTC)),
        ("Stand-up", "Occurrence", datetime(2026, 6, 4, 9, tzinfo=UTC)),
    ]
    master.refresh()
    assert master.subject == "Stand-up"
    assert [(o.id, o.start, o.original_start) for o in master.modified_occurrences] == [
        (third.id, datetime(2026, 6, 3, 15, tzinfo=UTC), datetime(2026, 6, 3, 9, tzinfo=UTC))]
