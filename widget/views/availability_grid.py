"""The availability grid of the schedule form, built from one free/busy answer: a row per person (the
user first) over the chosen day in 30-minute slots, each slot free / tentative / busy / out of office / working
elsewhere / no information, shaded outside the person's working hours; "unknown" rows for addresses Exchange does
not know (outside the organisation); the chosen slot marked; and the next times that suit everyone known.

Those times are found here, in the free/busy Exchange already sent: a start whose slots are free and within working
hours for every person Exchange knows, what Exchange's own meeting suggestions rate "Excellent". Asking Exchange
for its suggestions too would cost a response with every attendee's conflicts for every suggested time, which for
50 attendees takes three times as long as the free/busy alone (bench/availability.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from ..exchange.values import AvailabilityProblem, BusyType
from .meeting_form import WALL_FORMAT

if TYPE_CHECKING:
    from ..exchange.values import AttendeeAvailability, Availability, WorkingHours

SLOT = timedelta(minutes=30)
MAX_SUGGESTIONS = 6
# The busy types, strongest last, with the class the grid draws them with and their words.
STATUSES = {
    BusyType.FREE: ("free", "Free"),
    BusyType.WORKING_ELSEWHERE: ("elsewhere", "Working elsewhere"),
    BusyType.UNKNOWN: ("nodata", "No information"),
    BusyType.TENTATIVE: ("tentative", "Tentative"),
    BusyType.BUSY: ("busy", "Busy"),
    BusyType.OOF: ("oof", "Out of office"),
}
LEGEND = (BusyType.FREE, BusyType.TENTATIVE, BusyType.BUSY, BusyType.OOF, BusyType.WORKING_ELSEWHERE,
          BusyType.UNKNOWN)
_STRENGTH = list(STATUSES)
UNKNOWN_REASONS = {
    AvailabilityProblem.UNKNOWN_PERSON: "Unknown: outside your organisation",
}


@dataclass(frozen=True)
class Slot:
    """One 30-minute slot of a person's row."""

    start: datetime  # in the user's zone
    status: str  # a key of STATUSES
    working: bool  # within the person's working hours (True when Exchange did not say)
    chosen: bool

    @property
    def look(self) -> tuple[str, bool, bool]:
        """What the grid draws: neighbouring slots that look the same share one cell."""
        return self.status, self.working, self.chosen


@dataclass(frozen=True)
class Cell:
    """A run of neighbouring slots that look the same, drawn as one table cell spanning their columns."""

    css: str
    title: str  # e.g. "10:00–11:00 Busy"
    span: int


def _cells(slots: tuple[Slot, ...], day_end: datetime) -> tuple[Cell, ...]:
    """The row's slots as runs (about five cells for a day rather than 48: a grid of 50 people renders fast)."""
    cells = []
    first = 0
    for index in range(1, len(slots) + 1):
        if index < len(slots) and slots[index].look == slots[first].look:
            continue
        slot = slots[first]
        until = slots[index].start if index < len(slots) else day_end
        classes = ["slot", STATUSES[slot.status][0]] + ["off-hours"] * (not slot.working) + ["chosen"] * slot.chosen
        title = f"{slot.start:%H:%M}–{until:%H:%M} {STATUSES[slot.status][1]}"
        cells.append(Cell(" ".join(classes), title + ("" if slot.working else " (outside working hours)"),
                          index - first))
        first = index
    return tuple(cells)


@dataclass(frozen=True)
class Row:
    """A person of the grid: their slots, or why Exchange gives none."""

    address: str
    name: str
    is_you: bool
    slots: tuple[Slot, ...]
    cells: tuple[Cell, ...] = ()
    unknown: str | None = None  # why there is no availability (an address outside the organisation, ...)

    @property
    def at_chosen(self) -> str | None:
        """Their strongest status over the chosen time on this day (a key of STATUSES), None when not shown."""
        chosen = [slot.status for slot in self.slots if slot.chosen]
        return max(chosen, key=_STRENGTH.index) if chosen else None


@dataclass(frozen=True)
class Offer:
    """A suggested time that suits everyone known, as a button applies it to the form's start and end."""

    start: datetime
    end: datetime

    @property
    def value(self) -> str:
        """start/end as the form's fields take them."""
        return f"{self.start.strftime(WALL_FORMAT)}/{self.end.strftime(WALL_FORMAT)}"

    @property
    def label(self) -> str:
        """e.g. "10:30–11:00"."""
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Grid:
    """What the availability fragment draws."""

    day: date
    zone_name: str
    columns: tuple[tuple[datetime, bool], ...]  # each slot's start (in the user's zone) and whether it is chosen
    rows: tuple[Row, ...]
    offers: tuple[Offer, ...]
    chosen_shown: bool  # whether the chosen time falls on this day

    @property
    def busy_at_chosen(self) -> list[Row]:
        """The people who are not free at the chosen time."""
        return [row for row in self.rows if row.at_chosen not in (None, BusyType.FREE, BusyType.WORKING_ELSEWHERE)]

    @property
    def unknown_rows(self) -> list[Row]:
        """The people Exchange gives no availability for."""
        return [row for row in self.rows if row.unknown]


def day_window(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """Midnight to midnight of `day` in `zone` (23 or 25 hours on the days clocks change)."""
    return datetime.combine(day, time(), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def meeting_minutes(start: datetime, end: datetime, all_day: bool) -> int | None:
    """The length of the times to offer: the chosen one, up to a day; None for all-day events (nothing offered)."""
    if all_day:
        return None
    return max(1, min(1440, int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() // 60)))


def _slot_starts(day: date, zone: tzinfo) -> list[datetime]:
    begin, finish = (moment.astimezone(UTC) for moment in day_window(day, zone))
    starts = []
    while begin < finish:
        starts.append(begin.astimezone(zone))
        begin += SLOT
    return starts


def _at_work(hours: WorkingHours | None, starts: list[datetime],
             known: dict[tuple[Any, ...], list[bool]]) -> list[bool]:
    """Whether each slot starts within the person's working hours (all True when Exchange did not say). People
    whose clock keeps one UTC offset all day share the answer of anyone with the same offset and hours (`known`):
    a team mostly does, and a grid of 50 people then asks the time zone rules twice, not 2,400 times."""
    if hours is None or not starts:
        return [True] * len(starts)
    offsets = {start.astimezone(hours.time_zone).utcoffset() for start in (starts[0], starts[-1])}
    if len(offsets) > 1:  # the day the person's clocks change
        return [hours.contains(start) for start in starts]
    key = (offsets.pop(), hours.periods)
    if key not in known:
        known[key] = [hours.contains(start) for start in starts]
    return known[key]


def _row(entry: AttendeeAvailability, name: str, is_you: bool, columns: tuple[tuple[datetime, bool], ...],
         day_end: datetime, known_hours: dict[tuple[Any, ...], list[bool]]) -> Row:
    if entry.problem:
        reason = UNKNOWN_REASONS.get(entry.problem, "Unknown: Exchange shows no availability for this address")
        return Row(entry.email.lower(), name, is_you, (), unknown=reason)
    at_work = _at_work(entry.working_hours, [start for start, _ in columns], known_hours)
    slots = []
    for index, (start, is_chosen) in enumerate(columns):
        status = entry.statuses[index] if index < len(entry.statuses) else BusyType.UNKNOWN
        slots.append(Slot(start=start, status=status if status in STATUSES else BusyType.UNKNOWN,
                          working=at_work[index], chosen=is_chosen))
    return Row(entry.email.lower(), name, is_you, tuple(slots), _cells(tuple(slots), day_end))


def _offers(rows: tuple[Row, ...], columns: tuple[tuple[datetime, bool], ...], chosen: tuple[datetime, datetime] | None,
            minutes: int | None, now: datetime) -> tuple[Offer, ...]:
    """The next times of the day, after the chosen start first, when everyone known is free and at work for every
    half hour the meeting touches."""
    if chosen is None or minutes is None:
        return ()
    length = -(-minutes // 30)
    known = [row for row in rows if not row.unknown]
    suits = [all(row.slots[index].status == BusyType.FREE and row.slots[index].working for row in known)
             for index in range(len(columns))]
    starts = [columns[index][0] for index in range(len(columns) - length + 1)
              if columns[index][0] >= now and all(suits[index:index + length])]
    begin = chosen[0]
    starts = [start for start in starts if start > begin] + [start for start in starts if start < begin]
    duration = timedelta(minutes=minutes)
    return tuple(Offer(start, (start.astimezone(UTC) + duration).astimezone(start.tzinfo))
                 for start in sorted(starts[:MAX_SUGGESTIONS]))


def build_grid(answer: Availability, people: Sequence[tuple[str, str]], day: date, zone: tzinfo,
               chosen: tuple[datetime, datetime] | None, now: datetime, minutes: int | None) -> Grid:
    """The grid of `people` ((address, name), the user first) from Exchange's answer for `day`, offering times of
    `minutes` (none for None)."""
    starts = _slot_starts(day, zone)
    # Compared as instants (the arithmetic in UTC), so that the days clocks change come out right.
    columns = tuple((start, chosen is not None and start < chosen[1] and start.astimezone(UTC) + SLOT > chosen[0])
                    for start in starts)
    names = {address.lower(): name for address, name in people}
    day_end = day_window(day, zone)[1]
    known_hours: dict[tuple[Any, ...], list[bool]] = {}
    rows = tuple(_row(entry, names.get(entry.email.lower(), ""), index == 0, columns, day_end, known_hours)
                 for index, entry in enumerate(answer.attendees))
    return Grid(day=day, zone_name=getattr(zone, "key", str(zone)), columns=columns, rows=rows,
                offers=_offers(rows, columns, chosen, minutes, now),
                chosen_shown=any(is_chosen for _, is_chosen in columns))
