"""The schedule form, its live availability grid and attendee picker, and a record's Meetings list: through the test
client, against the sandbox (exchangelib over real HTTP)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import web_helpers
from calendar_helpers import sent_log
from exchangelib import CalendarItem as EwsCalendarItem
from web_helpers import post

from widget import settings
from widget.extensions import db
from widget.models import CalendarItem, CrmAddress, CrmRecord, User

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
LEAD = "pia.lead@prospect.example"
HTMX = {"HX-Request": "true"}
UTC_ZONE = ZoneInfo("UTC")


# -- helpers -----------------------------------------------------------------------------------------------------------
def signed_in(app, email: str, *, time_zone: str | None = None):  # noqa: ANN201 - a FlaskClient
    """A new browser, signed in as `email` (web_helpers.signed_in), in `time_zone` if one is given."""
    client = web_helpers.signed_in(app, email)
    if time_zone:
        with app.app_context():
            db.session.scalar(db.select(User).where(User.email == email)).time_zone = time_zone
            db.session.commit()
    return client


def add_record(app, module: str, crm_id: str, name: str, address: str) -> None:
    with app.app_context():
        row = CrmRecord(module=module, crm_id=crm_id, name=name)
        db.session.add(row)
        db.session.flush()
        db.session.add(CrmAddress(record_id=row.id, address=address))
        db.session.commit()


def next_monday(weeks: int = 2) -> date:
    """A Monday ahead (Exchange suggests no times in the past)."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 * weeks - today.weekday())


def wall(day: date, hour: int, minute: int = 0) -> str:
    """A start or end as the form's datetime-local field sends it."""
    return datetime.combine(day, time(hour, minute)).strftime("%Y-%m-%dT%H:%M")


def busy_block(account, email: str, start: datetime, end: datetime) -> None:  # noqa: ANN001 - the account fixture
    """An appointment in `email`'s own calendar, made through exchangelib."""
    owner = account(email)
    EwsCalendarItem(account=owner, folder=owner.calendar, subject="Busy", start=start, end=end).save()


def field_errors(page: str) -> dict[str, str]:
    """Each field's error as the form shows it beside the field."""
    return {key: unescape(text) for key, text in re.findall(r'<p class="error" id="meeting-([\w]+)-error">(.*?)</p>',
                                                            page, re.S)}


def described_by_its_error(page: str, field_id: str, key: str) -> bool:
    """Whether the field is marked invalid and points at its error (what a screen reader announces)."""
    tag = re.search(rf'<(?:input|select|textarea) id="{field_id}"[^>]*>', page)
    return bool(tag) and 'aria-invalid="true"' in tag.group(0) and \
        f'aria-describedby="meeting-{key}-error"' in tag.group(0)


def input_value(page: str, field_id: str) -> str:
    tag = re.search(rf'<input id="{field_id}"[^>]*value="([^"]*)"', page)
    assert tag, f"no #{field_id} in the page"
    return unescape(tag.group(1))


def half_hours(row: str) -> dict[str, str]:
    """Per half hour of a grid row ("10:00"): the classes of the cell covering it (a cell spans a run of slots that
    look the same; its title names the run, e.g. "10:00–11:00 Busy")."""
    found = {}
    for classes, title, span in re.findall(r'<td class="(slot [^"]*)" title="([^"]*)"(?: colspan="(\d+)")?>', row):
        begin = datetime.strptime(title[:5], "%H:%M")
        for number in range(int(span or 1)):
            found[f"{begin + timedelta(minutes=30 * number):%H:%M}"] = classes
    return found


def grid_rows(fragment: str) -> dict[str, dict[str, object]]:
    """Per person of the availability grid: what it says at the chosen time, its half hours, or why unknown."""
    rows = {}
    for address, body in re.findall(r'<tr class="person[^"]*" data-address="([^"]+)">(.*?)</tr>', fragment, re.S):
        unknown = re.search(r'<td class="unknown-row"[^>]*>(.*?)</td>', body, re.S)
        rows[address] = {
            "at_chosen": unescape(re.search(r'<td class="at-chosen[^"]*">(.*?)</td>', body, re.S).group(1)),
            "slots": half_hours(body),
            "unknown": unescape(unknown.group(1)) if unknown else None,
        }
    return rows


def offers(fragment: str) -> list[str]:
    """The suggested times offered as buttons (start/end values as the form takes them)."""
    return re.findall(r'<button type="submit" name="slot" value="([^"]+)" class="offer"', fragment)


def availability(client, start: str, end: str, *attendees: str):  # noqa: ANN201 - a test client response
    return client.get("/meetings/availability", headers=HTMX,
                      query_string={"kind": "meeting", "start": start, "end": end, "attendee": list(attendees)})


def sandbox_start(sandbox, owner: str, subject: str) -> datetime:  # noqa: ANN001 - the sandbox fixture
    """When the item of that subject starts in `owner`'s calendar in the sandbox (a UTC instant)."""
    folder = sandbox.store.folder(owner, "calendar")
    (item,) = [item for item in folder.items.values() if item.props.get("Subject") == subject]
    return item.props["Start"].astimezone(UTC)


def calendar_rows(app) -> list[CalendarItem]:
    with app.app_context():
        rows = db.session.scalars(db.select(CalendarItem)).all()
        db.session.expunge_all()
        return list(rows)


# -- the form ------------------------------------------------------------------------------------------------------
def test_it_puts_each_error_beside_its_field_and_creates_nothing(app, sandbox):
    client = signed_in(app, ALICE, time_zone="Europe/Berlin")
    day = next_monday()
    form = {"kind": "meeting", "subject": "  ", "location": "Room 4", "add_attendees": "not-an-address",
            "start": wall(day, 14), "end": wall(day, 13), "reminder": "on", "reminder_minutes": "7"}

    reply = post(client, "/meetings/new", form, token_from="/meetings/new")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 422 and "<html" in page  # the page again, without JavaScript
    assert field_errors(page) == {
        "subject": "Enter a subject.",
        "attendees": "“not-an-address” is not an email address.",
        "end": "The end must be after the start.",
        "reminder_minutes": "Choose when the reminder comes.",
    }
    for field_id, key in (("meeting-subject", "subject"), ("attendee-search", "attendees"), ("meeting-end", "end"),
                          ("meeting-reminder-minutes", "reminder_minutes")):
        assert described_by_its_error(page, field_id, key), field_id
    assert input_value(page, "meeting-location") == "Room 4"  # what was typed stays, to be corrected
    assert input_value(page, "attendee-search") == "not-an-address"

    # In the popup (htmx) only the form comes back; 02:30 on the day Berlin's clocks jump from 02:00 to 03:00 does
    # not exist, and an appointment needs no attendee.
    reply = post(client, "/meetings/new", {**form, "kind": "appointment", "subject": "Dentist",
                                           "start": "2027-03-28T02:30", "end": "2027-03-28T04:00",
                                           "reminder_minutes": "15"},
                 token_from="/meetings/new", headers=HTMX)
    page = reply.get_data(as_text=True)
    assert reply.status_code == 422 and page.lstrip().startswith('<div class="schedule-box">')
    assert field_errors(page) == {"start": "“2027-03-28T02:30” is not a date and time in Europe/Berlin."}

    # The availability grid says so too, without asking Exchange.
    reply = client.get("/meetings/availability", headers=HTMX, query_string={"start": "soon"})
    assert reply.status_code == 422
    assert "Enter a start date and time to see the availability." in reply.get_data(as_text=True)

    assert calendar_rows(app) == [] and sent_log(sandbox) == []
    for operation in ("CreateItem", "GetUserAvailability"):
        assert sandbox.stats.operations.get(operation, 0) == 0  # nothing reached Exchange either


def test_it_schedules_a_meeting_from_the_popup_and_an_appointment_without_javascript(app, sandbox):
    client = signed_in(app, ALICE)
    day = next_monday()
    reply = post(client, "/meetings/new", {
        "kind": "meeting", "subject": "Pricing call", "attendee": ['"Bob Brown" <bob@contoso.com>'],
        "add_attendees": LEAD, "start": wall(day, 10), "end": wall(day, 10, 30), "reminder": "on",
        "reminder_minutes": "15", "action": "schedule"}, token_from="/meetings/new", headers=HTMX)
    page = unescape(reply.get_data(as_text=True))
    assert reply.status_code == 200 and reply.headers["HX-Trigger"] == "calendar-changed"
    assert (f"Your meeting “Pricing call” is scheduled for {day:%a %d %b %Y}, 10:00 UTC; invitations went to 2 "
            "attendees.") in " ".join(page.split())
    (meeting,) = calendar_rows(app)
    assert (meeting.kind, meeting.reminder_minutes) == ("meeting", 15)
    assert sorted(a[0] for a in meeting.attendees) == [BOB, LEAD]
    assert sent_log(sandbox) == [("invitation", "Pricing call", tuple(sorted((BOB, LEAD))))]

    reply = post(client, "/meetings/new", {"kind": "appointment", "subject": "Dentist", "start": wall(day, 15),
                                           "end": wall(day, 16), "reminder_minutes": "15"},
                 token_from="/meetings/new?kind=appointment")
    assert reply.status_code == 303
    dashboard = client.get(reply.headers["Location"]).get_data(as_text=True)
    assert "“Dentist” is scheduled." in unescape(dashboard)
    appointment = next(row for row in calendar_rows(app) if row.subject == "Dentist")
    assert appointment.kind == "appointment" and appointment.attendees == []
    assert not appointment.reminder_enabled
    assert len(sent_log(sandbox)) == 1  # the appointment invited nobody


# -- availability --------------------------------------------------------------------------------------------------
def test_it_asks_exchange_once_per_refresh_for_one_and_for_fifty_attendees(app, sandbox):
    colleagues = [f"colleague{n:02d}@contoso.com" for n in range(48)]
    for address in colleagues:
        sandbox.store.add_user(address, "Colleague-pw-1")
    client = signed_in(app, ALICE)
    day = next_monday()
    for attendees in ([BOB], [BOB, *colleagues, LEAD]):
        before = sandbox.stats.operations.get("GetUserAvailability", 0)
        reply = availability(client, wall(day, 10), wall(day, 11), *attendees)
        assert reply.status_code == 200
        assert sandbox.stats.operations["GetUserAvailability"] == before + 1
        rows = grid_rows(reply.get_data(as_text=True))
        assert list(rows) == [ALICE, *attendees]  # the user first, then each attendee in order
    assert len(attendees) == 50


def test_it_shows_busy_colleagues_unknown_outsiders_the_chosen_slot_and_free_times_to_apply(app, sandbox, account):
    day = next_monday()
    busy_block(account, BOB, datetime.combine(day, time(10), UTC_ZONE), datetime.combine(day, time(11), UTC_ZONE))
    client = signed_in(app, ALICE)

    reply = availability(client, wall(day, 10), wall(day, 10, 30), f'"Bob Brown" <{BOB}>', LEAD)
    fragment = reply.get_data(as_text=True)
    rows = grid_rows(fragment)
    assert rows[ALICE]["at_chosen"] == "Free" and rows[BOB]["at_chosen"] == "Busy"
    assert rows[LEAD] == {"at_chosen": "Unknown", "slots": {}, "unknown": "Unknown: outside your organisation"}
    # One cell per half hour of the day; Bob's 10:00-11:00 is busy, the chosen 10:00-10:30 is marked.
    bob = rows[BOB]["slots"]
    assert len(bob) == 48 and "busy" in bob["10:00"] and "busy" in bob["10:30"] and "free" in bob["11:00"]
    assert [t for t, classes in bob.items() if "chosen" in classes] == ["10:00"]
    assert "off-hours" in bob["07:30"] and "off-hours" not in bob["08:00"]  # his working hours: 08:00-17:00
    assert "Not free at the chosen time: Bob Brown (busy)." in " ".join(unescape(fragment).split())

    # The next times that suit everyone known: after the chosen start, never in Bob's busy hour, half an hour long.
    offered = offers(fragment)
    assert offered and offered[0] == f"{wall(day, 11)}/{wall(day, 11, 30)}"
    assert not any(value.startswith((wall(day, 10), wall(day, 10, 30))) for value in offered)

    # A click applies one (here as without JavaScript: the form comes back with Start and End set); nothing is
    # scheduled, and the grid then marks the new slot.
    reply = post(client, "/meetings/new", {"kind": "meeting", "subject": "Pricing call", "attendee": [BOB, LEAD],
                                           "start": wall(day, 10), "end": wall(day, 10, 30), "slot": offered[0]},
                 token_from="/meetings/new")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and field_errors(page) == {}
    assert (input_value(page, "meeting-start"), input_value(page, "meeting-end")) == (wall(day, 11), wall(day, 11, 30))
    assert calendar_rows(app) == []
    rows = grid_rows(availability(client, wall(day, 11), wall(day, 11, 30), BOB).get_data(as_text=True))
    assert rows[BOB]["at_chosen"] == "Free"
    assert [t for t, classes in rows[BOB]["slots"].items() if "chosen" in classes] == ["11:00"]


# -- the attendee picker -------------------------------------------------------------------------------------------
def test_it_offers_crm_leads_and_contacts_colleagues_and_any_typed_address(app, sandbox):
    add_record(app, "Leads", "L-1", "Pia Lead", LEAD)
    add_record(app, "Contacts", "C-1", "Carla Contact", "carla@customer.example")
    add_record(app, "Accounts", "A-1", "Carrot Corp", "info@carrot.example")  # not a person: never offered
    client = signed_in(app, ALICE)

    def offered(query: str) -> list[tuple[str, str]]:
        fragment = client.get("/meetings/people", query_string={"q": query}, headers=HTMX).get_data(as_text=True)
        return [(address, unescape(source)) for address, source in re.findall(
            r'data-address="([^"]+)".*?<span class="tag">(.*?)</span>', fragment, re.S)]

    before = sandbox.stats.operations.get("ResolveNames", 0)
    assert offered("ca") == [("carla@customer.example", "Contact"), (CAROL, "Colleague")]
    assert sandbox.stats.operations["ResolveNames"] == before + 1  # the organisation's directory, once
    assert offered("pia") == [(LEAD, "Lead")]
    assert offered("someone@elsewhere.example") == [("someone@elsewhere.example", "Address")]
    assert offered("c") == []  # one letter asks nobody


# -- daylight saving -----------------------------------------------------------------------------------------------
def test_it_shows_a_new_york_morning_scheduled_from_berlin_at_the_right_time_to_each(app, sandbox):
    # 2027-03-15: New York is on summer time (since 03-14), Berlin still on winter time (until 03-28).
    add_record(app, "Leads", "L-1", "Pia Lead", LEAD)
    alice = signed_in(app, ALICE, time_zone="Europe/Berlin")
    bob = signed_in(app, BOB, time_zone="America/New_York")
    reply = post(alice, "/meetings/new", {"kind": "meeting", "subject": "Transatlantic", "attendee": [BOB, LEAD],
                                          "start": "2027-03-15T14:00", "end": "2027-03-15T15:00",
                                          "reminder_minutes": "15"}, token_from="/meetings/new")
    assert reply.status_code == 303
    (stored,) = calendar_rows(app)
    assert stored.start_at == datetime(2027, 3, 15, 13, 0, tzinfo=UTC)
    assert sandbox_start(sandbox, ALICE, "Transatlantic") == datetime(2027, 3, 15, 13, 0, tzinfo=UTC)

    # Meetings are private as mail is: Bob does not see Alice's copy, nor does a record that is not imported.
    assert 'id="meetings-none"' in bob.get("/crm/Leads/L-1/meetings").get_data(as_text=True)
    assert 'id="meetings-unknown-record"' in alice.get("/crm/Leads/L-404/meetings").get_data(as_text=True)
    assert alice.get("/crm/Campaigns/L-1/meetings").status_code == 404

    # Made team-wide (as the team's mail can be), Bob sees the same stored instant in his zone.
    with app.test_request_context():
        settings.save({"email_visibility": "team"})
    shown_to_alice = " ".join(unescape(alice.get("/crm/Leads/L-1/meetings").get_data(as_text=True)).split())
    shown_to_bob = " ".join(unescape(bob.get("/crm/Leads/L-1/meetings").get_data(as_text=True)).split())
    assert "Transatlantic" in shown_to_alice and "Mon 15 Mar 2027, 14:00 CET" in shown_to_alice
    assert "Transatlantic" in shown_to_bob and "Mon 15 Mar 2027, 09:00 EDT" in shown_to_bob


def test_it_shows_a_colleagues_private_meeting_as_busy_without_its_subject(app, sandbox, account):
    day = next_monday()
    owner = account(BOB)
    EwsCalendarItem(account=owner, folder=owner.calendar, subject="Clinic appointment", sensitivity="Private",
                    start=datetime.combine(day, time(14), UTC_ZONE),
                    end=datetime.combine(day, time(15), UTC_ZONE)).save()
    client = signed_in(app, ALICE)
    fragment = availability(client, wall(day, 14), wall(day, 14, 30), BOB).get_data(as_text=True)
    rows = grid_rows(fragment)
    assert rows[BOB]["at_chosen"] == "Busy" and "busy" in rows[BOB]["slots"]["14:30"]
    assert "Clinic" not in fragment
