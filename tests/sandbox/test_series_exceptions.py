"""One occurrence of a meeting series changed or cancelled by its organiser, through exchangelib: the attendees'
copies follow only when the organiser sends the update, and the delivery log says who was told what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from exchangelib import Account, Attendee, CalendarItem, EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE
from exchangelib.recurrence import DailyPattern, Recurrence

from widget.sandbox import Sandbox

BERLIN = EWSTimeZone("Europe/Berlin")
LEAD = "lena.fischer@acme.example"


def at(day: int, hour: int) -> EWSDateTime:
    return EWSDateTime(2027, 6, day, hour, tzinfo=BERLIN)


def subjects_and_starts(account: Account) -> list[tuple[str, datetime]]:
    """What a calendar shows from June 1 to 7, in UTC."""
    return [(item.subject, item.start.astimezone(EWSTimeZone("UTC")))
            for item in account.calendar.view(start=at(1, 0), end=at(8, 0))]


def test_it_sends_an_occurrences_change_or_cancellation_only_when_the_organiser_asks(
        sandbox: Sandbox, account: Callable[..., Account]) -> None:
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    series = CalendarItem(account=alice, folder=alice.calendar, subject="Stand-up", start=at(1, 9), end=at(1, 10),
                          recurrence=Recurrence(pattern=DailyPattern(interval=1), start=date(2027, 6, 1), number=4),
                          required_attendees=[Attendee(mailbox=Mailbox(email_address=address), response_type="Unknown")
                                              for address in ("bob@contoso.com", LEAD)])
    series.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    second, third, fourth = list(alice.calendar.view(start=at(1, 0), end=at(8, 0)))[1:]

    second.subject, second.start, second.end = "Stand-up (moved)", at(2, 15), at(2, 16)
    second.save(update_fields=["subject", "start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    third.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    fourth.subject = "Stand-up (Alice only)"
    fourth.save(update_fields=["subject"], send_meeting_invitations=SEND_TO_NONE)

    utc = [datetime(2027, 6, 1, 7, tzinfo=UTC), datetime(2027, 6, 2, 13, tzinfo=UTC), datetime(2027, 6, 4, 7,
                                                                                                  tzinfo=UTC)]
    assert subjects_and_starts(alice) == [("Stand-up", utc[0]), ("Stand-up (moved)", utc[1]),
                                          ("Stand-up (Alice only)", utc[2])]
    assert subjects_and_starts(bob) == [("Stand-up", utc[0]), ("Stand-up (moved)", utc[1]), ("Stand-up", utc[2])]
    assert [(s.kind, s.subject, sorted(s.recipients)) for s in sandbox.store.sent] == [
        ("invitation", "Stand-up", ["bob@contoso.com", LEAD]),
        ("update", "Stand-up (moved)", ["bob@contoso.com", LEAD]),
        ("cancellation", "Stand-up", ["bob@contoso.com", LEAD]),
    ]
