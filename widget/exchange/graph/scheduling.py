"""What the schedule form asks Exchange Online: free/busy with getSchedule (ONE request for the owner and up to 100
people) and people of the organisation found by name (the directory's users, by the start of a name or address)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..values import (
    AttendeeAvailability,
    Availability,
    AvailabilityProblem,
    BusyEvent,
    BusyType,
    WorkingHours,
    WorkingPeriod,
)
from .calendar import _instant, zone_of
from .client import GraphClient

INTERVAL_MINUTES = 30
MAX_PEOPLE = 10  # names offered per lookup
# availabilityView digits and scheduleItem statuses in the port's words.
_DIGITS = {"0": BusyType.FREE, "1": BusyType.TENTATIVE, "2": BusyType.BUSY, "3": BusyType.OOF,
           "4": BusyType.WORKING_ELSEWHERE}
_STATUSES = {"free": BusyType.FREE, "tentative": BusyType.TENTATIVE, "busy": BusyType.BUSY, "oof": BusyType.OOF,
             "workingElsewhere": BusyType.WORKING_ELSEWHERE, "unknown": BusyType.UNKNOWN}
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _minute(text: Any) -> int:
    hours, _, rest = str(text or "0:0").partition(":")
    return int(hours or 0) * 60 + int((rest.split(":")[0]) or 0)


def _working_hours(data: Any) -> WorkingHours | None:
    if not isinstance(data, dict):
        return None
    zone = zone_of((data.get("timeZone") or {}).get("name")) or UTC
    days = tuple(_DAYS.index(d) + 1 for d in data.get("daysOfWeek") or [] if d in _DAYS)
    return WorkingHours(zone, (WorkingPeriod(days, _minute(data.get("startTime")), _minute(data.get("endTime"))),))


def _entry(email: str, data: dict[str, Any], zone: Any) -> AttendeeAvailability:
    error = data.get("error")
    if error:
        problem = AvailabilityProblem.NOT_SHARED if error.get("responseCode") == "ErrorNoFreeBusyAccess" else \
            AvailabilityProblem.UNKNOWN_PERSON
        return AttendeeAvailability(email=email, problem=problem, problem_message=error.get("message"))
    events = [BusyEvent(start=_instant(item.get("start")).astimezone(zone),  # type: ignore[union-attr]
                        end=_instant(item.get("end")).astimezone(zone),  # type: ignore[union-attr]
                        busy_type=_STATUSES.get(item.get("status") or "", BusyType.BUSY),
                        subject=item.get("subject"), location=item.get("location"),
                        is_private=bool(item.get("isPrivate")))
              for item in data.get("scheduleItems") or []]
    return AttendeeAvailability(
        email=email, statuses=tuple(_DIGITS.get(d, BusyType.UNKNOWN) for d in data.get("availabilityView") or ""),
        events=events, working_hours=_working_hours(data.get("workingHours")))


def free_busy(client: GraphClient, people: Sequence[str], start: datetime, end: datetime) -> Availability:
    """The owner's (first) and `people`'s free/busy over [start, end) in 30-minute slots: ONE getSchedule."""
    emails = [client.mailbox, *people]
    utc = "%Y-%m-%dT%H:%M:%S"
    answer = client.send("POST", "calendar/getSchedule", prefer='outlook.timezone="UTC"', json={
        "schedules": emails, "availabilityViewInterval": INTERVAL_MINUTES,
        "startTime": {"dateTime": start.astimezone(UTC).strftime(utc), "timeZone": "UTC"},
        "endTime": {"dateTime": end.astimezone(UTC).strftime(utc), "timeZone": "UTC"}}).json()
    by_address = {str(entry.get("scheduleId") or "").lower(): entry for entry in answer.get("value") or []}
    zone = start.tzinfo
    attendees = [_entry(email, by_address.get(email.lower(), {"error": {"message": "No answer for this person."}}),
                        zone) for email in emails]
    return Availability(start=start, end=end, interval_minutes=INTERVAL_MINUTES, attendees=attendees)


def resolve_people(client: GraphClient, query: str) -> list[tuple[str, str]]:
    """People of the directory whose name or address starts with `query`: (address lower-cased, name), at most
    MAX_PEOPLE. ONE request (users with $filter startswith)."""
    query = query.strip()
    if not query:
        return []
    quoted = query.replace("'", "''")
    found = client.send("GET", f"{client.config.base_url}/users", whole=True, params={
        "$filter": f"startswith(displayName,'{quoted}') or startswith(mail,'{quoted}')",
        "$select": "mail,displayName", "$top": str(MAX_PEOPLE)}).json()
    people: dict[str, str] = {}
    for user in found.get("value") or []:
        if user.get("mail"):
            people.setdefault(str(user["mail"]).lower(), str(user.get("displayName") or ""))
    return list(people.items())[:MAX_PEOPLE]
