"""The widget's sync over Microsoft Graph: a user's mail, calendar and tasks stored exactly as over EWS, a sync
without news costing one request per folder, and Graph's faults (429 reschedules, 410 makes a full pass that loses
nothing). The widget runs on SQLite (and PostgreSQL when configured) against the sandbox, whose EWS and Graph fronts
share one store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from calendar_helpers import add_user, sync
from graph_client import use_graph

from widget import settings
from widget.extensions import db
from widget.models import CalendarItem, Email, Task, User

ALICE = "users/alice@contoso.com"
START = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
EMAIL_FIELDS = ("folder", "direction", "subject", "sender_address", "to_recipients", "cc_recipients", "received_at",
                "is_read", "has_attachments", "body_text", "body_html")
EVENT_FIELDS = ("subject", "location", "start_at", "end_at", "is_all_day", "is_recurring_master", "kind",
                "organizer_address", "reminder_enabled", "reminder_minutes", "notes", "is_cancelled")
TASK_FIELDS = ("subject", "due_at", "status", "is_complete", "importance", "notes")


def _wall(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.fixture
def seeded(graph):
    """Alice's mailbox: mail both ways, a meeting, a daily series of three, and two tasks."""
    graph.ok("POST", "users/carol@contoso.com/sendMail", {"message": {
        "subject": "Offer", "body": {"contentType": "text", "content": "Our offer."},
        "toRecipients": [{"emailAddress": {"address": "alice@contoso.com"}}]}}, status=202)
    graph.ok("POST", f"{ALICE}/sendMail", {"message": {
        "subject": "Re: Offer", "body": {"contentType": "text", "content": "Thanks."},
        "toRecipients": [{"emailAddress": {"address": "carol@contoso.com"}}]}}, status=202)
    graph.ok("POST", f"{ALICE}/events", {
        "subject": "Demo", "start": _wall(START), "end": _wall(START + timedelta(hours=1)),
        "location": {"displayName": "Room 1"}, "body": {"contentType": "text", "content": "Agenda"},
        "attendees": [{"type": "required", "emailAddress": {"address": "bob@contoso.com"}}]}, status=201)
    graph.ok("POST", f"{ALICE}/events", {
        "subject": "Stand-up", "start": _wall(START + timedelta(hours=2)),
        "end": _wall(START + timedelta(hours=2, minutes=15)), "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": START.date().isoformat(), "numberOfOccurrences": 3}}},
        status=201)
    lists = graph.ok("GET", f"{ALICE}/todo/lists")["value"]
    default = next(entry["id"] for entry in lists if entry["wellknownListName"] == "defaultList")
    for title in ("Call Lena back", "Send the contract"):
        graph.ok("POST", f"{ALICE}/todo/lists/{default}/tasks", {
            "title": title, "dueDateTime": _wall(START.replace(hour=0))}, status=201)


def _stored(app):
    """What the widget keeps of the user's mailbox, without ids and versions (each backend has its own)."""
    with app.app_context():
        def rows(model, names):
            return sorted(tuple(repr(getattr(row, name)) for name in names) for row in db.session.scalars(
                db.select(model)))
        return rows(Email, EMAIL_FIELDS), rows(CalendarItem, EVENT_FIELDS), rows(Task, TASK_FIELDS)


def test_a_sync_over_graph_stores_what_a_sync_over_ews_stores(make_app, front, seeded):
    over_ews = make_app("ews")
    with over_ews.app_context():
        settings.save({"store_unmatched_email": True})
    over_graph = make_app("graph")
    use_graph(over_graph, front, store_unmatched_email=True)
    ews_run = sync(over_ews, add_user(over_ews, "alice@contoso.com"))
    graph_user = add_user(over_graph, "alice@contoso.com")
    graph_run = sync(over_graph, graph_user)
    assert (graph_run.outcome, ews_run.outcome) == ("ok", "ok")
    emails, events, tasks = _stored(over_graph)
    assert (len(emails), len(events), len(tasks)) == (2, 5, 2)  # the meeting, the series and its 3 occurrences
    assert (emails, events, tasks) == _stored(over_ews)
    assert graph_run.created == ews_run.created

    again = sync(over_graph, graph_user)
    # inbox, sentitems, calendar and tasks: one delta request each, and nothing else
    assert (again.outcome, again.requests, again.created, again.updated, again.deleted) == ("ok", 4, 0, 0, 0)


def test_a_throttled_sync_is_rescheduled_after_retry_after_and_a_reset_delta_loses_nothing(app, sandbox, front,
                                                                                         seeded):
    use_graph(app, front, store_unmatched_email=True)
    user_id = add_user(app, "alice@contoso.com")
    assert sync(app, user_id).outcome == "ok"
    stored = _stored(app)

    requests.post(f"{sandbox.base_url}/sandbox/faults", json={
        "protocol": "graph", "kind": "http_429", "operation": "GET mailFolders/{id}/messages/delta",
        "mailbox": "alice@contoso.com", "retry_after": 120}, timeout=5).raise_for_status()
    before = datetime.now(UTC)
    throttled = sync(app, user_id)
    assert throttled.outcome == "throttled"
    with app.app_context():
        due = db.session.get(User, user_id).sync_due_at
    assert before + timedelta(seconds=115) <= due <= datetime.now(UTC) + timedelta(seconds=125)

    requests.post(f"{sandbox.base_url}/sandbox/faults", json={"protocol": "graph", "kind": "delta_reset"},
                  timeout=5).raise_for_status()
    reset = sync(app, user_id)
    assert reset.outcome == "ok" and reset.deleted == 0
    assert _stored(app) == stored
