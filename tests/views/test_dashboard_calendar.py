"""The dashboard's upcoming meetings and appointments, New ▾, and the user's time zone: through the test client, on
calendar rows as the sync and the schedule form store them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from web_helpers import post, signed_in

from widget import settings
from widget.extensions import db
from widget.models import CalendarItem, User

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
HTMX = {"HX-Request": "true"}



def put_items(app, owner: str, *items: dict) -> None:
    """Calendar rows of `owner`, as the sync stores them."""
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.email == owner))
        for number, values in enumerate(items):
            db.session.add(CalendarItem(user_id=user_id, item_id=f"{owner}-{number}", **values))
        db.session.commit()


def upcoming(client) -> list[str]:
    """The subjects of the dashboard's upcoming list, in order."""
    fragment = client.get("/dashboard/upcoming", headers=HTMX).get_data(as_text=True)
    return [unescape(s) for s in re.findall(r'<span class="subject">(.*?)</span>', fragment)]


def row_time(page: str, subject: str) -> str:
    """The time shown on the upcoming row of `subject`."""
    row = re.search(rf'<time class="when"[^>]*>([^<]*)</time>\s*<span class="subject">{re.escape(subject)}</span>',
                    page)
    assert row, f"{subject} is not listed"
    return row.group(1)


def test_it_lists_the_weeks_items_and_occurrences_of_the_user_only_never_a_series_master(app, sandbox):
    alice, bob = signed_in(app, ALICE), signed_in(app, BOB)
    soon = (datetime.now(UTC) + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    hour = timedelta(hours=1)
    put_items(app, ALICE,
              {"subject": "Pricing call", "kind": "meeting", "start_at": soon + timedelta(days=1),
               "end_at": soon + timedelta(days=1) + hour},
              {"subject": "Weekly sync", "kind": "meeting", "start_at": soon + timedelta(days=3),
               "end_at": soon + timedelta(days=3) + hour, "series_item_id": "series-1"},  # an occurrence
              {"subject": "Weekly sync (series)", "kind": "meeting", "start_at": soon + timedelta(days=3),
               "end_at": soon + timedelta(days=3) + hour, "is_recurring_master": True},
              {"subject": "Dentist", "start_at": soon, "end_at": soon + hour},
              {"subject": "Too far ahead", "start_at": soon + timedelta(days=9), "end_at": soon + timedelta(days=9)
               + hour},
              {"subject": "Over already", "start_at": soon - timedelta(days=1), "end_at": soon - timedelta(days=1)
               + hour})
    put_items(app, BOB, {"subject": "Bob's interview", "start_at": soon + timedelta(days=1),
                         "end_at": soon + timedelta(days=1) + hour})

    assert upcoming(alice) == ["Dentist", "Pricing call", "Weekly sync"]
    assert upcoming(bob) == ["Bob's interview"]
    page = unescape(alice.get("/dashboard").get_data(as_text=True))
    assert "Bob's interview" not in page and "Weekly sync (series)" not in page
    # New ▾ opens the three forms in a popup; the list refreshes itself when one of them adds an item.
    for label, path in (("Schedule Meeting", "/meetings/new?kind=meeting"),
                        ("Schedule Appointment", "/meetings/new?kind=appointment"), ("New Task", "/tasks/new")):
        assert f'<a href="{path}" hx-get="{path}" hx-target="#modal-root">{label}</a>' in page
    assert re.search(r'id="upcoming"[^>]*hx-trigger="calendar-changed from:body"', page)
    assert "<summary class=\"button primary\">New ▾</summary>" in page


def test_it_shows_times_in_the_users_zone_named_defaulting_to_the_deployments(app, sandbox):
    client = signed_in(app, ALICE)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=13, minute=0, second=0, microsecond=0)
    put_items(app, ALICE, {"subject": "Pricing call", "start_at": start, "end_at": start + timedelta(hours=1)})
    with app.test_request_context():
        settings.save({"default_time_zone": "Asia/Tokyo"})

    def shown(zone: str) -> str:
        local = start.astimezone(ZoneInfo(zone))
        return f"{local:%H:%M} {local.tzname()}–{local + timedelta(hours=1):%H:%M} {local.tzname()}"

    page = client.get("/dashboard").get_data(as_text=True)
    assert row_time(page, "Pricing call") == shown("Asia/Tokyo")  # not chosen yet: the deployment's zone
    assert re.search(r'<option value="Asia/Tokyo" selected>', page)

    reply = post(client, "/dashboard/time-zone", {"time_zone": "America/New_York"}, token_from="/dashboard",
                 headers=HTMX)
    assert reply.status_code == 200 and reply.headers["HX-Trigger"] == "calendar-changed, tasks-changed"
    assert "Times are now shown in America/New_York." in reply.get_data(as_text=True)
    page = client.get("/dashboard").get_data(as_text=True)
    assert row_time(page, "Pricing call") == shown("America/New_York")
    assert "Times in America/New_York" in page

    reply = post(client, "/dashboard/time-zone", {"time_zone": "Mars/Olympus"}, token_from="/dashboard")
    assert reply.status_code == 422
    assert "Choose a time zone from the list, such as Europe/Berlin." in reply.get_data(as_text=True)

    # UTC chosen on purpose stays UTC when the deployment's default changes.
    assert post(client, "/dashboard/time-zone", {"time_zone": "Etc/UTC"}, token_from="/dashboard").status_code == 303
    with app.test_request_context():
        settings.save({"default_time_zone": "Europe/Berlin"})
    assert row_time(client.get("/dashboard").get_data(as_text=True), "Pricing call") == shown("UTC")
