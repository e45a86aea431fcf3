"""The fault storm: every fault the Exchange sandbox can script, striking the syncs of ten accounts at once.

Ten mailboxes of a hundred to six hundred messages (three of them two SyncFolderItems pages long) are synced by the
real Dispatcher and its pool, on an explicit clock, so that nothing sleeps on a back-off:
1. the first syncs, with faults striking in their middle (the Nth call of an operation, through `after`);
2. sixteen minutes later, the mail having changed, the next syncs under a second storm, mail arriving between ticks;
3. sixteen minutes later again, faults cleared and the mail changed once more, one sync of every account.
After each wave every run ended as its fault says, and the account is due again when the rules say. At the end
every account holds exactly what its mailbox holds (Inbox, Sent Items, and the Calendar and Tasks, which the same
runs sync), nothing lost, nothing twice; the one whose password changed needs a password after one refused
attempt, and was never tried again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from widget import settings
from widget.exchange.ews.mailbox import BODY_BATCH
from widget.extensions import db
from widget.models import CalendarItem, Email, FolderSync, SyncRun, Task, User, UserStatus
from widget.sandbox import Sandbox, Store
from widget.sandbox.delivery import calendar_defaults, deliver_message, message_defaults
from widget.sandbox.faults import FAULT_KINDS
from widget.sandbox.items import Body, Mailbox
from widget.sandbox.seed import seed_messages
from widget.secret_box import encrypt
from widget.sync.dispatch import Dispatcher

ACCOUNTS = 10
LONG_INBOXES = {0: 600, 1: 600, 5: 600}  # two SyncFolderItems pages (512 and 88); the others fit in one
INBOX = 120
SENT = 20
INTERVAL = timedelta(minutes=15)  # the default sync interval
WAVE_TIMEOUT = 120  # seconds a wave may take before the test gives up on a hung sync


def _email(account: int) -> str:
    """The address of the storm's account number `account`."""
    return f"storm{account}@contoso.com"


def _password(account: int) -> str:
    return f"Storm-pw-{account}"


@dataclass(frozen=True)
class Plan:
    """What strikes one account in one wave, and how its run must end: outcome, next due time, failures in a row,
    and (when the wave's mail is known) how many emails the account has stored by then."""

    faults: tuple[dict[str, Any], ...]
    outcome: str
    due_in: timedelta | None
    failures: int = 0
    emails: int | None = None


def _fault(kind: str, operation: str, after: int = 0, **params: Any) -> dict[str, Any]:  # noqa: ANN401
    """A fault as the sandbox takes it, striking the (after+1)th call of `operation` (the mailbox is added later)."""
    return {"kind": kind, "operation": operation, "after": after, **params}


SECOND, MINUTE = timedelta(seconds=1), timedelta(minutes=1)
# Call arithmetic: a run reads the Inbox, Sent Items, Calendar and Tasks in that order with SyncFolderItems, a
# long inbox in two pages (512 and 88 messages); after a mail folder's pages, one GetItem fetches the bodies of
# its newest mail. So with a short inbox SyncFolderItems after=1 strikes Sent Items, after=2 the Calendar and
# after=3 the Tasks; with a long one after=1 strikes the Inbox's second page. GetItem after=0 strikes the Inbox's
# bodies (its pages stored) and after=1 those of Sent Items.
SHORT, LONG = INBOX + SENT, LONG_INBOXES[0] + SENT  # what a whole mailbox brings
FIRST_WAVE = {  # each first sync stops where its fault strikes, with the pages before it stored
    0: Plan((_fault("server_busy", "SyncFolderItems", 1, back_off_ms=120_000),), "throttled", 120 * SECOND,
            emails=512),
    1: Plan((_fault("http_503", "GetItem", 0, retry_after=90),), "throttled", 90 * SECOND,
            emails=LONG_INBOXES[1]),
    2: Plan((_fault("http_500", "SyncFolderItems", 1),), "error", 60 * SECOND, 1, emails=INBOX),
    3: Plan((_fault("drop", "GetItem", 1),), "error", 60 * SECOND, 1, emails=SHORT),
    4: Plan((_fault("delay", "SyncFolderItems", 2, seconds=1.0), _fault("delay", "GetItem", 1, seconds=1.0)),
            "ok", INTERVAL, emails=SHORT),
    5: Plan((_fault("invalid_sync_state", "SyncFolderItems", 1),), "ok", INTERVAL, emails=LONG),  # a pass restarted
    6: Plan((_fault("mailbox_move", "GetItem", 0),), "mailbox_moving", 5 * MINUTE, emails=INBOX),
    7: Plan((_fault("password_change", "SyncFolderItems", 1, password="Storm-changed-7"),), "needs_password", None,
            emails=INBOX),
    8: Plan((_fault("server_busy", "GetFolder", 0, back_off_ms=30_000),), "throttled", 30 * SECOND,
            emails=SHORT),  # the Calendar's folder lookup, after the mail
    9: Plan((), "ok", INTERVAL, emails=SHORT),
}
SECOND_WAVE = {
    0: Plan((_fault("drop", "SyncFolderItems", 1),), "error", 60 * SECOND, 1),  # Sent Items, after the inbox
    1: Plan((_fault("mailbox_move", "SyncFolderItems", 1),), "mailbox_moving", 5 * MINUTE),
    2: Plan((_fault("http_500", "GetItem", 0),), "error", 120 * SECOND, 2),  # a second failure in a row
    3: Plan((_fault("server_busy", "SyncFolderItems", 0, back_off_ms=200_000),), "throttled", 200 * SECOND, 1),
    4: Plan((_fault("invalid_sync_state", "SyncFolderItems", 2),), "ok", INTERVAL),  # the Calendar's state
    5: Plan((_fault("invalid_sync_state", "SyncFolderItems", 0),), "ok", INTERVAL),  # a stored state refused
    6: Plan((_fault("http_503", "SyncFolderItems", 1, retry_after=240),), "throttled", 240 * SECOND),
    8: Plan((_fault("http_500", "GetItem", 0),), "error", 60 * SECOND, 1),
    9: Plan((_fault("drop", "SyncFolderItems", 3),), "error", 60 * SECOND, 1),  # the Tasks, after the rest
}
FINAL_WAVE = {account: Plan((), "ok", INTERVAL) for account in range(ACCOUNTS) if account != 7}
# Slow replies for whichever mailbox asks first, scripted after the targeted faults so as never to mask one.
ANYONE = (_fault("delay", "GetItem", 0, seconds=0.2, times=8, mailbox="*"),)


# -- the organisation ----------------------------------------------------------------------------------------------
def _add_sent(store: Store, owner: str, number: int, when: datetime) -> None:
    props = {"Subject": f"Proposal {number}", "ToRecipients": [Mailbox(f"buyer{number % 9}@customer.example")],
             "Body": Body("Text", f"Our proposal number {number}"), "IsRead": True}
    message_defaults(props, store.users[owner].mailbox, when)
    store.add_item(store.folder(owner, "sentitems"), "Message", props, when=when)


def _add_appointment(store: Store, owner: str, subject: str, start: datetime) -> None:
    props = {"Subject": subject, "Start": start, "End": start + timedelta(minutes=30), "Location": "Room 4",
             "LegacyFreeBusyStatus": "Busy"}
    calendar_defaults(props, store.users[owner])
    store.add_item(store.folder(owner, "calendar"), "CalendarItem", props)


def _add_task(store: Store, owner: str, subject: str, due: datetime) -> None:
    props = {"Subject": subject, "Status": "NotStarted", "PercentComplete": 0, "DueDate": due,
             "Importance": "Normal", "Sensitivity": "Normal", "ReminderIsSet": False}
    store.add_item(store.folder(owner, "tasks"), "Task", props)


def _deliver(store: Store, owner: str, subject: str) -> None:
    when = datetime.now(UTC)
    props = {"Subject": subject, "ToRecipients": [Mailbox(owner)], "Body": Body("HTML", f"<p>{subject}</p>")}
    message_defaults(props, Mailbox("lena.fischer@acme.example", "Lena Fischer"), when)
    deliver_message(store, props, when)


def _fill_mailboxes(sandbox: Sandbox, now: datetime) -> None:
    store = sandbox.store
    with store.lock:
        for account in range(ACCOUNTS):
            owner = _email(account)
            store.add_user(owner, _password(account), f"Storm {account}")
            seed_messages(store, owner, LONG_INBOXES.get(account, INBOX), now, days=60)
            for number in range(SENT):
                _add_sent(store, owner, number, now - timedelta(days=30 - number))
            for day in range(1, 4):
                _add_appointment(store, owner, f"Review {day}", now + timedelta(days=day, hours=2))
                _add_task(store, owner, f"Call back {day}", now + timedelta(days=day))


def _change_mail(store: Store, account: int, round_number: int) -> None:
    """What users and senders do between two syncs: new mail, deletes, read flags, an edit, a move; the same in
    Sent Items, the calendar and the tasks."""
    owner = _email(account)
    with store.lock:
        inbox = sorted(store.folder(owner, "inbox").items.values(), key=lambda item: (item.created, item.id))
        spread = [inbox[int(len(inbox) * share)] for share in (0.1, 0.3, 0.5, 0.7, 0.9, 0.98)]
        store.remove_item(spread[0])
        store.remove_item(spread[1])
        for item in spread[2:4]:
            item.props["IsRead"] = not item.props.get("IsRead", False)
            store.touch(item, read_flag_only=True)
        spread[4].props["Subject"] = f"{spread[4].props['Subject']} (edited {round_number})"
        store.touch(spread[4])
        store.move_item(spread[5], store.folder(owner, "junkemail"))
        for number in range(3):
            _deliver(store, owner, f"Round {round_number} news {number}")
        sent = sorted(store.folder(owner, "sentitems").items.values(), key=lambda item: (item.created, item.id))
        store.remove_item(sent[round_number])
        _add_sent(store, owner, 100 + round_number, datetime.now(UTC))
        for folder in ("calendar", "tasks"):
            store.remove_item(min(store.folder(owner, folder).items.values(), key=lambda item: item.created))
        _add_appointment(store, owner, f"Follow-up {round_number}", datetime.now(UTC) + timedelta(days=5))
        _add_task(store, owner, f"Send contract {round_number}", datetime.now(UTC) + timedelta(days=6))


def _add_accounts(app: Flask, due: datetime) -> dict[int, int]:
    with app.app_context():
        users = {account: User(email=_email(account), exchange_username=_email(account),
                               exchange_password=encrypt(_password(account)), status=UserStatus.AUTHORIZED,
                               sync_due_at=due) for account in range(ACCOUNTS)}
        db.session.add_all(users.values())
        with app.test_request_context():
            settings.save({"store_unmatched_email": True, "sync_history_days": 3650})
        db.session.commit()
        return {account: user.id for account, user in users.items()}


# -- what the sandbox holds and what the widget stored --------------------------------------------------------------
# The widget's table for each folder it keeps a sync state of; mail folders are told apart by Email.folder.
OTHER_FOLDERS: dict[str, Any] = {"calendar": CalendarItem, "tasks": Task}


def _in_exchange(store: Store, account: int, folder: str) -> dict[str, tuple]:
    """What one folder of the mailbox holds, by item id, in the shape of `_in_widget`."""
    with store.lock:
        items = store.folder(_email(account), folder).items.values()
        if folder in OTHER_FOLDERS:
            return {item.id: (item.props.get("Subject", ""),) for item in items}
        return {item.id: (item.props.get("Subject", ""), bool(item.props.get("IsRead")), True) for item in items}


def _in_widget(user_id: int, folder: str) -> tuple[list[str], dict[str, tuple]]:
    """The item ids stored for one folder (a list, so that a duplicate would show) and what each holds."""
    if folder in OTHER_FOLDERS:
        model = OTHER_FOLDERS[folder]
        query = db.select(model).where(model.user_id == user_id)
        if model is CalendarItem:
            query = query.where(CalendarItem.series_item_id.is_(None))  # masters and single items, as Exchange
        rows = db.session.scalars(query).all()
        return [row.item_id for row in rows], {row.item_id: (row.subject,) for row in rows}
    rows = db.session.scalars(db.select(Email).where(Email.user_id == user_id, Email.folder == folder)
                              .order_by(Email.received_at.desc(), Email.id.desc())).all()
    # Every message here has a body: the newest 100 of a folder must hold theirs, the others theirs or none yet
    # (fetched when opened), but never an emptied one.
    return [row.item_id for row in rows], {
        row.item_id: (row.subject, row.is_read, bool(row.body_html or row.body_text) or (
            not row.body_fetched and position >= BODY_BATCH)) for position, row in enumerate(rows)}


def _synced_folders(user_id: int) -> list[str]:
    """The folders the widget syncs for an account: those with a sync state, and any whose table has rows."""
    folders = set(db.session.scalars(db.select(FolderSync.folder).where(FolderSync.user_id == user_id)))
    for folder, model in OTHER_FOLDERS.items():
        if db.session.scalar(db.select(db.func.count()).select_from(model).where(model.user_id == user_id)):
            folders.add(folder)
    return sorted(folders)


# -- the dispatcher, on an explicit clock ---------------------------------------------------------------------------
def _wave(dispatcher: Dispatcher, now: datetime, between_ticks: Callable[[int], None] | None = None) -> dict[int, str]:
    """Tick at `now` until nothing is due and nothing runs; the outcome of each account's run, by user id."""
    futures: dict[int, Future] = {}
    deadline = time.monotonic() + WAVE_TIMEOUT
    ticks = 0
    while True:
        started = dispatcher.tick(now)
        ticks += 1
        for user_id in started:
            assert user_id not in futures, "an account synced twice in one wave: due before its back-off"
            futures[user_id] = dispatcher.running[user_id]
        running = [future for future in futures.values() if not future.done()]
        if not running and not started:
            return {user_id: future.result() for user_id, future in futures.items()}
        if between_ticks:
            between_ticks(ticks)
        wait(running, timeout=max(deadline - time.monotonic(), 0), return_when=FIRST_COMPLETED)
        assert time.monotonic() < deadline, f"a wave ran for more than {WAVE_TIMEOUT} s"


def _script(sandbox: Sandbox, plans: dict[int, Plan]) -> int:
    """Script a wave's faults; returns how many times they will strike."""
    faults = [{**fault, "mailbox": _email(account)} for account, plan in plans.items() for fault in plan.faults]
    for fault in [*faults, *ANYONE]:
        sandbox.add_fault(**fault)
    return len(faults) + sum(fault["times"] for fault in ANYONE)


def _check_wave(app: Flask, sandbox: Sandbox, ids: dict[int, int], now: datetime, plans: dict[int, Plan],
                outcomes: dict[int, str]) -> None:
    """Every planned account ran once and ended as planned: outcome, next due time, failures, claim released."""
    assert sandbox.faults.pending() == [], "a fault scripted for this wave never struck"
    assert {account: outcomes.get(ids[account]) for account in plans} == {
        account: plan.outcome for account, plan in plans.items()}
    assert set(outcomes) == {ids[account] for account in plans}, "an account synced that was not due"
    with app.app_context():
        for account, plan in plans.items():
            user = db.session.get(User, ids[account])
            run = db.session.scalar(db.select(SyncRun).where(SyncRun.user_id == user.id)
                                    .order_by(SyncRun.id.desc()).limit(1))
            state = (run.started_at, run.outcome, user.sync_due_at, user.sync_failures, user.sync_claimed_at)
            assert state == (now, plan.outcome, now + plan.due_in if plan.due_in else None, plan.failures, None), (
                f"account {account}: {run.error}")
            assert user.status == (UserStatus.NEEDS_PASSWORD if plan.outcome == "needs_password"
                                   else UserStatus.AUTHORIZED)
            if plan.emails is not None:
                stored = db.session.scalar(db.select(db.func.count()).where(Email.user_id == user.id))
                assert stored == plan.emails, f"account {account}: {stored} emails stored"
        db.session.rollback()


def test_it_ends_every_account_right_after_a_storm_of_every_fault(app, sandbox):
    start = datetime.now(UTC).replace(microsecond=0)
    _fill_mailboxes(sandbox, start)
    ids = _add_accounts(app, start - SECOND)
    stopped_inbox = set(_in_exchange(sandbox.store, 7, "inbox"))  # all the account whose password changes will get
    dispatcher = Dispatcher(app)
    try:
        scripted = _script(sandbox, FIRST_WAVE)
        _check_wave(app, sandbox, ids, start, FIRST_WAVE, _wave(dispatcher, start))

        for account in range(ACCOUNTS):
            _change_mail(sandbox.store, account, 1)
        second = start + 16 * MINUTE
        scripted += _script(sandbox, SECOND_WAVE)

        def mail_arrives(tick: int) -> None:
            _deliver(sandbox.store, _email(tick % ACCOUNTS), f"Arrived between ticks {tick}")

        _check_wave(app, sandbox, ids, second, SECOND_WAVE, _wave(dispatcher, second, mail_arrives))
        sandbox.faults.clear()

        for account in range(ACCOUNTS):
            _change_mail(sandbox.store, account, 2)
        final = second + 16 * MINUTE  # past every back-off, and past the interval of those that synced
        _check_wave(app, sandbox, ids, final, FINAL_WAVE, _wave(dispatcher, final))
    finally:
        dispatcher.shutdown()

    injected = sum(sandbox.faults.fired.values())
    print(f"\nfault storm: {injected} faults injected into {ACCOUNTS} accounts: "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(sandbox.faults.fired.items())))
    assert injected == scripted and set(sandbox.faults.fired) == set(FAULT_KINDS)

    compared = 0
    with app.app_context():
        for account in FINAL_WAVE:
            folders = _synced_folders(ids[account])
            assert {"inbox", "sentitems"} <= set(folders)
            for folder in folders:
                assert folder in ("inbox", "sentitems", *OTHER_FOLDERS), f"the storm cannot compare {folder} yet"
                stored_ids, stored = _in_widget(ids[account], folder)
                assert len(stored_ids) == len(set(stored_ids)), f"account {account}: duplicates in {folder}"
                assert stored == _in_exchange(sandbox.store, account, folder), f"account {account}: {folder}"
                compared += len(stored)
        # The account whose password changed keeps what it stored before, and was never tried again.
        stored_ids, stored = _in_widget(ids[7], "inbox")
        assert set(stored) == stopped_inbox and len(stored_ids) == len(stored)
        assert db.session.scalar(db.select(db.func.count()).select_from(SyncRun).where(SyncRun.user_id == ids[7])) == 1
        stopped = db.session.get(User, ids[7])
        assert (stopped.status, stopped.sync_due_at) == (UserStatus.NEEDS_PASSWORD, None)
    assert sandbox.store.users[_email(7)].failed_logins == 1
    print(f"fault storm: {compared} items compared with Exchange, none lost, none duplicated")

