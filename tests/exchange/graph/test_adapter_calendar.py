"""The Graph adapter's calendar and To Do: delta pages in the widget's words, details, series and their occurrences,
and writes guarded by the version the widget last saw (against the sandbox's Graph front)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from graph_client import port_round

from widget.exchange.problems import EditConflict, SyncStateInvalid
from widget.exchange.values import EventFields, ItemKind, Response, TaskFields, TaskStatus

BERLIN = ZoneInfo("Europe/Berlin")
TOMORROW = (datetime.now(BERLIN) + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)


def fields(subject="Demo", attendees=(), **changes):
    values = dict(subject=subject, location="Room 1", start=TOMORROW, end=TOMORROW + timedelta(hours=1),
                  is_all_day=False, time_zone="Europe/Berlin", attendees=attendees, reminder_minutes=15,
                  notes="Agenda")
    values.update(changes)
    return EventFields(**values)


def full_round(mailbox, folder, state=None):
    """Every page of one round of the calendar or tasks."""
    return port_round(lambda at: mailbox.changes(folder, at), state)


def test_it_creates_reads_updates_and_deletes_a_meeting_with_its_version(port):
    alice = port()
    item_id, version = alice.create_event(fields(attendees=(("bob@contoso.com", "Bob Brown"),)), invite=True)
    changed, _, state = full_round(alice, "calendar")
    assert [(s.item_id, s.change_key, s.kind) for s in changed] == [(item_id, version, ItemKind.SINGLE)]
    assert changed[0].start == TOMORROW.astimezone(UTC)
    event = dict(alice.events([item_id]))[item_id]
    assert (event.subject, event.location, event.notes, event.reminder_minutes) == ("Demo", "Room 1", "Agenda", 15)
    assert (event.start, event.end) == (TOMORROW.astimezone(UTC), (TOMORROW + timedelta(hours=1)).astimezone(UTC))
    assert event.time_zone == "Europe/Berlin" and event.organizer == "alice@contoso.com" and event.is_meeting
    assert event.attendees == (("bob@contoso.com", "Bob Brown", Response.UNKNOWN),)
    assert event.uid

    new_id, new_version = alice.update_event(item_id, version, fields("Demo (moved)"), notify=True)
    assert new_id == item_id and new_version != version
    with pytest.raises(EditConflict):  # changed meanwhile: the old version no longer applies
        alice.update_event(item_id, version, fields("Lost change"), notify=True)
    alice.update_event(item_id, version, fields("Overwritten"), notify=True, overwrite=True)
    changed, _, state = full_round(alice, "calendar", state)
    assert [s.item_id for s in changed] == [item_id]
    assert dict(alice.events([item_id]))[item_id].subject == "Overwritten"

    alice.delete_event(item_id, notify=True)
    alice.delete_event(item_id, notify=True)  # gone already: counts as deleted
    _, deleted, _ = full_round(alice, "calendar", state)
    assert deleted == [item_id] and dict(alice.events([item_id])) == {item_id: None}


def test_a_series_is_named_by_its_master_and_its_occurrences_come_from_it(port, graph):
    alice = port()
    start = TOMORROW.astimezone(UTC)
    master = graph.ok("POST", "users/alice@contoso.com/events", {
        "subject": "Stand-up", "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "recurrence": {"pattern": {"type": "daily", "interval": 1}, "range": {
            "type": "numbered", "startDate": start.date().isoformat(), "numberOfOccurrences": 3}}}, status=201)
    changed, _, _ = full_round(alice, "calendar")
    assert [(s.item_id, s.kind) for s in changed] == [(master["id"], ItemKind.SERIES)]
    series = dict(alice.events([master["id"]]))
    assert series[master["id"]].is_series
    found = alice.occurrences(series, start - timedelta(days=1), start + timedelta(days=10))
    assert [e.start for e in found[master["id"]]] == [start + timedelta(days=n) for n in range(3)]
    assert {e.kind for e in found[master["id"]]} == {ItemKind.OCCURRENCE}


def test_a_calendar_state_whose_window_has_moved_on_starts_a_full_pass(port):
    alice = port()
    _, _, state = full_round(alice, "calendar")
    old = json.loads(state)
    old["window_end"] = (datetime.now(UTC) + timedelta(days=300)).isoformat()
    with pytest.raises(SyncStateInvalid):
        alice.changes("calendar", json.dumps(old))
    with pytest.raises(SyncStateInvalid):
        alice.changes("calendar", "not a state")


def test_all_day_items_span_whole_days_of_their_zone_and_zones_come_back_as_windows_keeps_them(port):
    alice = port()
    day = fields("Holiday", is_all_day=True, start=TOMORROW, end=TOMORROW)
    assert alice.stored_span(day) == (datetime.combine(TOMORROW.date(), datetime.min.time(), BERLIN).astimezone(UTC),
                                      datetime.combine(TOMORROW.date() + timedelta(days=1), datetime.min.time(),
                                                       BERLIN).astimezone(UTC))
    item_id, _ = alice.create_event(day, invite=False)
    event = dict(alice.events([item_id]))[item_id]
    assert event.is_all_day and (event.start, event.end) == alice.stored_span(day)
    assert alice.canonical_zone("Europe/Vienna") == "Europe/Berlin"
    assert alice.canonical_zone("Mars/Olympus") == "Mars/Olympus"


def test_it_keeps_tasks_in_the_default_to_do_list_with_their_versions(port):
    alice = port()
    due = date.today() + timedelta(days=3)
    remind = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    item_id, version = alice.create_task(TaskFields("Call Lena back", due, remind, "About the offer", "High"))
    changed, _, state = full_round(alice, "tasks")
    assert [(s.item_id, s.change_key) for s in changed] == [(item_id, version)]
    task = dict(alice.tasks([item_id]))[item_id]
    assert (task.subject, task.due, task.reminder_at, task.importance, task.notes) == (
        "Call Lena back", due, remind, "High", "About the offer")
    assert task.status == TaskStatus.NOT_STARTED

    _, new_version = alice.update_task(item_id, version, TaskFields("Call Lena back", due, None, "", complete=True))
    with pytest.raises(EditConflict):
        alice.update_task(item_id, version, TaskFields("Stale", None, None, ""))
    done = dict(alice.tasks([item_id]))[item_id]
    assert done.is_complete and done.change_key == new_version and done.reminder_at is None
    alice.delete_task(item_id)
    alice.delete_task(item_id)
    _, deleted, _ = full_round(alice, "tasks", state)
    assert deleted == [item_id] and dict(alice.tasks([item_id])) == {item_id: None}
    before = alice.requests
    nothing = alice.changes("tasks", full_round(alice, "tasks")[2])
    assert nothing.changed == [] and alice.requests - before == 2  # the round, then a delta link with no news
