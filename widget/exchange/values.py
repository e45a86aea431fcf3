"""The mailbox port's own values: what every backend (EWS, Microsoft Graph) returns and takes, in the widget's words.

Nothing here belongs to a protocol. Item kinds, task statuses, busy types and attendee responses are the port's
words (StrEnum members, equal to their plain strings); each adapter maps its protocol's words onto them. Times are
timezone-aware; stored times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from enum import StrEnum


class ItemKind(StrEnum):
    """What a calendar item is: a single item, a recurring series, one occurrence of it, or a changed occurrence."""

    SINGLE = "single"
    SERIES = "series"
    OCCURRENCE = "occurrence"
    EXCEPTION = "exception"


class TaskStatus(StrEnum):
    """Where a task stands."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WAITING_ON_OTHERS = "waiting_on_others"
    DEFERRED = "deferred"


class BusyType(StrEnum):
    """How a person's time is taken, weakest first (a slot shows the strongest of what overlaps it)."""

    FREE = "free"
    WORKING_ELSEWHERE = "working_elsewhere"
    UNKNOWN = "unknown"  # the server has no information
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"  # out of office


class Response(StrEnum):
    """An attendee's answer to an invitation."""

    UNKNOWN = "unknown"
    ORGANIZER = "organizer"
    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"
    NOT_ANSWERED = "not_answered"


class AvailabilityProblem(StrEnum):
    """Why the server gave no free/busy for one person."""

    UNKNOWN_PERSON = "unknown_person"  # not a mailbox of the organisation (an outside address)
    NOT_SHARED = "not_shared"  # the person does not share their free/busy
    FAILED = "failed"


IMPORTANCES = ("Low", "Normal", "High")


# -- mail -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MessageSummary:
    """What the sync keeps of a message before deciding whether to store it (no body yet)."""

    item_id: str
    change_key: str  # the version of the message: a changed message has another
    subject: str
    sender: tuple[str, str]  # (address, name), address lower-cased
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]]
    received_at: datetime | None
    sent_at: datetime | None
    is_read: bool
    internet_message_id: str | None
    has_attachments: bool
    is_private: bool = False  # marked Private or Confidential: its owner's alone

    def addresses(self) -> set[str]:
        """Every address on the message."""
        return {self.sender[0], *(a for a, _ in self.to), *(a for a, _ in self.cc)} - {""}


@dataclass
class SyncPage:
    """One page of changes of a mail folder, and the opaque sync state that follows it."""

    changed: list[MessageSummary] = field(default_factory=list)  # created or updated
    deleted: list[str] = field(default_factory=list)
    read_flags: list[tuple[str, bool]] = field(default_factory=list)
    sync_state: str = ""
    done: bool = True


@dataclass(frozen=True)
class MessageBody:
    """A message's body and attachment list, fetched only for messages the widget stores."""

    html: str | None
    text: str | None
    attachments: list[tuple[str, int]]


# -- calendar and tasks -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemStamp:
    """What a sync page says of a created or changed item: its id, version, and for calendar items when it is."""

    item_id: str
    change_key: str
    kind: ItemKind | None = None  # single or series for calendar items (a folder holds no occurrences); None for tasks
    start: datetime | None = None
    end: datetime | None = None
    is_private: bool = False


@dataclass
class ChangesPage:
    """One page of changes of the Calendar or Tasks folder, and the opaque sync state that follows it."""

    changed: list[ItemStamp] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    sync_state: str = ""
    done: bool = True


@dataclass(frozen=True)
class Event:
    """A calendar item as the widget keeps it: a single item, a series, an occurrence or an exception."""

    item_id: str
    change_key: str
    kind: ItemKind
    uid: str
    subject: str
    location: str
    start: datetime  # UTC
    end: datetime
    is_all_day: bool
    time_zone: str | None  # IANA name of the zone it was scheduled in
    organizer: str  # lower-cased address
    attendees: tuple[tuple[str, str, str], ...]  # (address lower-cased, name, Response)
    reminder_minutes: int | None  # None: no reminder
    notes: str
    is_cancelled: bool
    last_modified: datetime | None
    is_private: bool = False  # marked Private or Confidential: its owner's alone

    @property
    def is_meeting(self) -> bool:
        """A meeting has attendees; an appointment has none."""
        return bool(self.attendees)

    @property
    def is_series(self) -> bool:
        """A recurring series (its occurrences are read separately)."""
        return self.kind == ItemKind.SERIES


@dataclass(frozen=True)
class TaskData:
    """A task as the widget keeps it."""

    item_id: str
    change_key: str
    subject: str
    due: date | None  # a task's due date, not a time
    status: TaskStatus
    completed_at: datetime | None
    reminder_at: datetime | None
    importance: str  # one of IMPORTANCES
    notes: str
    last_modified: datetime | None

    @property
    def is_complete(self) -> bool:
        """Whether the task is done."""
        return self.status == TaskStatus.COMPLETED


@dataclass(frozen=True)
class EventFields:
    """What the widget writes to a calendar item."""

    subject: str
    location: str
    start: datetime  # timezone-aware
    end: datetime
    is_all_day: bool
    time_zone: str  # the IANA zone it is scheduled in: the mailbox keeps it with the item
    attendees: tuple[tuple[str, str], ...]  # (address, name); empty for an appointment
    reminder_minutes: int | None
    notes: str


@dataclass(frozen=True)
class TaskFields:
    """What the widget writes to a task."""

    subject: str
    due: date | None
    reminder_at: datetime | None
    notes: str
    importance: str = "Normal"
    complete: bool = False


# -- free/busy ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BusyEvent:
    """One calendar event of a person; the details are there only when the server lets the caller see them."""

    start: datetime
    end: datetime
    busy_type: BusyType
    subject: str | None = None
    location: str | None = None
    is_meeting: bool = False
    is_recurring: bool = False
    is_private: bool = False


@dataclass(frozen=True)
class WorkingPeriod:
    """Working days (ISO weekdays, Monday is 1) and the working minutes of the day on the person's clock."""

    weekdays: tuple[int, ...]
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class WorkingHours:
    """A person's working hours, in their own time zone."""

    time_zone: tzinfo
    periods: tuple[WorkingPeriod, ...]

    def contains(self, moment: datetime) -> bool:
        """Whether the person is at work at `moment` (an aware datetime)."""
        wall = moment.astimezone(self.time_zone)
        minute = wall.hour * 60 + wall.minute
        return any(wall.isoweekday() in p.weekdays and p.start_minute <= minute < p.end_minute for p in self.periods)


@dataclass(frozen=True)
class AttendeeAvailability:
    """What the server says of one person: a problem, or their busy type per interval, events and working hours."""

    email: str
    problem: AvailabilityProblem | None = None
    problem_message: str | None = None
    statuses: tuple[BusyType, ...] = ()  # one per interval of the window
    events: list[BusyEvent] = field(default_factory=list)
    working_hours: WorkingHours | None = None


@dataclass(frozen=True)
class Availability:
    """The free/busy of several people over a window: per person (in request order) their availability."""

    start: datetime
    end: datetime
    interval_minutes: int
    attendees: list[AttendeeAvailability]

    def attendee(self, email: str) -> AttendeeAvailability:
        """The entry of one person (case-insensitive)."""
        for entry in self.attendees:
            if entry.email.lower() == email.lower():
                return entry
        raise KeyError(email)

    def intervals(self) -> list[tuple[datetime, datetime]]:
        """The [start, end) of each interval (the last one may reach past the window)."""
        step = timedelta(minutes=self.interval_minutes)
        count = -(-(self.end - self.start) // step)
        begin = self.start.astimezone(UTC)
        zone = self.start.tzinfo
        return [((begin + i * step).astimezone(zone), (begin + (i + 1) * step).astimezone(zone)) for i in range(count)]
