"""What the schedule form asks Exchange while a user plans a meeting: the free/busy of the attendees, and people
of the organisation found by name (ResolveNames).

Both answer in the widget's own terms and turn exchangelib's failures into ExchangeProblem, so that views never
see an exchangelib exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import requests
from exchangelib import Account
from exchangelib import errors as ews_errors
from exchangelib.properties import Mailbox

from .availability import Availability, AvailabilityError, get_availability
from .connection import ExchangeProblem, explain

MAX_PEOPLE = 10  # names offered per lookup: a picker shows a handful, not Exchange's 100


def free_busy(account: Account, attendees: Sequence[str], start: datetime, end: datetime) -> Availability:
    """The free/busy of the account's owner and `attendees` over [start, end) in 30-minute slots, with their working
    hours: ONE GetUserAvailability request, the owner first (as the organizer)."""
    owner = account.primary_smtp_address
    try:
        return get_availability(account.protocol, [owner, *attendees], start, end, organizer=owner)
    except AvailabilityError as error:
        if error.code == "ErrorMailboxDataArrayTooBig":
            raise ExchangeProblem("too_many", "Exchange shows the availability of at most 100 people at once.") \
                from error
        raise ExchangeProblem("server", "Exchange could not show the availability for this day.") from error
    except (ews_errors.EWSError, requests.RequestException, OSError) as error:
        raise explain(error) from error


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
