"""What the schedule form asks Exchange while a user plans a meeting: the free/busy of the attendees, and people
of the organisation found by name (ResolveNames).

Both answer in the widget's own terms and turn exchangelib's failures into ExchangeProblem, so that views never
see an exchangelib exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import requests
from exchangelib import Account
from exchangelib import errors as ews_errors
from exchangelib.properties import Mailbox

from ..problems import ExchangeProblem
from ..values import AttendeeAvailability, Availability, AvailabilityProblem, BusyType
from .availability import AttendeeAvailability as EwsAttendeeAvailability
from .availability import AvailabilityError, get_availability
from .connection import explain

MAX_PEOPLE = 10  # names offered per lookup: a picker shows a handful, not Exchange's 100
# EWS's LegacyFreeBusyType words in the port's.
_BUSY_TYPES = {"Free": BusyType.FREE, "Tentative": BusyType.TENTATIVE, "Busy": BusyType.BUSY, "OOF": BusyType.OOF,
               "WorkingElsewhere": BusyType.WORKING_ELSEWHERE, "NoData": BusyType.UNKNOWN}
_PROBLEMS = {"ErrorMailRecipientNotFound": AvailabilityProblem.UNKNOWN_PERSON,
             "ErrorNoFreeBusyAccess": AvailabilityProblem.NOT_SHARED}


def _in_port_words(entry: EwsAttendeeAvailability) -> AttendeeAvailability:
    if entry.error:
        return AttendeeAvailability(email=entry.email, problem=_PROBLEMS.get(entry.error, AvailabilityProblem.FAILED),
                                    problem_message=entry.error_message)
    return AttendeeAvailability(
        email=entry.email, statuses=tuple(_BUSY_TYPES.get(status, BusyType.UNKNOWN) for status in entry.statuses),
        events=[replace(e, busy_type=_BUSY_TYPES.get(e.busy_type, BusyType.BUSY)) for e in entry.events],
        working_hours=entry.working_hours)


def free_busy(account: Account, attendees: Sequence[str], start: datetime, end: datetime) -> Availability:
    """The free/busy of the account's owner and `attendees` over [start, end) in 30-minute slots, with their working
    hours: ONE GetUserAvailability request, the owner first (as the organizer)."""
    owner = account.primary_smtp_address
    try:
        answer = get_availability(account.protocol, [owner, *attendees], start, end, organizer=owner)
    except AvailabilityError as error:
        if error.code == "ErrorMailboxDataArrayTooBig":
            raise ExchangeProblem("too_many", "Exchange shows the availability of at most 100 people at once.") \
                from error
        raise ExchangeProblem("server", "Exchange could not show the availability for this day.") from error
    except (ews_errors.EWSError, requests.RequestException, OSError) as error:
        raise explain(error) from error
    return Availability(start=answer.start, end=answer.end, interval_minutes=answer.interval_minutes,
                        attendees=[_in_port_words(entry) for entry in answer.attendees])


def resolve_people(account: Account, query: str) -> list[tuple[str, str]]:
    """People of the organisation's directory whose name or address starts with `query`: (address lower-cased,
    display name) pairs, at most MAX_PEOPLE. One ResolveNames request."""
    query = query.strip()
    if not query:
        return []
    try:
        account.protocol.version  # noqa: B018 - ResolveNames is sent in the protocol's version: ask it first if unknown
        found = account.protocol.resolve_names([query], search_scope="ActiveDirectory")
    except (ews_errors.EWSError, requests.RequestException, OSError) as error:
        raise explain(error) from error
    people: dict[str, str] = {}
    for entry in found:
        # "No results" comes back as an exception object in the list, not raised.
        if isinstance(entry, Mailbox) and entry.email_address:
            people.setdefault(entry.email_address.lower(), entry.name or "")
    return list(people.items())[:MAX_PEOPLE]
