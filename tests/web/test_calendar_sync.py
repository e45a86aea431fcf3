"""Two-way calendar sync against the sandbox: series as occurrences, conflicts, deletes both ways, a crash between
Exchange and the local commit, the sync types — and never an invitation or cancellation sent by a sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from calendar_helpers import add_user, database_refusing, meeting, run_in, sent_log, sync
from exchangelib import Account, Attendee, CalendarItem, EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.recurrence import DailyPattern, Recurrence, WeeklyPattern
from web_helpers import signed_in

from widget import settings
from widget.exchange.problems import ExchangeProblem
from widget.extensions import db
from widget.models import CalendarAttendee, FolderSync, User
from widget.models import CalendarItem as Row
from widget.sync import calendar_actions
from widget.sync.calendar_actions import NotStoredYet

BERLIN = EWSTimeZone("Europe/Berlin")
LEAD = "lena.fischer@acme.example"


@pytest.fixture
def alice(app):
    """Alice, authorized, in Europe/Berlin."""
    return add_user(app, "alice@contoso.com", time_zone="Europe/Berlin")


def _tomorrow(hour: int) -> EWSDateTime:
    day = datetime.now(UTC).astimezone(BERLIN).date() + timedelta(days=1)
    return EWSDateTime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


def _rows(app) -> list[Row]:
    with app.app_context():
        rows = db.session.scalars(db.select(Row).order_by(Row.start_at, Row.id)).all()
        db.session.expunge_all()
        return list(rows)


def _in_exchange(account: Account, item_id: str) -> CalendarItem:
    return account.calendar.get(id=item_id)


def test_it_shows_a_series_through_its_occurrences_and_follows_their_changes_in_exchange(app, sandbox, alice,
                                                                                        account):
    outlook = account("alice@contoso.com")
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Lunch", start=_tomorrow(12),
                 end=_tomorrow(13)).save()
    series = CalendarItem(account=outlook, folder=outlook.calendar, subject="Stand-up", start=_tomorrow(9),
                          end=_tomorrow(9) + timedelta(minutes=15),
                          recurrence=Recurrence(pattern=DailyPattern(interval=1), start=_tomorrow(9).date(),
                                                number=5))
    series.save()

    first = sync(app, alice)
    rows = _rows(app)
    occurrences = [r for r in rows if r.series_item_id == series.id]
    assert first.created == 7 and first.folders == ["inbox", "sentitems", "calendar", "tasks"]
    assert [r.start_at for r in occurrences] == [(_tomorrow(9) + timedelta(days=d))
                                                  for d in range(5)]
    assert [r.subject for r in rows if not r.is_recurring_master and r.series_item_id is None] == ["Lunch"]

    # In Outlook: the second stand-up moves to the afternoon with a new subject; the fourth is cancelled.
    views = list(outlook.calendar.view(start=_tomorrow(0), end=_tomorrow(0) + timedelta(days=6)))
    second, fourth = [v for v in views if v.subject == "Stand-up"][1], [v for v in views if v.subject == "Stand-up"][3]
    second.subject, second.start, second.end = "Stand-up (demo day)", second.start + timedelta(hours=6), \
        second.end + timedelta(hours=6)
    second.save(update_fields=["subject", "start", "end"])
    fourth.delete()
    finds_before = sandbox.stats.operations["FindItem"]

    changed = sync(app, alice)
    occurrences = [r for r in _rows(app) if r.series_item_id == series.id]
    assert (changed.created, changed.updated, changed.deleted) == (0, 1, 1)
    assert [(r.subject, r.start_at) for r in occurrences] == [
        ("Stand-up", (_tomorrow(9) + timedelta(days=0))),
        ("Stand-up (demo day)", (_tomorrow(15) + timedelta(days=1))),
        ("Stand-up", (_tomorrow(9) + timedelta(days=2))),
        ("Stand-up", (_tomorrow(9) + timedelta(days=4))),
    ]
    assert sandbox.stats.operations["FindItem"] == finds_before + 1  # one calendar view for the changed series

    # Exchange forgets the sync state: a full pass keeps every row (same ids) and deletes nothing.
    kept = [r.id for r in _rows(app)]
    with app.app_context():
        db.session.execute(db.update(FolderSync).where(FolderSync.folder == "calendar")
                           .values(sync_state="H4sIAAAAforgotten"))
        db.session.commit()
    again = sync(app, alice)
    assert again.outcome == "ok" and (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert [r.id for r in _rows(app)] == kept and len(kept) == 6 and sent_log(sandbox) == []


def test_it_moves_the_window_of_occurrences_on_a_new_day(app, sandbox, alice, account):
    outlook = account("alice@contoso.com")
    first_start = _tomorrow(9)
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Pipeline review", start=first_start,
                 end=first_start + timedelta(hours=1),
                 recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[first_start.isoweekday()]),
                                       start=first_start.date())).save()  # every week, for ever

    def expected(now: datetime) -> list[datetime]:
        weeks = (first_start + timedelta(weeks=week) for week in range(60))
        return [start for start in weeks if start < now + timedelta(days=365)]

    today = datetime.now(UTC)
    sync(app, alice, now=today)
    assert [r.start_at for r in _rows(app) if r.series_item_id] == expected(today)
    later = today + timedelta(days=15)
    finds = sandbox.stats.operations["FindItem"]
    sync(app, alice, now=later)  # nothing changed in Exchange: the series is expanded again for the new window
    assert [r.start_at for r in _rows(app) if r.series_item_id] == expected(later)
    assert len(expected(later)) > len(expected(today)) and sandbox.stats.operations["FindItem"] == finds + 1


@pytest.mark.parametrize("rule, after_sync, after_action", [
    ("exchange_wins", "Exchange's", "Exchange's"),
    ("crm_wins", "widget's", "widget's"),
    ("latest_wins", "Exchange's", "widget's"),
])
def test_it_resolves_changes_on_both_sides_by_the_conflict_rule(app, sandbox, alice, account, rule, after_sync,
                                                               after_action):
    with app.app_context():
        settings.save({"conflict_rule": rule})
    outlook = account("alice@contoso.com")
    with run_in(app, alice) as user:
        draft = meeting(_tomorrow(10), subject="Quote review", attendees=((LEAD, "Lena Fischer"),))
        item_id = calendar_actions.schedule(user, draft).item_id
    invited = sent_log(sandbox)

    # The widget changes the meeting (pushed to Exchange at once), then Outlook changes it again before a sync.
    with run_in(app, alice) as user:
        row = db.session.scalar(db.select(Row).where(Row.item_id == item_id))
        calendar_actions.update_calendar_item(user, row, meeting(_tomorrow(10), subject="widget's", attendees=(
            (LEAD, "Lena Fischer"),)))
    sent_by_the_widget = sent_log(sandbox)
    in_outlook = _in_exchange(outlook, item_id)
    in_outlook.subject = "Exchange's"
    in_outlook.save(update_fields=["subject"])
    sync(app, alice)
    assert [r.subject for r in _rows(app)] == [after_sync]
    assert _in_exchange(outlook, item_id).subject == after_sync  # the widget's version is written back if it won

    # Outlook changes it first; then the user, in the widget, without a sync between.
    in_outlook = _in_exchange(outlook, item_id)
    in_outlook.subject = "Exchange's"
    in_outlook.save(update_fields=["subject"])
    with run_in(app, alice) as user:
        row = db.session.scalar(db.select(Row).where(Row.item_id == item_id))
        draft = meeting(_tomorrow(10), subject="widget's", attendees=((LEAD, "Lena Fischer"),))
        if after_action == "Exchange's":
            with pytest.raises(ExchangeProblem, match="changed in Exchange meanwhile"):
                calendar_actions.update_calendar_item(user, row, draft)
        else:
            calendar_actions.update_calendar_item(user, row, draft)
    assert [r.subject for r in _rows(app)] == [after_action]
    assert _in_exchange(outlook, item_id).subject == after_action
    # Invitations and updates come from the user's actions only, never from the sync's write-back.
    assert [kind for kind, _, _ in invited] == ["invitation"] and sent_by_the_widget[1][0] == "update"
    assert len(sent_log(sandbox)) == (2 if after_action == "Exchange's" else 3)


def test_it_carries_deletes_both_ways_without_cancelling_anything(app, sandbox, alice, account):
    outlook = account("alice@contoso.com")
    for subject, hour in (("Deleted in Outlook", 8), ("Deleted on both sides", 12)):
        CalendarItem(account=outlook, folder=outlook.calendar, subject=subject, start=_tomorrow(hour),
                     end=_tomorrow(hour + 1), required_attendees=[
                         Attendee(mailbox=Mailbox(email_address="bob@contoso.com"), response_type="Unknown")]).save()
    with run_in(app, alice) as user:
        calendar_actions.schedule(user, meeting(_tomorrow(14), subject="Deleted in the widget", kind="appointment"))
    sync(app, alice)
    assert [r.subject for r in _rows(app)] == ["Deleted in Outlook", "Deleted on both sides", "Deleted in the widget"]

    for item in outlook.calendar.filter(subject__in=["Deleted in Outlook", "Deleted on both sides"]):
        item.delete()
    with run_in(app, alice) as user:
        for subject in ("Deleted in the widget", "Deleted on both sides"):  # the second is gone from Exchange already
            row = db.session.scalar(db.select(Row).where(Row.subject == subject))
            calendar_actions.delete_calendar_item(user, row, notify_attendees=True)
    run = sync(app, alice)
    assert run.deleted == 1 and _rows(app) == [] and list(outlook.calendar.all()) == []
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(CalendarAttendee.id))) == 0
    # The meeting deleted on both sides was no longer Exchange's to cancel; nothing else had attendees.
    assert sent_log(sandbox) == []


def test_it_stores_a_meeting_once_when_the_database_fails_after_exchange_took_it(app, sandbox, alice, account):
    with run_in(app, alice) as user, database_refusing("calendar_items"), \
            pytest.raises(NotStoredYet, match="after the next sync"):
        calendar_actions.schedule(user, meeting(_tomorrow(11), subject="Kick-off",
                                                attendees=(("bob@contoso.com", "Bob Brown"),)))
    assert _rows(app) == []
    [in_exchange] = list(account("alice@contoso.com").calendar.all())

    sync(app, alice)
    rows = _rows(app)
    assert [(r.item_id, r.subject) for r in rows] == [(in_exchange.id, "Kick-off")]

    # The same for a change: Exchange has it, the widget's row does not; the sync brings it, once.
    with run_in(app, alice) as user, database_refusing("calendar_items"):
        row = db.session.get(Row, rows[0].id)
        with pytest.raises(NotStoredYet):
            calendar_actions.update_calendar_item(user, row, meeting(_tomorrow(16), subject="Kick-off (moved)",
                                                                     attendees=(("bob@contoso.com", "Bob Brown"),)))
    assert _rows(app)[0].subject == "Kick-off"
    run = sync(app, alice)
    assert run.updated == 1 and [(r.id, r.subject, r.start_at) for r in _rows(app)] == [
        (rows[0].id, "Kick-off (moved)", _tomorrow(16))]
    assert [kind for kind, _, _ in sent_log(sandbox)] == ["invitation", "update"]  # the user's two actions only


def test_it_syncs_the_calendar_while_email_is_off_and_only_pushes_with_crm_to_exchange(app, sandbox, alice,
                                                                                        account):
    outlook = account("alice@contoso.com")
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Board", start=_tomorrow(9),
                 end=_tomorrow(10)).save()
    with app.app_context():
        settings.save({"other_email_integration": True})
    run = sync(app, alice)
    assert run.outcome == "ok" and run.folders == ["calendar", "tasks"] and run.created == 1
    with app.app_context():
        assert "another email integration" in db.session.get(User, alice).last_sync_outcome

    with app.app_context():
        settings.save({"sync_calendar": "crm_to_exchange"})
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Not pulled", start=_tomorrow(11),
                 end=_tomorrow(12)).save()
    syncs_before = sandbox.stats.operations["SyncFolderItems"]
    run = sync(app, alice)
    assert run.folders == ["tasks"] and [r.subject for r in _rows(app)] == ["Board"]
    assert sandbox.stats.operations["SyncFolderItems"] == syncs_before + 1  # the Tasks folder only


def test_it_fits_an_outsized_meeting_to_its_columns_and_keeps_syncing(app, sandbox, alice, account):
    """A UID over 300 characters, a location over 500 and an attendee address over 320 (an outsider's meeting) are
    cut to the columns, on PostgreSQL too, instead of failing every later sync of the calendar."""
    from widget.sandbox import items as sandbox_items

    outlook = account("alice@contoso.com")
    item = CalendarItem(account=outlook, folder=outlook.calendar, subject="Outsized", start=_tomorrow(10),
                        end=_tomorrow(11), location="L" * 600, uid="U" * 400)
    item.save()
    # An outsider's invitation, as another server wrote it: organizer and attendee addresses past 320 characters.
    long_address = "x" * 330 + "@fabrikam.example"
    with sandbox.store.lock:
        props = sandbox.store.items[item.id].props
        props["Organizer"] = sandbox_items.Mailbox(long_address)
        props["RequiredAttendees"] = [sandbox_items.Attendee(sandbox_items.Mailbox(long_address))]
    first = sync(app, alice)
    assert first.outcome == "ok", first.error
    (row,) = [r for r in _rows(app) if r.subject == "Outsized"]
    assert row.location == "L" * 500 and row.uid == "U" * 300 and len(row.attendees[0][0]) == 320
    assert len(row.organizer_address) == 320
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Next", start=_tomorrow(14),
                 end=_tomorrow(15)).save()
    assert sync(app, alice).outcome == "ok"
    assert {"Outsized", "Next"} <= {r.subject for r in _rows(app)}


def test_it_leaves_out_an_item_whose_id_it_cannot_keep_and_says_so_in_the_history(app, sandbox, alice, account):
    """One item that cannot be stored is left out with a line in the sync history; the rest of the folder syncs."""
    from widget.sandbox.items import Item

    outlook = account("alice@contoso.com")
    CalendarItem(account=outlook, folder=outlook.calendar, subject="Fine", start=_tomorrow(9), end=_tomorrow(10)).save()
    template = CalendarItem(account=outlook, folder=outlook.calendar, subject="Unkeepable", start=_tomorrow(11),
                            end=_tomorrow(12))
    template.save()
    # The server names this one with an id longer than any the widget keeps (Exchange's ids have no fixed length).
    store = sandbox.store
    folder = store.folder("alice@contoso.com", "calendar")
    with store.lock:
        original = store.items[template.id]
        store.remove_item(original)
        outsized = Item(id="A" * 600, element=original.element, folder_id=folder.id, props=original.props,
                        change_key=store.next_change_key())
        folder.items[outsized.id] = outsized
        store.items[outsized.id] = outsized
        store.item_folder[outsized.id] = folder.id
        folder.record(outsized.id, "create", outsized.change_key)

    run = sync(app, alice)
    assert run.outcome == "ok" and "1 left out" in _last_outcome(app, alice)
    (line,) = run.skipped
    assert line.startswith("Calendar: the item of ") and line.endswith(
        " UTC was left out: its id is longer than the 512 characters the widget keeps.")
    assert {r.subject for r in _rows(app)} == {"Fine"}
    page = signed_in(app, "alice@contoso.com").get("/sync/history").get_data(as_text=True)
    assert line in page


def _last_outcome(app, user_id: int) -> str:  # noqa: ANN001
    with app.app_context():
        return db.session.get(User, user_id).last_sync_outcome or ""
