"""The sandbox's seeding (demo organisation, bulk mail), its command line and its on-disk store."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ews_schema import schema_available, schema_dir
from exchangelib import BASIC, DELEGATE, NTLM, Account, CalendarItem, Configuration, Credentials, FailFast, Message
from exchangelib.fields import FieldPath
from exchangelib.protocol import close_connections
from exchangelib.services import SyncFolderItems

from widget.cli import sandbox_command
from widget.sandbox import Sandbox, Store
from widget.sandbox.seed import (
    DEMO_ACCOUNTS,
    DEMO_CRM_PEOPLE,
    DEMO_OTHER_SENDERS,
    DEMO_SERVICE_ACCOUNT,
    seed_demo,
    seed_messages,
)

NOW = datetime(2025, 3, 12, 10, 30, tzinfo=UTC)
STARTUP_TIMEOUT = 30.0


# -- helpers -----------------------------------------------------------------------------------------------------
def _where(store: Store, item: Any) -> tuple[str, str | None]:
    folder = store.folders[item.folder_id]
    return folder.mailbox, folder.distinguished


def _fingerprint(store: Store) -> list[tuple[Any, ...]]:
    """Everything about a store's items that seeding decides, in creation order (ids excepted)."""
    out = []
    for item in store.items.values():
        p = item.props
        out.append((
            *_where(store, item), item.element, item.created, p.get("Subject"), p.get("DateTimeReceived"),
            p.get("From"), tuple(p.get("ToRecipients") or ()), tuple(p.get("CcRecipients") or ()),
            p.get("Body"), p.get("IsRead"), p.get("InternetMessageId"), p.get("ConversationId"),
            tuple(a[1:] for a in p.get("Attachments") or ()), p.get("Start"), p.get("End"),
            p.get("LegacyFreeBusyStatus"), tuple(p.get("RequiredAttendees") or ()), p.get("UID"),
            p.get("Status"), p.get("DueDate"), item.change_key,
        ))
    return out


def _sync_all(account: Account, sync_state: str | None = None, fields: Any = None, folder: Any = None
              ) -> tuple[list[Any], str]:
    """Drive SyncFolderItems on a folder (the inbox by default) page by page; return (changes, final sync state)."""
    changes: list[Any] = []
    for _ in range(1000):
        svc = SyncFolderItems(account=account)
        changes += list(svc.call(folder=folder or account.inbox, shape="IdOnly", additional_fields=fields,
                                 sync_state=sync_state, ignore=None, max_changes_returned=512, sync_scope=None))
        sync_state = svc.sync_state
        if svc.includes_last_item_in_range:
            return changes, sync_state
    raise AssertionError("the sync never reached the last item")


def _fetch_all(account: Account, folder: Any) -> list[Any]:
    """Every item of a folder with all its properties: SyncFolderItems for the ids, then GetItem."""
    changes, _ = _sync_all(account, folder=folder)
    items = list(account.fetch(ids=[item for _, item in changes]))
    assert not [i for i in items if isinstance(i, Exception)], items
    return items


def _account(url: str, email: str, password: str, *, username: str | None = None, auth: str = NTLM) -> Account:
    config = Configuration(service_endpoint=url, credentials=Credentials(username or email, password),
                           auth_type=auth, retry_policy=FailFast())
    return Account(email, config=config, autodiscover=False, access_type=DELEGATE)


def _http(method: str, url: str, data: Any = None) -> tuple[int, Any]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class SandboxProcess:
    """`flask --app widget sandbox ...` as a child process, with its banner parsed."""

    def __init__(self, args: list[str], cwd: Path):
        # Validate the child's SOAP traffic against the EWS schema, as the in-process sandboxes are.
        schema = ["--schema", str(schema_dir())] if schema_available(schema_dir()) else []
        self.schema_failures: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "widget", "sandbox", *schema, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.control = ""
        self.accounts: dict[str, tuple[str, str]] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for_banner(self, timeout: float = STARTUP_TIMEOUT) -> SandboxProcess:
        """Read lines until "Press Ctrl-C to stop."; fail with the output so far if it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail("the sandbox printed no banner in time:\n" + "\n".join(self.output))
            if line is None:
                pytest.fail(f"the sandbox exited ({self.proc.wait()}):\n" + "\n".join(self.output))
            self.output.append(line)
            if line.startswith("EWS URL: "):
                self.url = line.removeprefix("EWS URL: ")
            elif line.startswith("Control API: "):
                self.control = line.removeprefix("Control API: ")
            elif line.startswith("Account: "):
                email, username, password = line.removeprefix("Account: ").split("  ")[:3]
                self.accounts[email] = (username, password)
            elif line == "Press Ctrl-C to stop.":
                return self
            if time.monotonic() > deadline:
                pytest.fail("the sandbox printed no banner in time:\n" + "\n".join(self.output))

    @property
    def port(self) -> int:
        """The port it serves on."""
        match = re.match(r"http://[^/]+:(\d+)/", self.url)
        assert match, self.url
        return int(match.group(1))

    def rest_of_output(self, timeout: float = 10) -> list[str]:
        """The lines printed after the banner, once the process has ended."""
        self.proc.wait(timeout)
        out = []
        while (line := self.lines.get(timeout=timeout)) is not None:
            out.append(line)
        return out

    def collect_schema_failures(self) -> None:
        """Ask a running child which SOAP documents failed schema validation so far."""
        if self.proc.poll() is None and self.control:
            status, stats = _http("GET", self.control + "stats")
            if status == 200 and "schema" in stats:
                self.schema_failures = list(stats["schema"]["invalid"])

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as in a crash."""
        self.collect_schema_failures()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def run_sandbox(tmp_path: Path) -> Iterator[Any]:
    """Start CLI sandboxes; every one is killed at the end of the test, whatever happened."""
    started: list[SandboxProcess] = []

    def start(*args: str, banner: bool = True) -> SandboxProcess:
        process = SandboxProcess(list(args), tmp_path)
        started.append(process)
        return process.wait_for_banner() if banner else process

    yield start
    close_connections()
    for process in started:
        process.collect_schema_failures()
        # Ctrl-C first, so that the sandbox removes its temporary NTLM account file; SIGKILL if it lingers.
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(5)
        process.kill()
    failures = [failure for process in started for failure in process.schema_failures]
    assert not failures, "SOAP documents failed EWS schema validation:\n" + "\n".join(failures[:20])


# -- seeding the demo --------------------------------------------------------------------------------------------
def test_it_seeds_the_demo_deterministically() -> None:
    first, second = Store(), Store()
    seed_demo(first, NOW)
    seed_demo(second, NOW)
    assert _fingerprint(first) == _fingerprint(second)
    assert [u.email for u in first.users.values()] == [u.email for u in second.users.values()]
    later = Store()
    seed_demo(later, NOW + timedelta(days=1))
    assert _fingerprint(later) != _fingerprint(first)


def test_it_seeds_a_realistic_organisation() -> None:
    store = Store()
    summary = seed_demo(store, NOW)
    assert set(summary.users) == {a.email for a in (*DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT)}
    assert store.users[DEMO_SERVICE_ACCOUNT.email].can_impersonate
    assert all(not store.users[a.email].can_impersonate for a in DEMO_ACCOUNTS)
    assert all(u.domain == "CONTOSO" and u.username == u.email.split("@")[0] for u in store.users.values())

    messages = [i for i in store.items.values() if i.element == "Message"]
    assert 200 <= len(messages) == summary.messages <= 600
    where = Counter(_where(store, i)[1] for i in messages)
    assert where["inbox"] > 100 and where["sentitems"] > 50
    known = {p.email for p in DEMO_CRM_PEOPLE} | {b.email for b in DEMO_OTHER_SENDERS} | set(store.users)
    for item in messages:
        p = item.props
        assert NOW - timedelta(days=91) < p["DateTimeReceived"] < NOW
        assert p["From"].email in known
        assert {b.email for b in p["ToRecipients"] + p.get("CcRecipients", [])} <= known
        assert p["InternetMessageId"].startswith("<") and p["ConversationId"]
    crm_mail = [i for i in messages if i.props["From"].email in {p.email for p in DEMO_CRM_PEOPLE}]
    assert len({i.props["From"].email for i in crm_mail}) >= len(DEMO_CRM_PEOPLE) // 2
    assert Counter(i.props["Body"].body_type for i in messages).keys() == {"HTML", "Text"}
    assert sum(1 for i in messages if i.props.get("Attachments")) >= 5
    assert any(not i.props["IsRead"] for i in messages) and any(i.props["IsRead"] for i in messages)
    # Each folder's change log runs in the order mail arrived.
    inbox = store.folder(DEMO_ACCOUNTS[0].email, "inbox")
    times = [inbox.items[item_id].props["DateTimeReceived"] for _, item_id in inbox.changes]
    assert times == sorted(times)

    calendar = [i for i in store.items.values() if i.element == "CalendarItem"]
    assert len(calendar) == summary.calendar_items >= 30
    for item in calendar:
        assert NOW <= item.props["Start"] < NOW + timedelta(days=15)
        if not item.props["IsAllDayEvent"]:
            assert item.props["Start"].hour >= 9 and item.props["End"] <= item.props["Start"].replace(hour=17, minute=0)
    statuses = Counter(i.props["LegacyFreeBusyStatus"] for i in calendar)
    assert statuses["Busy"] and statuses["Tentative"] and statuses["OOF"]
    meetings = [i for i in calendar if any(a.mailbox.email in {p.email for p in DEMO_CRM_PEOPLE}
                                           for a in i.props.get("RequiredAttendees", []))]
    assert len(meetings) >= 10
    # An internal attendee's copy shares the organizer's UID.
    uids = Counter(i.props["UID"] for i in calendar)
    assert any(n > 1 for n in uids.values())
    for email in (a.email for a in DEMO_ACCOUNTS):
        mine = [i for i in calendar if _where(store, i)[0] == email]
        spans = sorted((i.props["Start"], i.props["End"]) for i in mine)
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), f"{email} is double-booked"

    tasks = [i for i in store.items.values() if i.element == "Task"]
    assert len(tasks) == summary.tasks >= len(DEMO_ACCOUNTS) * 3
    assert {"Completed", "NotStarted", "InProgress"} <= {t.props["Status"] for t in tasks}


def test_it_lists_crm_people_that_a_crm_can_import() -> None:
    emails = [p.email for p in DEMO_CRM_PEOPLE]
    assert len(emails) == len(set(emails)) >= 15
    assert {p.kind for p in DEMO_CRM_PEOPLE} == {"Contact", "Lead"}
    for person in DEMO_CRM_PEOPLE:
        first, last = person.name.lower().split(" ", 1)
        assert person.email.startswith(f"{first}.{last.replace(' ', '.')}@")
        assert person.email.endswith(".example") and person.company


def test_it_serves_the_demo_through_exchangelib(schema_validator: Any) -> None:
    store = Store()
    seed_demo(store)
    seen = len(schema_validator.failures)
    with Sandbox(store) as box:
        box.observers.append(schema_validator)
        megan = DEMO_ACCOUNTS[0]
        account = _account(box.url, megan.email, megan.password, username=f"CONTOSO\\{megan.email.split('@')[0]}")
        for folder, name in ((account.inbox, "inbox"), (account.sent, "sentitems"), (account.calendar, "calendar"),
                             (account.tasks, "tasks")):
            items = _fetch_all(account, folder)
            assert len(items) == len(store.folder(megan.email, name).items) > 0
            assert all(i.subject for i in items)
        messages = _fetch_all(account, account.inbox)
        assert any(m.attachments for m in messages)
        assert all(m.sender and m.datetime_received and m.body for m in messages)
        meetings = _fetch_all(account, account.calendar)
        assert all(m.start < m.end and m.organizer for m in meetings)
        close_connections()
    assert schema_validator.failures[seen:] == []


# -- bulk mail ---------------------------------------------------------------------------------------------------
def test_it_seeds_bulk_messages_in_order() -> None:
    store = Store()
    store.add_user("bulk@contoso.com", "pw")
    assert seed_messages(store, "Bulk@contoso.com", 1000, NOW, days=30) == 1000
    inbox = store.folder("bulk@contoso.com", "inbox")
    assert len(inbox.items) == len(store.items) == 1000
    received = [inbox.items[item_id].props["DateTimeReceived"] for _, item_id in inbox.changes]
    assert received == sorted(received) and NOW - timedelta(days=30) < received[0] and received[-1] <= NOW
    assert sum(1 for i in inbox.items.values() if not i.props["IsRead"]) == 50
    again = Store()
    again.add_user("bulk@contoso.com", "pw")
    seed_messages(again, "bulk@contoso.com", 1000, NOW, days=30)
    assert _fingerprint(again) == _fingerprint(store)
    assert seed_messages(store, "bulk@contoso.com", 0) == 0 and len(store.items) == 1000
    with pytest.raises(KeyError):
        seed_messages(store, "nobody@contoso.com", 1)


# -- the command line --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--user", "alice"], "expected EMAIL:PASSWORD"),
    (["--user", "alice@contoso.com:"], "expected EMAIL:PASSWORD"),
    (["--impersonator", "svc@contoso.com"], "expected EMAIL:PASSWORD"),
    (["--auth", "kerberos"], "choose from ntlm, basic"),
    (["--seed", "everything"], "'everything' is not 'demo'"),
    (["--store", "/no/such/folder/store.pickle"], "does not exist"),
    (["--schema", "/no/such/schema/folder"], "does not exist"),
])
def test_it_refuses_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_command, args)
    assert result.exit_code == 2
    assert message in result.output


def test_it_prints_its_url_and_accounts_and_stops_on_ctrl_c(run_sandbox: Any) -> None:
    process = run_sandbox("--port", "0", "--user", "Alice@contoso.com:Alice:pw", "--user", "bob@contoso.com:Bob-pw",
                          "--impersonator", "svc-crm@contoso.com:Svc-pw", "--auth", "basic,ntlm")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/EWS/Exchange\.asmx", process.url) and process.port != 0
    assert process.control == process.url.removesuffix("/EWS/Exchange.asmx") + "/sandbox/"
    assert process.accounts == {
        "alice@contoso.com": ("CONTOSO\\alice", "Alice:pw"),
        "bob@contoso.com": ("CONTOSO\\bob", "Bob-pw"),
        "svc-crm@contoso.com": ("CONTOSO\\svc-crm", "Svc-pw"),
    }
    assert "Account: svc-crm@contoso.com  CONTOSO\\svc-crm  Svc-pw  (can impersonate)" in process.output
    assert "Auth: Basic, NTLM" in process.output
    # The printed credentials work, in the DOMAIN\user form too. Alice signs in over Basic: the NTLM side reads a
    # DOMAIN:user:password file, in which a password holding ':' cannot be written (see auth.py).
    assert _account(process.url, "alice@contoso.com", "Alice:pw", auth=BASIC).inbox.total_count == 0
    assert _account(process.url, "bob@contoso.com", "Bob-pw", username="CONTOSO\\bob").inbox.total_count == 0
    status, stats = _http("GET", process.control + "stats")
    assert status == 200 and stats["http_requests"] >= 1
    close_connections()
    process.proc.send_signal(signal.SIGINT)
    assert process.proc.wait(10) == 0
    assert "Stopping the sandbox." in process.rest_of_output()


def test_it_seeds_from_the_command_line_and_stops_on_sigterm(run_sandbox: Any) -> None:
    process = run_sandbox("--seed", "demo", "--messages", "700", "--user", "bulk@contoso.com:Bulk-pw-1",
                          "--lockout", "2")
    assert set(process.accounts) == {a.email for a in (*DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT)} | {"bulk@contoso.com"}
    assert process.accounts[DEMO_ACCOUNTS[0].email][1] == DEMO_ACCOUNTS[0].password
    assert any(line.startswith("Seeded 700 messages into bulk@contoso.com") for line in process.output)
    account = _account(process.url, "bulk@contoso.com", "Bulk-pw-1", auth=BASIC)
    assert account.inbox.total_count == 700
    # --lockout 2: the second wrong password locks the account.
    for _ in range(2):
        with pytest.raises(Exception):  # noqa: B017 - exchangelib's exact error for a 401 does not matter here
            _account(process.url, "bulk@contoso.com", "wrong", auth=BASIC).inbox.refresh()
        close_connections()
    assert _http("GET", process.control + "stats")[1]["locked"] == ["bulk@contoso.com"]
    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(10) == 0


def test_it_adds_a_default_user_when_given_none(run_sandbox: Any) -> None:
    process = run_sandbox("--messages", "3")
    assert process.accounts == {"alice@contoso.com": ("CONTOSO\\alice", "Alice-pw-1")}
    assert _account(process.url, "alice@contoso.com", "Alice-pw-1").inbox.total_count == 3


# -- the store on disk -------------------------------------------------------------------------------------------
def test_it_keeps_items_and_sync_states_across_a_crash(run_sandbox: Any, tmp_path: Path) -> None:
    store_file = tmp_path / "sandbox.pickle"
    args = ["--store", str(store_file), "--user", "alice@contoso.com:Alice-pw-1"]
    first = run_sandbox("--port", "0", *args)
    assert store_file.exists()
    status, reply = _http("POST", first.control + "deliver", {
        "from": "Lena Fischer <lena.fischer@acme-corp.example>", "to": "alice@contoso.com",
        "subject": "Before the crash", "html": "<p>Hello</p>",
    })
    assert status == 201 and reply == {"delivered": ["alice@contoso.com"]}
    alice = _account(first.url, "alice@contoso.com", "Alice-pw-1")
    Message(account=alice, folder=alice.inbox, subject="Saved by exchangelib", body="kept").save()
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject="Call with Acme",
                           start=NOW.astimezone(alice.default_timezone),
                           end=(NOW + timedelta(hours=1)).astimezone(alice.default_timezone))
    meeting.save()
    changes, state = _sync_all(alice)
    before = {item.id: item.changekey for _, item in changes}
    assert len(before) == 2
    close_connections()
    first.kill()  # SIGKILL: nothing is written on the way out

    second = run_sandbox("--port", str(first.port), *args)
    assert second.url == first.url
    assert any(line.startswith("Loaded 1 users and 3 items") for line in second.output)
    assert "alice@contoso.com already exists in the store: kept as it is" in second.output
    alice = _account(second.url, "alice@contoso.com", "Alice-pw-1")
    inbox = _fetch_all(alice, alice.inbox)
    assert {m.id: m.changekey for m in inbox} == before
    assert {m.subject for m in inbox} == {"Before the crash", "Saved by exchangelib"}
    assert [(c.id, c.subject) for c in _fetch_all(alice, alice.calendar)] == [(meeting.id, "Call with Acme")]
    # A sync state issued before the crash still works: nothing new, then exactly what arrives next.
    assert _sync_all(alice, state)[0] == []
    _http("POST", second.control + "deliver", {"from": "marcus.reid@acme-corp.example", "to": "alice@contoso.com",
                                               "subject": "After the restart", "text": "Hi"})
    fields = [FieldPath(field=Message.get_field_by_fieldname("subject"))]
    after, _ = _sync_all(alice, state, fields)
    assert [(kind, item.subject) for kind, item in after] == [("create", "After the restart")]
    status, stats = _http("GET", second.control + "stats")
    assert stats["schema"]["checked"] > 20 and stats["schema"]["invalid"] == []
    close_connections()
    second.proc.send_signal(signal.SIGINT)
    assert second.proc.wait(10) == 0
    assert len(Store.load(store_file).items) == 4


def test_it_refuses_a_store_file_that_is_not_a_store(tmp_path: Path) -> None:
    garbage = tmp_path / "store.pickle"
    garbage.write_bytes(b"not a pickle")
    result = CliRunner().invoke(sandbox_command, ["--store", str(garbage)])
    assert result.exit_code == 1
    assert "cannot load the sandbox store" in result.output
