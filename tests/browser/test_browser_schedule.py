"""Schedule Meeting and Schedule Appointment inside the CRM's frame: the attendee picker, the live availability grid,
a suggested time applied with a click, a reminder, then what Exchange holds (read back through exchangelib as the
colleague) and who was invited (the sandbox's delivery log)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from browser_helpers import Screenshot, Widget, authorize, open_tab
from contoso import PASSWORDS
from exchangelib import CalendarItem as EwsCalendarItem
from playwright.sync_api import Page, expect

from widget.extensions import db
from widget.models import CrmAddress, CrmRecord

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
LEAD, LEAD_NAME = "pia.lead@prospect.example", "Pia Lead"
GUEST = "guest@fabrikam.example"


def next_monday() -> date:
    """The coming Monday (1 to 7 days ahead): in the dashboard's week, and in the future for suggestions."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=7 - today.weekday())


def wall(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute)).strftime("%Y-%m-%dT%H:%M")


def test_it_schedules_a_meeting_with_live_availability_and_an_appointment_that_invites_nobody(
        page: Page, crm, widget: Widget, account, screenshot: Screenshot):  # noqa: ANN001
    day = next_monday()
    bob = account(BOB)
    EwsCalendarItem(account=bob, folder=bob.calendar, subject="Board meeting",
                    start=datetime.combine(day, time(10), UTC), end=datetime.combine(day, time(11), UTC)).save()
    with widget.app.app_context():
        lead = CrmRecord(module="Leads", crm_id="L-1", name=LEAD_NAME)
        db.session.add(lead)
        db.session.flush()
        db.session.add(CrmAddress(record_id=lead.id, address=LEAD))
        db.session.commit()

    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ALICE, PASSWORDS[ALICE])
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()

    frame.locator("summary", has_text="New").click()
    frame.get_by_role("link", name="Schedule Meeting").click()
    dialog = frame.get_by_role("dialog", name="Schedule Meeting")
    expect(dialog.get_by_label("Subject")).to_be_focused()
    dialog.get_by_label("Subject").fill("Pricing call")
    dialog.get_by_label("Start", exact=True).fill(wall(day, 10))
    dialog.get_by_label("End", exact=True).fill(wall(day, 10, 30))

    # Attendees picked by typing: a colleague of the organisation, then a CRM lead from outside it.
    picker = dialog.get_by_label("Attendees", exact=True)
    picker.fill("bob")
    dialog.get_by_role("option", name="Bob Brown").click()
    picker.fill("pia")
    dialog.get_by_role("option", name=LEAD_NAME).click()
    chosen = dialog.get_by_role("list", name="Attendees chosen")
    expect(chosen).to_contain_text("Bob Brown")
    expect(chosen).to_contain_text(LEAD_NAME)
    # Any address typed whole is added with Enter, and a chip's × takes it away again (the grid follows both).
    picker.fill(GUEST)
    picker.press("Enter")
    expect(dialog.locator(f'tr[data-address="{GUEST}"]')).to_have_count(1)
    dialog.get_by_role("button", name=f"Remove {GUEST}").click()
    expect(chosen.get_by_role("listitem")).to_have_count(2)
    expect(dialog.locator(f'tr[data-address="{GUEST}"]')).to_have_count(0)

    # The grid follows: Bob is busy at the chosen time, the lead is unknown (outside the organisation).
    bob_row = dialog.locator(f'tr[data-address="{BOB}"]')
    expect(bob_row.locator("td.at-chosen")).to_have_text("Busy")
    expect(dialog.locator(f'tr[data-address="{LEAD}"] td.unknown-row')).to_have_text(
        "Unknown: outside your organisation")
    expect(bob_row.locator("td.slot.chosen")).to_have_count(1)
    dialog.locator("#availability").scroll_into_view_if_needed()
    screenshot(page, "schedule")

    # A suggested time applies with a click; the grid then marks it, and Bob is free then.
    offer = dialog.locator("button.offer").first
    expect(offer).to_have_text("11:00–11:30")
    offer.click()
    expect(dialog.get_by_label("Start", exact=True)).to_have_value(wall(day, 11))
    expect(dialog.get_by_label("End", exact=True)).to_have_value(wall(day, 11, 30))
    expect(bob_row.locator("td.at-chosen")).to_have_text("Free")
    expect(bob_row.locator('td.slot.chosen[title^="11:00"]')).to_have_count(1)

    dialog.get_by_label("Reminder", exact=True).check()
    dialog.get_by_label("Reminder time").select_option("15")
    dialog.get_by_role("button", name="Schedule").click()
    expect(dialog.get_by_role("status")).to_contain_text("Your meeting “Pricing call” is scheduled")
    dialog.get_by_role("button", name="Close").click()
    # It is on the dashboard without a page reload.
    expect(frame.locator("#upcoming")).to_contain_text("Pricing call")

    # Exchange: the meeting is in Bob's calendar with its reminder and attendees; both attendees were invited.
    window = datetime.combine(day, time(), UTC)
    (copy,) = [item for item in bob.calendar.view(start=window, end=window + timedelta(days=1))
               if item.subject == "Pricing call"]
    assert copy.start == datetime.combine(day, time(11), UTC) and copy.reminder_minutes_before_start == 15
    assert {a.mailbox.email_address for a in copy.required_attendees} == {BOB, LEAD}
    assert [(sent.kind, sent.subject, set(sent.recipients)) for sent in widget.sandbox.store.sent] == [
        ("invitation", "Pricing call", {BOB, LEAD})]

    # An appointment: no attendee field, nobody invited.
    frame.locator("summary", has_text="New").click()
    frame.get_by_role("link", name="Schedule Appointment").click()
    dialog = frame.get_by_role("dialog", name="Schedule Appointment")
    expect(dialog.get_by_label("Attendees", exact=True)).to_have_count(0)
    dialog.get_by_label("Subject").fill("Dentist")
    dialog.get_by_label("Start", exact=True).fill(wall(day, 15))
    dialog.get_by_label("End", exact=True).fill(wall(day, 16))
    dialog.get_by_role("button", name="Schedule").click()
    expect(dialog.get_by_role("status")).to_contain_text("Your appointment “Dentist” is scheduled")
    (dentist,) = [item for item in account(ALICE).calendar.view(start=window, end=window + timedelta(days=1))
                  if item.subject == "Dentist"]
    assert not dentist.required_attendees
    assert len(widget.sandbox.store.sent) == 1  # still only the meeting's invitation
    dialog.get_by_role("button", name="Close").click()
    expect(frame.locator("#upcoming")).to_contain_text("Dentist")
    screenshot(page, "dashboard")  # the README's picture of the dashboard: both items listed
