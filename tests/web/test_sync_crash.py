"""Crash test of the email sync: `flask --app widget sync` killed with SIGKILL at random points, and restarted.

As in a deployment, the Exchange sandbox runs as its own process on a store file and the widget keeps file
SQLite in its instance folder. After every kill the database is compared with the sandbox's contents: no
duplicate, and each folder's stored sync state never ahead of the stored items. After the last kill the sync
runs to its end and the stored set must equal the sandbox's, item by item. Between kills, and sometimes during a
run, the mailbox changes (new mail, deletes, moves out of the synced folders, read flags), so that incremental
pages are killed too.

The schedule comes from a seeded random.Random: the seed is printed, and WIDGET_TEST_CRASH_SEED=N replays it
(where a kill lands within a run still depends on the machine's speed).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from contoso import PASSWORDS, make_store
from ews_schema import schema_dir
from exchangelib import DELEGATE, NTLM, Account, Configuration, Credentials, FailFast
from exchangelib import Mailbox as EwsMailbox
from exchangelib import Message as EwsMessage
from exchangelib.items import SEND_AND_SAVE_COPY, SEND_ONLY
from exchangelib.protocol import close_connections
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import func

from widget import MIGRATIONS, create_app, settings
from widget.exchange.ews.mailbox import BODY_BATCH
from widget.extensions import db
from widget.models import Email, FolderSync, User
from widget.sandbox import Store
from widget.sandbox.delivery import message_defaults
from widget.sandbox.items import Body, Item, Mailbox
from widget.sandbox.schema import schema_available
from widget.sandbox.seed import seed_messages
from widget.secret_box import encrypt
from widget.sync.dispatch import CLAIM_TIMEOUT

ALICE, BOB = "alice@contoso.com", "bob@contoso.com"
FOLDERS = ("inbox", "sentitems")
INBOX_MESSAGES, SENT_MESSAGES = 1100, 1050  # three 512-change pages per folder
KILLS = 20
START_UP_KILLS = 0.15  # share of kills aimed at a run's start-up, before its first request
PAGE_KILLS = 0.75  # share of the other kills aimed at a SyncFolderItems request (a page), not at any request
JITTER = 0.1  # seconds: a kill lands this long at most after the request it aims at (a page takes longer)
PAGE_JITTER = 0.03  # after an aimed-at page's late answer: about the time a small page takes to be stored
STARTUP_TIMEOUT = 60
RUN_TIMEOUT = 120


def _seed_sent_items(store: Store, count: int) -> None:
    """Mail Alice sent to customers over the last 20 days, as Exchange keeps it in Sent Items."""
    sent = store.folder(ALICE, "sentitems")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    for number in range(count):
        when = start + timedelta(minutes=25 * number)
        props = {"Subject": f"Proposal {number}", "ToRecipients": [Mailbox(f"buyer{number % 40}@customer.example")],
                 "Body": Body("HTML", f"<p>Proposal {number}</p>"), "IsRead": True}
        store.add_item(sent, "Message", message_defaults(props, Mailbox(ALICE, "Alice Adams"), when), when=when)


def _read_banner(log: Path, process: subprocess.Popen) -> dict[str, str]:
    """The sandbox's "EWS URL" and "Control API" banner lines, once it serves."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        lines = log.read_text().splitlines()
        if "Press Ctrl-C to stop." in lines:
            return dict(line.split(": ", 1) for line in lines if line.startswith(("EWS URL: ", "Control API: ")))
        time.sleep(0.05)
    pytest.fail(f"the sandbox did not start:\n{log.read_text()}")


def _mailbox_account(url: str, email: str) -> Account:
    """An exchangelib account on the sandbox process, as the test's own mail client."""
    config = Configuration(service_endpoint=url, credentials=Credentials(email, PASSWORDS[email]), auth_type=NTLM,
                           retry_policy=FailFast())
    return Account(email, config=config, autodiscover=False, access_type=DELEGATE)


@dataclass
class KilledRun:
    """Where one kill landed: requests the run made before it, and the pages it had committed."""

    delay: float
    sync_requests: int
    body_requests: int
    pages_committed: int
    aim: str = ""  # what the kill was aimed at, for the printed report

    @property
    def phase(self) -> str:
        """start-up (no page asked for yet), in a page (asked for, not committed: reading, bodies or the commit)
        or between pages."""
        if self.sync_requests == 0:
            return "start-up"
        return "in a page" if self.sync_requests > self.pages_committed else "between pages"


@dataclass
class CrashRig:
    """The sandbox process on its store file, the widget's instance folder, and what the test changes."""

    root: Path
    store_file: Path
    sandbox: subprocess.Popen
    control: str
    app: Flask
    sync_env: dict[str, str]
    alice: Account
    bob: Account
    outputs: list[str] = field(default_factory=list)
    running: subprocess.Popen | None = None

    def snapshot(self) -> Store:
        """The sandbox's contents as its store file holds them (written atomically after every change)."""
        return Store.load(self.store_file)

    def stats(self) -> dict[str, Any]:
        """The sandbox's request counts (control API)."""
        with urllib.request.urlopen(self.control + "stats", timeout=30) as reply:
            return json.loads(reply.read())

    def requests_of_alice(self) -> tuple[int, int]:
        """(SyncFolderItems, GetItem) requests the sandbox has received so far for Alice's mailbox (answered or
        still in flight)."""
        counts = self.stats()["mailbox_requests_received"].get(ALICE, {})
        return counts.get("SyncFolderItems", 0), counts.get("GetItem", 0)

    def script_fault(self, fault: dict[str, Any] | None) -> None:
        """Script a fault in the sandbox (control API); None removes every scripted fault."""
        request = urllib.request.Request(self.control + "faults", method="DELETE" if fault is None else "POST",
                                         data=None if fault is None else json.dumps(fault).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30):
            pass

    def start_sync(self) -> subprocess.Popen:
        """`flask --app widget sync alice@contoso.com` as its own process, output to a file."""
        # A killed run leaves its claim on the account, which the dispatcher gives up on only after CLAIM_TIMEOUT:
        # aged by that much here instead of waited for.
        with self.app.app_context():
            db.session.execute(db.update(User).where(User.sync_claimed_at.is_not(None))
                               .values(sync_claimed_at=datetime.now(UTC) - CLAIM_TIMEOUT - timedelta(minutes=1)))
            db.session.commit()
            db.session.remove()
        log = (self.root / f"sync-{len(self.outputs)}.log").open("w")
        self.outputs.append(log.name)
        self.running = subprocess.Popen([sys.executable, "-m", "flask", "--app", "widget", "sync", ALICE],
                                        env=self.sync_env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self.running

    def output(self, number: int = -1) -> str:
        """What a sync process printed."""
        return Path(self.outputs[number]).read_text()

    def change_mailbox(self, rng: random.Random, arriving: int) -> str:
        """New, deleted, moved and read mail in Alice's Inbox and Sent Items, through exchangelib."""
        store = self.snapshot()
        inbox = list(store.folder(ALICE, "inbox").items.values())
        sent = list(store.folder(ALICE, "sentitems").items.values())
        stamp = f"{time.monotonic_ns()}"
        if arriving:
            self.bob.bulk_create(folder=None, message_disposition=SEND_ONLY, items=[
                EwsMessage(account=self.bob, subject=f"Update {stamp}-{n}", body=f"News {n}",
                           to_recipients=[EwsMailbox(email_address=ALICE)]) for n in range(arriving)])
        sending = rng.randint(0, 15)
        if sending:
            self.alice.bulk_create(folder=self.alice.sent, message_disposition=SEND_AND_SAVE_COPY, items=[
                EwsMessage(account=self.alice, subject=f"Follow-up {stamp}-{n}", body=f"Follow-up {n}",
                           to_recipients=[EwsMailbox(email_address=f"buyer{n}@customer.example")])
                for n in range(sending)])
        chosen = rng.sample(inbox + sent, rng.randint(0, 20))
        deleting, moving = chosen[: len(chosen) // 2], chosen[len(chosen) // 2:]
        if deleting:
            self.alice.bulk_delete([(item.id, item.change_key) for item in deleting])
        for source, destination in ((inbox[0].folder_id, self.alice.junk), (sent[0].folder_id, self.alice.trash)):
            ids = [(item.id, item.change_key) for item in moving if item.folder_id == source]
            if ids:
                self.alice.bulk_move(ids, to_folder=destination)
        gone = {item.id for item in chosen}
        reading = [item for item in rng.sample(inbox, rng.randint(0, 40)) if item.id not in gone]
        if reading:
            self.alice.bulk_update([(EwsMessage(account=self.alice, id=item.id, changekey=item.change_key,
                                                is_read=not item.props.get("IsRead")), ["is_read"])
                                    for item in reading])
        return (f"+{arriving} received, +{sending} sent, -{len(deleting)} deleted, {len(moving)} moved out, "
                f"{len(reading)} read flags")

    def wait_for_requests(self, process: subprocess.Popen, before: int, count: int, *,
                          pages_only: bool = False) -> bool:
        """Wait until a run has made `count` SyncFolderItems and GetItem requests (or SyncFolderItems requests
        alone); False if it ended first."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while (self.requests_of_alice()[0] if pages_only else sum(self.requests_of_alice())) - before < count:
            if process.poll() is not None:
                return False
            if time.monotonic() > deadline:
                pytest.fail(f"the sync made {count} requests in no less than {RUN_TIMEOUT} s:\n{self.output()}")
            time.sleep(0.03)
        return True

    def run_and_kill(self, rng: random.Random, ahead: tuple[int, int]) -> KilledRun | None:
        """Start a sync and SIGKILL it at a random point of the work ahead; None if it finished first.

        The point is drawn among the run's requests, then a random delay after it, so that kills spread over the
        whole run whatever the machine's speed: mostly among its pages (whose atomicity is the point), otherwise
        among all its requests, the GetItem of each folder's newest bodies included. An aimed-at page is answered
        slowly, as a busy Exchange answers (a scripted delay), and the kill comes while it is awaited or within
        PAGE_JITTER of its answer, while it is stored: a page of a fast sync is stored in less time than this test
        takes to notice that it was asked for.
        """
        pages_ahead, bodies_ahead = ahead
        sync_before, bodies_before = self.requests_of_alice()
        pages_only = rng.random() < PAGE_KILLS
        target = rng.randint(1, pages_ahead if pages_only else pages_ahead + bodies_ahead)
        slow = rng.uniform(0.1, 0.4) if pages_only else 0.0
        if pages_only:
            self.script_fault({"kind": "delay", "operation": "SyncFolderItems", "mailbox": ALICE,
                               "after": target - 1, "seconds": slow})
        process = self.start_sync()
        started = time.monotonic()
        aim = f"page {target}, answered {slow:.2f} s late" if pages_only else f"request {target}"
        if rng.random() < START_UP_KILLS:
            aim = "start-up"
            time.sleep(rng.uniform(0.2, 1.5))
        else:
            before = sync_before if pages_only else sync_before + bodies_before
            if target > 1 and rng.random() < 0.25:
                # The mailbox changes while the run is under way, after a request before the aimed-at one (between
                # a page and its folder's bodies, for instance).
                if not self.wait_for_requests(process, before, rng.randint(1, target - 1), pages_only=pages_only):
                    return None
                print("    during the run:", self.change_mailbox(rng, rng.randint(0, 25)))
            if not self.wait_for_requests(process, before, target, pages_only=pages_only):
                return None
            time.sleep(rng.uniform(0, slow + (PAGE_JITTER if pages_only else JITTER)))
        if process.poll() is not None:
            self.script_fault(None)
            return None
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.script_fault(None)
        sync_after, bodies_after = self.requests_of_alice()
        return KilledRun(delay=time.monotonic() - started, sync_requests=sync_after - sync_before,
                         body_requests=bodies_after - bodies_before,
                         pages_committed=self.output().count("changes so far"), aim=aim)


def _requests_ahead(store: Store, positions: dict[str, int]) -> tuple[int, int]:
    """About how many SyncFolderItems and GetItem requests a sync from the stored positions makes."""
    pages = bodies = 0
    for name in FOLDERS:
        ahead = [entry for _, _, entry in store.folder(ALICE, name).changes_since(positions[name])]
        pages += 1 + len(ahead) // 512
        bodies += any(not e.deleted and max(e.created, e.content) > positions[name] for e in ahead)  # newest's
    return pages, bodies


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashRig]:
    """The sandbox process with Alice's full mailbox, and a migrated widget instance where Alice has authorized."""
    for name in [key for key in os.environ if key.startswith("WIDGET_") and not key.startswith("WIDGET_TEST_")]:
        monkeypatch.delenv(name)
    store = make_store()
    seed_messages(store, ALICE, INBOX_MESSAGES, days=20)
    _seed_sent_items(store, SENT_MESSAGES)
    store_file = tmp_path / "exchange.store"
    store.save(store_file)
    # The sandbox process validates its SOAP traffic against the EWS schema, as the in-process sandboxes do.
    schema = ["--schema", str(schema_dir())] if schema_available(schema_dir()) else []
    sandbox_log = tmp_path / "sandbox.log"
    with sandbox_log.open("w") as log:
        sandbox = subprocess.Popen([sys.executable, "-m", "flask", "--app", "widget", "sandbox", "--store",
                                    str(store_file), *schema], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1",
                                        "WIDGET_INSTANCE_PATH": str(tmp_path / "sandbox-instance")})
    app: Flask | None = None
    rig: CrashRig | None = None
    try:
        banner = _read_banner(sandbox_log, sandbox)
        instance = tmp_path / "instance"
        app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "WIDGET_AUTO_MIGRATE": False})
        with app.app_context():
            upgrade(directory=str(MIGRATIONS))
            db.session.add(User(email=ALICE, exchange_username=ALICE, exchange_password=encrypt(PASSWORDS[ALICE]),
                                status="authorized"))
            db.session.commit()
            # Every message is kept, so that the expected set is the folders' contents; email is what is tested.
            settings.save({"ews_url": banner["EWS URL"], "ews_auth": "NTLM", "store_unmatched_email": True,
                           "sync_calendar": "off", "sync_tasks": "off"})
            db.session.remove()
        sync_env = {**os.environ, "WIDGET_INSTANCE_PATH": str(instance), "PYTHONUNBUFFERED": "1"}
        rig = CrashRig(tmp_path, store_file, sandbox, banner["Control API"], app, sync_env,
                       _mailbox_account(banner["EWS URL"], ALICE), _mailbox_account(banner["EWS URL"], BOB))
        yield rig
        if schema:
            checked = rig.stats()["schema"]
            assert checked["invalid_count"] == 0, f"SOAP documents failed EWS schema validation: {checked['invalid']}"
    finally:
        if rig is not None and rig.running is not None and rig.running.poll() is None:
            rig.running.kill()
            rig.running.wait()
        close_connections()
        if app is not None:
            with app.app_context():
                db.engine.dispose()
        sandbox.terminate()
        sandbox.wait(30)


# A message as the user sees it, read flag last: the test's changes of the mailbox never edit the rest.
def _in_sandbox(item: Item) -> tuple:
    props = item.props
    return (props.get("Subject") or "", props["Sender"].email, [box.email for box in props.get("ToRecipients") or []],
            props.get("InternetMessageId"), props["Body"].text, bool(props.get("IsRead")))


def _in_database(email: Email) -> tuple:
    body = email.body_html if email.body_html is not None else email.body_text
    return (email.subject, email.sender_address, [address for address, _ in email.to_recipients],
            email.internet_message_id, body if email.body_fetched else None, email.is_read)


def _in_sandbox_as_kept(item: Item, email: Email) -> tuple:
    """The sandbox's message as the widget should keep it: its body only once fetched (else when it is opened)."""
    expected = _in_sandbox(item)
    return expected if email.body_fetched else (*expected[:4], None, expected[5])


def _stored(app: Flask) -> tuple[dict[str, Email], dict[str, str | None]]:
    """Alice's stored emails by item id, after proving there is no duplicate; each folder's stored sync state."""
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.email == ALICE))
        twice = db.session.execute(db.select(Email.item_id).where(Email.user_id == user_id)
                                   .group_by(Email.item_id).having(func.count() > 1)).all()
        assert twice == [], f"item ids stored twice: {twice}"
        same_message = db.session.execute(
            db.select(Email.internet_message_id).where(Email.user_id == user_id, Email.internet_message_id.is_not(None))
            .group_by(Email.internet_message_id).having(func.count() > 1)).all()
        assert same_message == [], f"Internet Message-IDs stored twice: {same_message}"
        emails = {e.item_id: e for e in db.session.scalars(db.select(Email).where(Email.user_id == user_id))}
        states = {state.folder: state.sync_state for state in db.session.scalars(
            db.select(FolderSync).where(FolderSync.user_id == user_id))}
        db.session.expunge_all()
        db.session.remove()
    return emails, states


def _assert_state_not_ahead(app: Flask, store: Store, when: str) -> dict[str, int]:
    """Each stored email is a message of its folder as the sandbox has it; every change of the folder's change log
    up to the stored sync state's point is in the database, and none after it. Returns the points reached.

    A message changed after that point may still be stored as it was: the next page brings the change.
    """
    emails, states = _stored(app)
    positions = {}
    for name in FOLDERS:
        folder = store.folder(ALICE, name)
        # The state is the sandbox's own signed token for a point in the folder's change log (Store.sync_state).
        position = store.read_sync_state(folder, states[name]) if states.get(name) else 0
        positions[name] = position
        for email in (e for e in emails.values() if e.folder == name):
            assert email.item_id in folder.log, f"{when}, {name}: an email that the sandbox never had there"
            if email.item_id in folder.items:
                assert _in_database(email)[:-1] == _in_sandbox_as_kept(folder.items[email.item_id], email)[:-1], when
        for item_id, entry in folder.log.items():
            stored = emails.get(item_id)
            if entry.created > position:
                assert stored is None, f"{when}, {name}: a message created after the stored state is stored"
            elif entry.deleted and entry.last <= position:
                assert stored is None, f"{when}, {name}: a message removed before the stored state is still stored"
            elif entry.last <= position:  # unchanged since the state's point: stored, read flag included
                assert stored is not None, f"{when}, {name}: a message created before the stored state is missing"
                assert _in_database(stored) == _in_sandbox_as_kept(folder.items[item_id], stored), when
    return positions


def _expected(store: Store, emails: dict[str, Email]) -> dict[str, tuple]:
    return {item.id: (name, _in_sandbox_as_kept(item, emails[item.id]) if item.id in emails else _in_sandbox(item))
            for name in FOLDERS for item in store.folder(ALICE, name).items.values()}


def _newest_without_body(emails: dict[str, Email], folder: str) -> list[str]:
    """Subjects of a folder's newest emails (as many as one GetItem fetches) whose body the sync did not fetch."""
    newest = sorted((e for e in emails.values() if e.folder == folder), key=lambda e: (e.received_at, e.id),
                    reverse=True)[:BODY_BATCH]
    return [e.subject for e in newest if not e.body_fetched]


def test_it_loses_and_duplicates_nothing_when_the_sync_is_killed_at_random_points(rig: CrashRig) -> None:
    seed = int(os.environ.get("WIDGET_TEST_CRASH_SEED") or random.randrange(2**32))
    print(f"crash test seed {seed} (WIDGET_TEST_CRASH_SEED={seed} replays it)")
    rng = random.Random(seed)
    kills: list[KilledRun] = []
    finished_early = 0
    positions = dict.fromkeys(FOLDERS, 0)
    while len(kills) < KILLS:
        store = rig.snapshot()
        if positions == {name: store.folder(ALICE, name).seq for name in FOLDERS}:
            # Up to date: new work for the next run, now and then more than a page of it.
            print("    caught up:", rig.change_mailbox(rng, 550 if rng.random() < 0.15 else rng.randint(20, 250)))
        elif rng.random() < 0.3:
            print("    between runs:", rig.change_mailbox(rng, rng.randint(0, 25)))
        killed = rig.run_and_kill(rng, _requests_ahead(rig.snapshot(), positions))
        if killed is None:
            finished_early += 1
            assert rig.running.wait() == 0, rig.output()
            assert finished_early <= KILLS, "the sync keeps finishing before its kill"
        else:
            kills.append(killed)
        positions = _assert_state_not_ahead(rig.app, rig.snapshot(), f"after run {len(rig.outputs)} (seed {seed})")
        if killed is not None:
            print(f"kill {len(kills):2} at {killed.delay:4.1f} s aimed at {killed.aim}, {killed.phase}: "
                  f"{killed.sync_requests} "
                  f"SyncFolderItems, {killed.body_requests} GetItem, {killed.pages_committed} pages committed; "
                  f"change log positions {positions}")

    final = rig.start_sync()
    assert final.wait(RUN_TIMEOUT) == 0, rig.output()
    store = rig.snapshot()
    positions = _assert_state_not_ahead(rig.app, store, f"after the last run (seed {seed})")
    assert positions == {name: store.folder(ALICE, name).seq for name in FOLDERS}
    emails, _ = _stored(rig.app)
    stored = {item_id: (email.folder, _in_database(email)) for item_id, email in emails.items()}
    expected = _expected(store, emails)
    assert stored.keys() == expected.keys(), (f"missing {len(expected.keys() - stored.keys())}, "
                                              f"extra {len(stored.keys() - expected.keys())} (seed {seed})")
    assert stored == expected
    assert {name: _newest_without_body(emails, name) for name in FOLDERS} == {name: [] for name in FOLDERS}
    assert all(PASSWORDS[ALICE] not in rig.output(n) for n in range(len(rig.outputs)))
    phases = [kill.phase for kill in kills]
    print(f"{len(expected)} messages stored; kills by phase: { {p: phases.count(p) for p in set(phases)} }, "
          f"{finished_early} runs finished before their kill")
    # The point of the exercise: kills while a page is read, its bodies fetched or it is committed.
    assert phases.count("in a page") >= KILLS // 4, phases
