"""The email sync engine against the sandbox: what is stored, what changes, and how faults leave the account."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from calendar_helpers import database_refusing
from contoso import PASSWORDS

from widget import settings
from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, Email, FolderSync, SyncRun, User
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox
from widget.secret_box import encrypt
from widget.sync.runner import run_sync

CUSTOMER = "lena.fischer@acme.example"
STRANGER = "noreply@newsletter.example"


def _deliver(sandbox, sender: str, subject: str, *, to: str = "alice@contoso.com", days_ago: float = 1) -> None:
    when = datetime.now(UTC) - timedelta(days=days_ago)
    props = {"Subject": subject, "ToRecipients": [Mailbox(to)], "Body": Body("HTML", f"<p>{subject}</p>")}
    message_defaults(props, Mailbox(sender, sender.split("@")[0].title()), when)
    deliver_message(sandbox.store, props, when)


@pytest.fixture
def alice(app):
    """Alice, authorized, and one CRM contact whose mail she receives."""
    with app.app_context():
        user = User(email="alice@contoso.com", exchange_username="alice@contoso.com",
                    exchange_password=encrypt(PASSWORDS["alice@contoso.com"]), status="authorized")
        record = CrmRecord(module="Contacts", crm_id="C-1", name="Lena Fischer")
        db.session.add_all([user, record])
        db.session.flush()
        db.session.add(CrmAddress(record_id=record.id, address=CUSTOMER))
        db.session.commit()
        return user.id


def _sync(app, user_id: int) -> SyncRun:
    with app.app_context():
        user = db.session.get(User, user_id)
        run = run_sync(user)
        db.session.refresh(run)
        db.session.expunge_all()
        return run


def _stored(app, user_id: int) -> dict[str, Email]:
    with app.app_context():
        emails = db.session.scalars(db.select(Email).where(Email.user_id == user_id)).all()
        db.session.expunge_all()
        return {e.subject: e for e in emails}


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_it_stores_only_mail_that_matches_a_crm_record_with_its_body(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Quote for 40 seats")
    _deliver(sandbox, STRANGER, "Weekly deals")
    run = _sync(app, alice)
    assert run.outcome == "ok" and run.created == 1
    stored = _stored(app, alice)
    assert list(stored) == ["Quote for 40 seats"]
    email = stored["Quote for 40 seats"]
    assert email.sender_address == CUSTOMER and email.body_html == "<p>Quote for 40 seats</p>"
    assert email.direction == "received" and email.to_recipients == [["alice@contoso.com", "alice@contoso.com"]]
    user = _user(app, alice)
    assert user.last_sync_outcome == "1 new, 0 changed, 0 removed"
    assert user.sync_due_at > datetime.now(UTC) + timedelta(minutes=14)


def test_it_keeps_sent_mail_and_skips_what_is_older_than_the_history_window(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Old news", days_ago=45)
    _deliver(sandbox, CUSTOMER, "Recent", days_ago=2)
    sandbox.store.add_item(sandbox.store.folder("alice@contoso.com", "sentitems"), "Message", message_defaults(
        {"Subject": "Our offer", "ToRecipients": [Mailbox(CUSTOMER)], "Body": Body("Text", "Offer attached"),
         "IsRead": True}, Mailbox("alice@contoso.com", "Alice"), datetime.now(UTC)))
    _sync(app, alice)
    stored = _stored(app, alice)
    assert set(stored) == {"Recent", "Our offer"}
    assert stored["Our offer"].direction == "sent" and stored["Our offer"].body_text == "Offer attached"


def test_it_applies_updates_read_flags_deletes_and_moves_on_the_next_sync(app, sandbox, alice):
    for subject in ("One", "Two", "Three", "Four"):
        _deliver(sandbox, CUSTOMER, subject)
    _sync(app, alice)
    store = sandbox.store
    by_subject = {i.props["Subject"]: i for i in store.folder("alice@contoso.com", "inbox").items.values()}
    by_subject["One"].props["Subject"] = "One (edited)"
    store.touch(by_subject["One"])
    by_subject["Two"].props["IsRead"] = True
    store.touch(by_subject["Two"], read_flag_only=True)
    store.remove_item(by_subject["Three"])
    store.move_item(by_subject["Four"], store.folder("alice@contoso.com", "junkemail"))
    _deliver(sandbox, CUSTOMER, "Five")

    run = _sync(app, alice)
    assert (run.created, run.updated, run.deleted) == (1, 2, 2)
    stored = _stored(app, alice)
    assert set(stored) == {"One (edited)", "Two", "Five"}
    assert stored["Two"].is_read is True
    again = _sync(app, alice)
    assert (again.created, again.updated, again.deleted) == (0, 0, 0)
    assert again.requests == 4  # one SyncFolderItems per folder (Inbox, Sent Items, Calendar, Tasks) when unchanged


def test_it_recovers_from_an_invalid_sync_state_without_losing_or_duplicating(app, sandbox, alice):
    for subject in ("A", "B", "C"):
        _deliver(sandbox, CUSTOMER, subject)
    _sync(app, alice)
    before = {s: e.id for s, e in _stored(app, alice).items()}
    inbox = sandbox.store.folder("alice@contoso.com", "inbox")
    sandbox.store.remove_item(next(i for i in inbox.items.values() if i.props["Subject"] == "C"))
    sandbox.add_fault("invalid_sync_state", operation="SyncFolderItems", mailbox="alice@contoso.com")
    run = _sync(app, alice)
    assert run.outcome == "ok"
    after = _stored(app, alice)
    assert set(after) == {"A", "B"} and {s: e.id for s, e in after.items()} == {"A": before["A"], "B": before["B"]}
    with app.app_context():
        state = db.session.scalar(db.select(FolderSync).where(FolderSync.folder == "inbox"))
        assert state.pass_number == 2 and state.pass_complete


def test_it_marks_the_account_needs_password_after_one_refused_attempt(app, sandbox, alice):
    sandbox.store.set_password("alice@contoso.com", "Changed-elsewhere-1")
    run = _sync(app, alice)
    assert run.outcome == "needs_password" and "did not accept" in run.error
    user = _user(app, alice)
    assert user.status == "needs_password" and user.sync_due_at is None
    assert sandbox.store.users["alice@contoso.com"].failed_logins == 1


@pytest.mark.parametrize(
    ("kind", "params", "outcome", "due_after", "due_before"),
    [
        ("server_busy", {"back_off_ms": 90_000}, "throttled", 85, 95),
        ("http_503", {"retry_after": 120}, "throttled", 115, 125),
        ("mailbox_move", {}, "mailbox_moving", 295, 305),
        ("http_500", {}, "error", 55, 65),
        ("drop", {}, "error", 55, 65),
    ],
)
def test_it_reschedules_after_a_fault_without_sleeping(app, sandbox, alice, kind, params, outcome, due_after,
                                                        due_before):
    _deliver(sandbox, CUSTOMER, "Hello")
    sandbox.add_fault(kind, operation="SyncFolderItems", mailbox="alice@contoso.com", **params)
    started = datetime.now(UTC)
    run = _sync(app, alice)
    assert run.outcome == outcome and (datetime.now(UTC) - started).total_seconds() < 10
    due = (_user(app, alice).sync_due_at - started).total_seconds()
    assert due_after <= due <= due_before
    assert _stored(app, alice) == {}
    assert _sync(app, alice).outcome == "ok" and list(_stored(app, alice)) == ["Hello"]


def test_it_reschedules_when_the_database_refuses_a_page(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Hello")
    started = datetime.now(UTC).replace(microsecond=0)
    with app.app_context():
        user = db.session.get(User, alice)
        with database_refusing("emails"):
            run = run_sync(user, now=started)  # returns: the failed page is rolled back before anything else
        assert run.outcome == "error" and run.finished_at is not None
        assert "database could not store" in run.error  # not blamed on Exchange
    assert _user(app, alice).sync_due_at == started + timedelta(seconds=60)
    assert _stored(app, alice) == {}
    assert _sync(app, alice).outcome == "ok" and list(_stored(app, alice)) == ["Hello"]


def test_it_keeps_email_sync_off_when_another_integration_owns_email(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Hello")
    with app.test_request_context():
        # The calendar and tasks off too, so that nothing syncs (test_calendar_sync: they sync while email is off).
        settings.save({"other_email_integration": True, "sync_calendar": "off", "sync_tasks": "off"})
    run = _sync(app, alice)
    assert run.outcome == "off" and "another email integration" in _user(app, alice).last_sync_outcome
    assert _stored(app, alice) == {} and sandbox.stats.operations["SyncFolderItems"] == 0


def test_it_syncs_one_account_from_the_command_line(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "From the command line")
    result = app.test_cli_runner().invoke(args=["sync", "Alice@Contoso.com"])
    assert result.exit_code == 0, result.output
    assert "inbox: 1 changes so far" in result.output
    assert "alice@contoso.com: ok — 1 new, 0 changed, 0 removed" in result.output
    assert list(_stored(app, alice)) == ["From the command line"]
    unknown = app.test_cli_runner().invoke(args=["sync", "nobody@contoso.com"])
    assert unknown.exit_code != 0 and "must authorize in the widget first" in unknown.output


def test_it_asks_exchange_one_sync_page_per_folder_when_nothing_changed(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Already synced")
    with app.test_request_context():
        settings.save({"sync_calendar": "off", "sync_tasks": "off"})  # the mail folders alone
    assert _sync(app, alice).created == 1
    before = dict(sandbox.stats.operations)
    run = _sync(app, alice)
    asked = {name: count - before.get(name, 0) for name, count in sandbox.stats.operations.items()
             if count != before.get(name, 0)}
    assert run.outcome == "ok" and run.created == run.updated == run.deleted == 0
    assert asked == {"SyncFolderItems": 2}  # Inbox and Sent Items, no GetFolder before them


def test_it_fetches_bodies_of_stored_mail_in_one_batch_without_looking_folders_up(app, sandbox, alice):
    for number in range(3):
        _deliver(sandbox, CUSTOMER, f"Quote {number}")
    _deliver(sandbox, STRANGER, "Weekly deals")
    with app.test_request_context():
        settings.save({"sync_calendar": "off", "sync_tasks": "off"})
    run = _sync(app, alice)
    assert run.created == 3
    assert {e.body_html for e in _stored(app, alice).values()} == {f"<p>Quote {n}</p>" for n in range(3)}
    assert sandbox.stats.operations["GetItem"] == 1 and sandbox.stats.operations["GetFolder"] == 0


def test_it_stores_mail_whose_names_and_ids_are_longer_than_their_columns(app, sandbox, alice):
    # Mail from outside may carry any length; one such message must not fail its page on every run.
    when = datetime.now(UTC) - timedelta(hours=1)
    props = {"Subject": "Long headers", "ToRecipients": [Mailbox("alice@contoso.com")], "Body": Body("Text", "Hi"),
             "InternetMessageId": "<" + "m" * 700 + "@acme.example>"}
    deliver_message(sandbox.store, message_defaults(props, Mailbox(CUSTOMER, "N" * 450), when), when)
    run = _sync(app, alice)
    assert run.outcome == "ok" and run.created == 1
    email = _stored(app, alice)["Long headers"]
    assert email.sender_name == "N" * 300 and email.internet_message_id.startswith("<mmm")
    assert len(email.internet_message_id) == 500 and email.sender_address == CUSTOMER


def test_it_stops_a_pass_whose_sync_state_exchange_declares_invalid_again_and_again(app, sandbox, alice):
    _deliver(sandbox, CUSTOMER, "Kept")
    sandbox.add_fault("invalid_sync_state", operation="SyncFolderItems", mailbox="alice@contoso.com", times=500)
    run = _sync(app, alice)
    assert run.outcome == "error" and "invalid again and again" in run.error
    assert run.requests <= 4  # the first page and two full passes started over, then the bound
    assert _user(app, alice).sync_due_at is not None  # it tries again later, after a back-off


def test_it_bounds_the_pages_of_one_run_and_goes_on_from_there_next_time(app, sandbox, alice):
    bounded = app
    bounded.config["WIDGET_SYNC_MAX_PAGES"] = 2
    with bounded.test_request_context():
        settings.save({"store_unmatched_email": True})
    for n in range(1100):  # three pages of 512
        _deliver(sandbox, STRANGER, f"Deal {n}", days_ago=0.5)
    first = _sync(bounded, alice)
    assert first.outcome == "error" and "without saying the folder is up to date" in first.error
    assert len(_stored(bounded, alice)) == 1024  # what the two pages brought is kept
    second = _sync(bounded, alice)
    assert second.outcome == "ok"
    stored = _stored(bounded, alice)
    assert len(stored) == 1100 and {f"Deal {n}" for n in range(1100)} == set(stored)


def test_it_keeps_what_outlook_marks_private_or_confidential_and_learns_it_on_a_full_pass(app, sandbox, alice):
    for subject, sensitivity in (("Plain", "Normal"), ("Salary", "Private"), ("Merger", "Confidential"),
                                 ("Personal", "Personal")):
        when = datetime.now(UTC) - timedelta(days=1)
        props = {"Subject": subject, "ToRecipients": [Mailbox("alice@contoso.com")], "Body": Body("Text", subject),
                 "Sensitivity": sensitivity}
        message_defaults(props, Mailbox(CUSTOMER, "Lena"), when)
        deliver_message(sandbox.store, props, when)
    assert _sync(app, alice).outcome == "ok"
    assert {s: e.is_private for s, e in _stored(app, alice).items()} == {
        "Plain": False, "Salary": True, "Merger": True, "Personal": False}
    # Rows stored before the widget kept sensitivity learn it when a full pass sees them unchanged.
    with app.app_context():
        db.session.execute(db.update(Email).values(is_private=False))
        db.session.execute(db.update(FolderSync).values(sync_state=None))
        db.session.commit()
    assert _sync(app, alice).outcome == "ok"
    assert {s for s, e in _stored(app, alice).items() if e.is_private} == {"Salary", "Merger"}
