"""The schedule form's values: read from a request, checked field by field, and turned into the instants and
attendees that Exchange is given. No Flask view lives here (see meetings.py).

Start and end are typed as wall-clock times of the user's zone ("2027-03-15T14:00", what <input
type="datetime-local"> sends); they become timezone-aware datetimes of that zone. A time that the zone skips (the
hour lost when clocks go forward) is refused rather than silently moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from ..addresses import AddressError, parse_address_list
from ..sync.calendar_actions import MeetingDraft
from .emails import _ADDRESS

KINDS = ("meeting", "appointment")
MAX_SUBJECT = 255
MAX_LOCATION = 255
MAX_NOTES = 100_000
# Exchange shows the availability of at most 100 mailboxes at once: the attendees and the organiser.
MAX_ATTENDEES = 99
MAX_DAYS = 366  # a longer event is a typing mistake, not a meeting
REMINDERS = ((5, "5 minutes"), (10, "10 minutes"), (15, "15 minutes"), (30, "30 minutes"), (60, "1 hour"),
             (120, "2 hours"), (1440, "1 day"), (2880, "2 days"), (10080, "1 week"))
DEFAULT_REMINDER = 15
WALL_FORMAT = "%Y-%m-%dT%H:%M"
YEARS = range(1900, 2200)  # what a calendar holds; year 1 or 9999 would overflow on the way to UTC
_SLOT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d)/(\d{4}-\d\d-\d\dT\d\d:\d\d)$")
# Characters XML 1.0 cannot carry (control characters other than tab and line breaks, lone surrogates): Exchange
# could not be given them, nor could PostgreSQL keep a NUL.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def plain_text(text: str) -> str:
    """Typed text without the characters that neither Exchange nor the database can keep."""
    return _NOT_XML.sub("", text)


@dataclass
class ScheduleForm:
    """What the form holds, as typed (re-rendered as is beside its errors)."""

    kind: str = "meeting"
    subject: str = ""
    attendees: list[tuple[str, str]] = field(default_factory=list)  # (address lower-cased, display name)
    pending: str = ""  # typed into the attendee box but not yet a chip (how the form works without JavaScript)
    location: str = ""
    start: str = ""
    end: str = ""
    all_day: bool = False
    reminder_on: bool = True
    reminder_minutes: int = DEFAULT_REMINDER
    notes: str = ""

    @property
    def is_meeting(self) -> bool:
        """Whether attendees are invited (an appointment invites nobody)."""
        return self.kind == "meeting"


def kind_of(raw: str | None) -> str:
    """"meeting" or "appointment" (anything else is a meeting)."""
    return raw if raw in KINDS else "meeting"


def default_form(kind: str, zone: tzinfo, now: datetime) -> ScheduleForm:
    """A new form: from the next half hour, for half an hour, with a 15-minute reminder."""
    local = now.astimezone(zone).replace(second=0, microsecond=0)
    start = local + timedelta(minutes=30 - local.minute % 30)
    return ScheduleForm(kind=kind, start=start.strftime(WALL_FORMAT),
                        end=(start + timedelta(minutes=30)).strftime(WALL_FORMAT))


def parse_attendee(raw: str) -> tuple[str, str] | None:
    """One attendee as a chip carries it ("Name <address>" or an address); None when it holds no valid address."""
    try:
        pairs = parse_address_list(plain_text(raw))
    except AddressError:
        return None
    if len(pairs) != 1:
        return None
    name, address = pairs[0]
    address = address.strip()
    if not _ADDRESS.match(address):
        return None
    return address.lower(), " ".join(name.split())


def chip_value(address: str, name: str) -> str:
    """How a chip's hidden input carries an attendee (parse_attendee reads it back)."""
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def _add_attendees(form: ScheduleForm, raws: list[str], errors: dict[str, str]) -> list[str]:
    """Append each readable attendee once; returns the entries that are not addresses (and says so in errors)."""
    known = {address for address, _ in form.attendees}
    unreadable = []
    for raw in raws:
        pair = parse_attendee(raw)
        if pair is None:
            errors["attendees"] = f"“{raw.strip()}” is not an email address."
            unreadable.append(raw.strip())
        elif pair[0] not in known:
            known.add(pair[0])
            form.attendees.append(pair)
    return unreadable


def _pending_addresses(text: str) -> list[str]:
    """What was typed into the attendee box, one entry per address (commas and semicolons separate them)."""
    return [part.strip() for part in re.split(r"[;,\n]", text) if part.strip()]


def read_form(values: MultiDict[str, str], kind: str) -> tuple[ScheduleForm, dict[str, str]]:
    """The form as submitted, with the attendee box's addresses turned into chips; errors of unreadable attendees.

    The request may also ask to drop a chip ("remove") or to take a suggested slot ("slot"), as the buttons do when
    JavaScript is off.
    """
    errors: dict[str, str] = {}
    try:
        minutes = int(values.get("reminder_minutes", DEFAULT_REMINDER))
    except ValueError:
        minutes = -1
    form = ScheduleForm(
        kind=kind,
        subject=plain_text(values.get("subject", "")),
        location=plain_text(values.get("location", "")),
        start=values.get("start", "").strip(),
        end=values.get("end", "").strip(),
        all_day=values.get("all_day") in ("on", "true", "1"),
        reminder_on=values.get("reminder") in ("on", "true", "1"),
        reminder_minutes=minutes,
        notes=plain_text(values.get("notes", "")),
    )
    if form.is_meeting:
        _add_attendees(form, values.getlist("attendee"), errors)
        # What cannot be read stays in the box beside its error, to be corrected.
        form.pending = ", ".join(_add_attendees(form, _pending_addresses(values.get("add_attendees", "")), errors))
        removed = values.get("remove", "").strip().lower()
        if removed:
            form.attendees = [pair for pair in form.attendees if pair[0] != removed]
    slot = _SLOT.match(values.get("slot", ""))
    if slot:
        form = replace(form, start=slot.group(1), end=slot.group(2), all_day=False)
    return form, errors


def parse_wall(text: str, zone: tzinfo) -> datetime | None:
    """A typed wall-clock time ("2027-03-15T14:00", or a date alone) in `zone`; None when it is not one, or when
    the zone skips it (clocks going forward)."""
    text = text.strip()
    try:
        wall = datetime.combine(date.fromisoformat(text), time()) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        return None
    if wall.tzinfo is not None or wall.year not in YEARS:
        return None
    moment = wall.replace(tzinfo=zone)
    # A skipped wall time does not survive the round trip through UTC.
    if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return moment


def _span(form: ScheduleForm, zone: tzinfo, errors: dict[str, str]) -> tuple[datetime, datetime] | None:
    # An all-day event given only its first day lasts that day.
    start, end = parse_wall(form.start, zone), parse_wall(form.end or (form.start if form.all_day else ""), zone)
    zone_name = getattr(zone, "key", str(zone))
    if start is None:
        errors["start"] = (f"Enter a start date and time, such as 2027-03-15T14:00 ({zone_name})." if not form.start
                           else f"“{form.start}” is not a date and time in {zone_name}.")
    if end is None:
        errors["end"] = (f"Enter an end date and time ({zone_name})." if not form.end
                         else f"“{form.end}” is not a date and time in {zone_name}.")
    if start is None or end is None:
        return None
    if form.all_day:
        # Whole days: from the start day's midnight to the midnight after the end day.
        first, last = start.date(), end.date()
        if last < first:
            errors["end"] = "The last day cannot be before the first day."
            return None
        start = datetime.combine(first, time(), tzinfo=zone)
        end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    elif end <= start:
        errors["end"] = "The end must be after the start."
        return None
    if end - start > timedelta(days=MAX_DAYS):
        errors["end"] = f"An event can last at most {MAX_DAYS} days."
        return None
    return start, end


def check(form: ScheduleForm, zone: ZoneInfo, errors: dict[str, str] | None = None) -> tuple[MeetingDraft | None,
                                                                                             dict[str, str]]:
    """Every field checked; the meeting to schedule (in `zone`), or None and each field's error in words."""
    errors = dict(errors or {})
    subject = " ".join(form.subject.split())
    if not subject:
        errors["subject"] = "Enter a subject."
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"The subject is too long (at most {MAX_SUBJECT} characters)."
    if form.is_meeting and "attendees" not in errors:
        if not form.attendees:
            errors["attendees"] = "Add at least one attendee (or schedule an appointment instead)."
        elif len(form.attendees) > MAX_ATTENDEES:
            errors["attendees"] = f"At most {MAX_ATTENDEES} attendees."
    location = " ".join(form.location.split())
    if len(location) > MAX_LOCATION:
        errors["location"] = f"The location is too long (at most {MAX_LOCATION} characters)."
    notes = form.notes.replace("\r\n", "\n")
    if len(notes) > MAX_NOTES:
        errors["notes"] = "The notes are too long."
    if form.reminder_on and form.reminder_minutes not in dict(REMINDERS):
        errors["reminder_minutes"] = "Choose when the reminder comes."
    span = _span(form, zone, errors)
    if errors or span is None:
        return None, errors
    return MeetingDraft(
        kind=form.kind, subject=subject, attendees=tuple(form.attendees) if form.is_meeting else (),
        location=location, start=span[0], end=span[1], all_day=form.all_day, time_zone=zone.key,
        reminder_minutes=form.reminder_minutes if form.reminder_on else None, notes=notes,
    ), {}


def chosen_span(form: ScheduleForm, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The start and end the availability grid marks, read leniently: an end that is missing or not after the start
    counts as half an hour. None when the start is unreadable."""
    span = _span(form, zone, {})
    if span is not None:
        return span
    start = parse_wall(form.start, zone)
    return (start, (start.astimezone(UTC) + timedelta(minutes=30)).astimezone(zone)) if start else None
