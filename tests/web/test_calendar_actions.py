"""A user's explicit calendar and task actions against the sandbox: Exchange first, then the store; invitations for
meetings only; daylight saving; the sync type; an edit that meets a change made in Exchange meanwhile."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from calendar_helpers import add_user, meeting, run_in, sent_log
from exchangelib import EWSTimeZone

from widget import settings
from widget.exchange.problems import ExchangeProblem
from widget.extensions import db
from widget.models import CalendarAttendee, CalendarItem, Task
from widget.sync import calendar_actions
from widget.sync.calendar_actions import TaskDraft

LEAD = "lena.fischer@acme.example"
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


@pytest.fixture
def alice(app):
    """Alice, authorized, whose zone is Europe/Berlin."""
    return add_user(app, "alice@contoso.com", time_zone="Europe/Berlin")


def test_it_schedules_a_meeting_with_invitations_and_an_appointment_without(app, sandbox, alice, account):
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    with run_in(app, alice) as user:
        scheduled = calendar_actions.schedule(user, meeting(start, attendees=(("bob@contoso.com", "Bob Brown"),
                                                                              (LEAD, "Lena Fischer")),
                                                            reminder_minutes=15))
        calendar_actions.schedule(user, meeting(start + timedelta(hours=3), subject="Dentist", kind="appointment"))
        addresses = set(db.session.scalars(db.select(CalendarAttendee.address).where(
            CalendarAttendee.calendar_item_id == scheduled.id)))
        assert addresses == {"alice@contoso.com", "bob@contoso.com", LEAD}
        assert scheduled.kind == "meeting" and scheduled.start_at == start

    # The colleague's calendar holds the meeting with its reminder and attendees; both invited, nobody for the
    # appointment.
    bob_copy = next(iter(account("bob@contoso.com").calendar.all()))
    assert bob_copy.subject == "Quote review" and bob_copy.reminder_minutes_before_start == 15
    assert {a.mailbox.email_address for a in bob_copy.required_attendees} == {"bob@contoso.com", LEAD}
    assert sent_log(sandbox) == [("invitation", "Quote review", ("bob@contoso.com", LEAD))]
    dentist = [i for i in account("alice@contoso.com").calendar.all() if i.subject == "Dentist"]
    assert len(dentist) == 1 and not dentist[0].required_attendees


def test_it_lands_a_new_york_morning_at_the_right_instant_for_a_user_in_berlin(app, sandbox, alice, account):
    # 2027-03-15: New York is on summer time (since 03-14), Berlin still on winter time (until 03-28).
    nine_in_new_york = datetime(2027, 3, 15, 9, 0, tzinfo=NEW_YORK)
    with run_in(app, alice) as user:
        stored = calendar_actions.schedule(user, meeting(nine_in_new_york,
                                                         attendees=(("bob@contoso.com", "Bob Brown"),)))
        assert stored.start_at == datetime(2027, 3, 15, 13, 0, tzinfo=UTC) and stored.time_zone == "Europe/Berlin"

    bob_copy = next(iter(account("bob@contoso.com").calendar.all()))
    assert bob_copy.start.astimezone(EWSTimeZone("UTC")) == datetime(2027, 3, 15, 13, 0, tzinfo=UTC)
    # Shown at 14:00 to the organiser in Berlin, and at 09:00 to anyone in New York.
    assert bob_copy.start.astimezone(BERLIN).strftime("%H:%M") == "14:00"
    assert bob_copy.start.astimezone(NEW_YORK).strftime("%H:%M") == "09:00"
    organiser_copy = next(iter(account("alice@contoso.com").calendar.all()))
    assert organiser_copy._start_timezone.key == "Europe/Berlin"


def test_it_creates_and_completes_a_task_in_exchange_first(app, sandbox, alice, account):
    due = datetime(2027, 4, 1, 17, 0, tzinfo=BERLIN)
    with run_in(app, alice) as user:
        task = calendar_actions.create_task(user, TaskDraft(subject="Send the quote", due=due, reminder_at=None,
                                                            notes="40 seats", importance="High"))
        assert task.due_at == datetime(2027, 4, 1, tzinfo=BERLIN) and not task.is_complete
        calendar_actions.complete_task(user, task)
        assert task.is_complete and task.completed_at is not None

    in_exchange = next(iter(account("alice@contoso.com").tasks.all()))
    assert (in_exchange.subject, in_exchange.status, in_exchange.importance) == ("Send the quote", "Completed", "High")
    assert str(in_exchange.due_date) == "2027-04-01"


def test_it_refuses_every_write_when_exchange_owns_the_calendar(app, sandbox, alice, account):
    with app.app_context():
        settings.save({"sync_calendar": "exchange_to_crm", "sync_tasks": "exchange_to_crm"})
    with run_in(app, alice) as user:
        with pytest.raises(ExchangeProblem, match="Exchange → CRM") as refused:
            calendar_actions.schedule(user, meeting(datetime(2027, 5, 3, 9, tzinfo=BERLIN)))
        assert refused.value.kind == "read_only"
        with pytest.raises(ExchangeProblem, match="Exchange → CRM"):
            calendar_actions.create_task(user, TaskDraft(subject="x", due=None, reminder_at=None, notes=""))
        assert db.session.scalar(db.select(db.func.count(CalendarItem.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Task.id))) == 0
    assert list(account("alice@contoso.com").calendar.all()) == []
    assert sandbox.stats.operations["CreateItem"] == 0
