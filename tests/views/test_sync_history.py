"""The sync history page: a user's own runs, everyone's for the administrator, pages of 50, times in the viewer's
zone, and a running sync with its progress. Runs come from a real sync of the sandbox, or are recorded directly
where a test needs many runs or a particular outcome."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from contoso import PASSWORDS

from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, SyncRun, User
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox
from widget.sync.runner import run_sync

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
HTMX = {"HX-Request": "true", "HX-Target": "sync-runs"}


# -- helpers -----------------------------------------------------------------------------------------------------------
def text_of(fragment: str) -> str:
    """HTML as a person reads it."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def runs_shown(reply) -> list[dict[str, str]]:  # noqa: ANN001 - a test response
    """The runs the page lists, newest first, each as {part: text}: outcome, user (the administrator's page only),
    started, duration, folders, created, updated, deleted, requests and error."""
    rows = []
    for row in re.findall(r'<li class="run-row" id="run-\d+">.*?</li>', reply.get_data(as_text=True), re.S):
        parts = dict(re.findall(r'<(?:span|time|p) class="(outcome|user|started|duration|folders|created|updated|'
                                r'deleted|requests|run-error)[^"]*"[^>]*>(.*?)</(?:span|time|p)>', row, re.S))
        rows.append({key.removeprefix("run-"): text_of(value) for key, value in parts.items()})
    return rows


def user_id(app, email: str) -> int:
    """The widget's user with this address (created, as a colleague who never signed in here, when missing)."""
    with app.app_context():
        found = db.session.scalar(db.select(User.id).where(User.email == email))
        if found is None:
            user = User(email=email)
            db.session.add(user)
            db.session.commit()
            found = user.id
        return found


def record_run(app, email: str, started: datetime, **fields) -> int:  # noqa: ANN003
    """A finished run of `email`'s account, as the runner records one (fields override the defaults)."""
    values = {"finished_at": started + timedelta(seconds=3), "folders": ["inbox", "sentitems"], "outcome": "ok",
              "requests": 4, **fields}
    with app.app_context():
        run = SyncRun(user_id=user_id(app, email), started_at=started, **values)
        db.session.add(run)
        db.session.commit()
        return run.id


def set_user(app, email: str, **values) -> None:  # noqa: ANN003
    with app.app_context():
        db.session.execute(db.update(User).where(User.email == email).values(**values))
        db.session.commit()


# -- a user's own history ----------------------------------------------------------------------------------------------
def test_it_shows_a_user_exactly_their_own_runs_newest_first(app, client, sign_in, sandbox):
    sign_in(ALICE, PASSWORDS[ALICE])
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert '<a href="/sync/history">Sync history</a>' in dashboard
    empty = client.get("/sync/history")
    assert empty.status_code == 200 and runs_shown(empty) == []
    assert "No sync yet. Press Sync now on the dashboard to sync your mailbox" in text_of(empty.get_data(as_text=True))

    # One real sync of Alice's mailbox, after an earlier one that failed, and a colleague's run.
    with app.app_context():
        lena = CrmRecord(module="Contacts", crm_id="C-1", name="Lena Fischer")
        db.session.add(lena)
        db.session.flush()
        db.session.add(CrmAddress(record_id=lena.id, address="lena@acme.example"))
        db.session.commit()
    props = {"Subject": "Order", "ToRecipients": [Mailbox(ALICE)], "Body": Body("Text", "Hi")}
    deliver_message(sandbox.store, message_defaults(props, Mailbox("lena@acme.example", "Lena"), datetime.now(UTC)))
    record_run(app, ALICE, datetime.now(UTC) - timedelta(hours=1), outcome="error", requests=1,
               error="Exchange did not answer in time.")
    record_run(app, BOB, datetime.now(UTC) - timedelta(minutes=30), outcome="error", error="Bob's own failure")
    with app.app_context():
        assert run_sync(db.session.scalar(db.select(User).where(User.email == ALICE))).outcome == "ok"

    reply = client.get("/sync/history")
    newest, older = runs_shown(reply)
    assert newest["folders"].startswith("Inbox, Sent Items")  # the mail folders, then calendar and tasks
    assert (newest["created"], newest["updated"], newest["deleted"], newest["outcome"]) == ("1", "0", "0", "Synced")
    assert int(newest["requests"]) >= 3  # the sync pages of two folders and the new message's body
    assert (older["outcome"], older["error"], older["requests"], older["duration"]) == \
        ("Failed", "Exchange did not answer in time.", "1", "took 3 s")
    assert "error" not in newest
    assert "Bob" not in reply.get_data(as_text=True) and BOB not in reply.get_data(as_text=True)


def test_it_keeps_a_user_to_their_own_runs_whatever_the_query_says(app, client, sign_in):
    sign_in(ALICE, PASSWORDS[ALICE])
    mine = record_run(app, ALICE, datetime.now(UTC) - timedelta(hours=2), error=None)
    record_run(app, BOB, datetime.now(UTC) - timedelta(hours=1), outcome="error", error="Bob's own failure")
    bob = user_id(app, BOB)
    for guess in ({"q": BOB}, {"q": "bob"}, {"user": bob}, {"user_id": bob}, {"q": "%"}, {"page": 2}):
        reply = client.get("/sync/history", query_string=guess)
        html = reply.get_data(as_text=True)
        assert reply.status_code == 200 and f'id="run-{mine}"' in html, guess
        assert len(runs_shown(reply)) == 1 and "Bob" not in html and BOB not in html, guess


def test_it_sends_an_anonymous_visitor_to_sign_in(client):
    reply = client.get("/sync/history")
    assert reply.status_code == 302 and reply.headers["Location"].startswith("/signin")


# -- the administrator's view ------------------------------------------------------------------------------------------
def test_it_shows_the_administrator_everyones_runs_and_filters_them_by_user(app, admin_client):
    now = datetime.now(UTC)
    record_run(app, ALICE, now - timedelta(minutes=3))
    record_run(app, BOB, now - timedelta(minutes=2), outcome="needs_password",
               error="Exchange did not accept this email and password.")
    record_run(app, "carol@contoso.com", now - timedelta(minutes=1), outcome="throttled")
    set_user(app, BOB, display_name="Bob Brown")

    reply = admin_client.get("/sync/history")
    html = reply.get_data(as_text=True)
    assert re.search(r'<a href="/sync/history" aria-current="page">Sync history</a>', html)  # in the admin nav
    assert [(row["user"], row["outcome"]) for row in runs_shown(reply)] == [
        ("carol@contoso.com", "Postponed: Exchange was busy"),
        (BOB, "Stopped: Exchange refused the stored password"),
        (ALICE, "Synced"),
    ]
    for query in ("bob@", "Bob Brown", "BOB"):
        assert [row["user"] for row in runs_shown(admin_client.get("/sync/history", query_string={"q": query}))] \
            == [BOB], query
    nothing = admin_client.get("/sync/history", query_string={"q": "%"})  # a wildcard is taken literally
    assert runs_shown(nothing) == [] and "No sync of a user matching “%”." in text_of(nothing.get_data(as_text=True))


# -- pages, time zones, running syncs ----------------------------------------------------------------------------------
def test_it_pages_fifty_runs_at_a_time_newest_first(app, client, sign_in):
    sign_in(ALICE, PASSWORDS[ALICE])
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    for minute in range(55):
        record_run(app, ALICE, start + timedelta(minutes=minute), created=minute)

    first = client.get("/sync/history")
    shown = runs_shown(first)
    assert [int(row["created"]) for row in shown] == list(range(54, 4, -1))
    assert "Page 1 of 2" in text_of(first.get_data(as_text=True)) and 'rel="prev"' not in first.get_data(as_text=True)
    older = re.search(r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#sync-runs" hx-swap="outerHTML" rel="next">Older',
                      first.get_data(as_text=True))
    second = client.get(unescape(older.group(1)))
    assert [int(row["created"]) for row in runs_shown(second)] == [4, 3, 2, 1, 0]
    assert "Page 2 of 2" in text_of(second.get_data(as_text=True))

    # htmx swaps the list only; the same URL answers a whole page without it.
    fragment = client.get(unescape(older.group(1)), headers=HTMX)
    assert fragment.get_data(as_text=True).startswith('<div id="sync-runs"') and "HX-Request" in fragment.vary
    assert len(runs_shown(fragment)) == 5
    assert len(runs_shown(client.get("/sync/history?page=abc"))) == 50  # a bad page number: the first page
    assert len(runs_shown(client.get("/sync/history?page=99"))) == 5  # past the end: the last page


def test_it_shows_times_in_the_users_zone_and_names_it(app, client, sign_in):
    sign_in(ALICE, PASSWORDS[ALICE])
    set_user(app, ALICE, time_zone="America/New_York")
    winter = datetime(2024, 1, 15, 15, 0, 7, tzinfo=UTC)
    record_run(app, ALICE, winter, finished_at=winter + timedelta(minutes=2, seconds=5))
    record_run(app, ALICE, datetime(2024, 7, 15, 15, 0, tzinfo=UTC))

    reply = client.get("/sync/history")
    summer_row, winter_row = runs_shown(reply)
    assert summer_row["started"] == "15 Jul 2024, 11:00:00 EDT"
    assert (winter_row["started"], winter_row["duration"]) == ("15 Jan 2024, 10:00:07 EST", "took 2 min 5 s")
    assert "times in America/New_York" in text_of(reply.get_data(as_text=True))


def test_it_shows_a_running_sync_with_its_progress_and_an_abandoned_one_as_interrupted(app, client, sign_in):
    sign_in(ALICE, PASSWORDS[ALICE])
    now = datetime.now(UTC)
    record_run(app, ALICE, now - timedelta(days=1), finished_at=None, outcome="running", progress="Inbox: 3 changes")
    record_run(app, ALICE, now, finished_at=None, outcome="running", progress="Inbox: 512 changes")
    set_user(app, ALICE, sync_claimed_at=now, sync_claimed_by="sync-now:test")

    reply = client.get("/sync/history")
    running, abandoned = runs_shown(reply)
    assert (running["outcome"], running["duration"]) == ("Running: Inbox: 512 changes", "still running")
    assert (abandoned["outcome"], abandoned["duration"]) == \
        ("Interrupted: the sync stopped before it finished", "never finished")
    assert 'hx-trigger="every 2s"' in reply.get_data(as_text=True)  # the list follows the running sync

    set_user(app, ALICE, sync_claimed_at=None, sync_claimed_by=None)  # its worker died: nobody holds the claim
    reply = client.get("/sync/history", headers=HTMX)
    assert [row["outcome"] for row in runs_shown(reply)] == ["Interrupted: the sync stopped before it finished"] * 2
    assert "every 2s" not in reply.get_data(as_text=True)
