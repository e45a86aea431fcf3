"""`flask --app widget demo` on a fresh instance folder: it prints where to go and how to sign in, and signing
in with a demo account works in a real browser (acceptance 4 of the front-door issue)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msal
import pytest
import requests
from browser_helpers import authorize
from playwright.sync_api import Page, expect

from widget.demo import DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, DEMO_GRAPH_APP
from widget.sandbox.seed import DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60  # seconds for the banner: migrations and seeding take about one


class Demo:
    """A running `flask --app widget demo --port 0`: its banner lines, read from a pipe as they come."""

    def __init__(self, instance: Path, log: Path):
        self.log_path = log
        env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
        env.update(WIDGET_INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1")
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "widget", "demo", "--port", "0"],
            stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, text=True, cwd=ROOT, env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.banner: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def wait_for_banner(self) -> Demo:
        """Read the banner, up to "Press Ctrl-C to stop."; returns self."""
        self.banner = self._until("Press Ctrl-C to stop.")
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _until(self, last: str) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the demo printed no {last!r} within {START_TIMEOUT} s; it printed {seen}")
            if line is None:
                pytest.fail(f"the demo stopped ({self.proc.wait()}) after printing {seen}")
            seen.append(line)
            if line == last:
                return seen

    @property
    def url(self) -> str:
        """The widget's URL from the banner."""
        (url,) = [line.removeprefix("Widget: ") for line in self.banner if line.startswith("Widget: ")]
        return url

    def accounts(self) -> list[tuple[str, str]]:
        """(email, password) of each account line of the banner."""
        return [(m.group(1), m.group(2)) for line in self.banner if (m := re.match(r"  (\S+@\S+)\s+(\S+)", line))]

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """The demo's log (standard error) once it holds `text` (the server logs after it has answered)."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log_path.read_text()):
            if time.monotonic() > deadline:
                pytest.fail(f"the demo's log has no {text!r}:\n{log[-2000:]}")
            time.sleep(0.05)
        return log

    def stop(self) -> str:
        """Ctrl-C, as a person would; returns what it printed after the banner."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the demo did not stop on Ctrl-C")
        rest = []
        while (line := self.lines.get(timeout=5)) is not None:
            rest.append(line)
        self.log.close()
        return "\n".join(rest)

    def kill(self) -> None:
        """End the process if it still runs (after a failed test)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def demo_instance(tmp_path: Path) -> Path:
    """An empty instance folder, as on a fresh clone."""
    return tmp_path / "instance"


@pytest.fixture
def start_demo(demo_instance: Path, tmp_path: Path) -> Iterator[Callable[[], Demo]]:
    """start_demo(): the demo on `demo_instance`, once its banner is out; whatever still runs is killed after."""
    started: list[Demo] = []

    def start() -> Demo:
        started.append(Demo(demo_instance, tmp_path / f"demo-{len(started) + 1}.log"))
        return started[-1].wait_for_banner()

    yield start
    for running in started:
        running.kill()


@pytest.fixture
def demo(start_demo: Callable[[], Demo]) -> Iterator[Demo]:
    """The demo, started in a subprocess and stopped with Ctrl-C."""
    running = start_demo()
    yield running
    running.stop()


def test_it_prints_the_url_and_the_fixed_accounts_and_lets_a_demo_user_sign_in(demo: Demo, page: Page):
    assert re.fullmatch(r"http://localhost:\d+/", demo.url)
    expected = [(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD), *((a.email, a.password) for a in DEMO_ACCOUNTS),
                (DEMO_SERVICE_ACCOUNT.email, DEMO_SERVICE_ACCOUNT.password)]
    assert demo.accounts() == expected

    megan = DEMO_ACCOUNTS[0]
    page.goto(demo.url)
    expect(page.get_by_role("heading", name="Authorize")).to_be_visible()
    authorize(page, megan.email, megan.password)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#user-status")).to_have_text("Authorized")
    expect(page.get_by_text(megan.email)).to_be_visible()

    # The request log leaves out query strings, where launch tokens travel.
    page.goto(f"{demo.url}launch?token=looks-like-a-token-1234")
    expect(page.get_by_role("heading", name="Cannot open the widget")).to_be_visible()
    log = demo.wait_for_log('"GET /launch HTTP/1.1" 400')
    assert "looks-like-a-token" not in log


def test_it_starts_again_on_the_same_instance_with_the_same_accounts_and_a_working_setup(
        start_demo: Callable[[], Demo], page: Page):
    first = start_demo()
    assert any(line.startswith("Seeded the demo's Exchange") for line in first.banner)
    assert "Stopping the demo." in first.stop()
    assert first.proc.returncode == 0

    second = start_demo()
    assert not any(line.startswith("Seeded") for line in second.banner)  # the same mailboxes as before
    assert second.accounts() == first.accounts()
    # The administrator signs in with the README's password and finds the server set to this run's sandbox.
    page.goto(f"{second.url}signin")
    authorize(page, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD)
    page.get_by_role("link", name="Settings").click()
    sandbox_url = next(line.split(": ", 1)[1] for line in second.banner if line.startswith("Exchange sandbox"))
    expect(page.locator("#overview-server")).to_contain_text(f"Configured: {sandbox_url}")
    expect(page.locator("#overview-embedding")).to_contain_text("launch secret set")
    # The service account is filled in: switching impersonation on is all it takes.
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Impersonation").click()
    page.get_by_label("Impersonation", exact=True).check()
    page.get_by_label("Mailbox to act for").fill(DEMO_ACCOUNTS[1].email)
    page.get_by_role("button", name="Test impersonation").click()
    expect(page.locator("#impersonation-result")).to_contain_text("Impersonation works.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.", exact=True)).to_be_visible()
    assert "Stopping the demo." in second.stop()


def test_it_lists_the_demo_accounts_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the demo", 1)[1].split("\n## ", 1)[0]
    assert "flask --app widget demo" in section
    for email, password in [(DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD), *((a.email, a.password) for a in DEMO_ACCOUNTS)]:
        assert email in section and password in section, email


def test_it_shows_seeded_mail_on_a_record_of_the_demo_crm_after_the_first_sync(demo: Demo, page: Page):
    # The newcomer's walk: the demo CRM on its own origin, the widget in its frames.
    crm_url = next(line.rsplit(" ", 1)[1] for line in demo.banner if line.startswith("Demo CRM"))
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/demo/crm", crm_url)
    megan = DEMO_ACCOUNTS[0]
    page.goto(crm_url)
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Exchange").click()
    tab = page.frame_locator("iframe[title='Exchange widget']")
    authorize(tab, megan.email, megan.password)
    expect(tab.get_by_role("heading", name="Dashboard")).to_be_visible()
    tab.get_by_role("button", name="Sync now").click()
    expect(tab.get_by_text("Sync finished")).to_be_visible(timeout=30_000)
    expect(tab.locator("#sync-status")).to_contain_text("new")

    # The demo CRM's contacts are the correspondents of the seeded mail: some contact of Megan's shows mail in the
    # record's Emails related list, the widget's frame inside the record view.
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Contacts").click()
    contacts = page.get_by_role("complementary", name="Contacts").get_by_role("link")
    names = contacts.all_inner_texts()
    assert names, "the demo CRM lists no contacts"
    shown = 0
    for name in names:
        page.get_by_role("complementary", name="Contacts").get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        emails = page.frame_locator("iframe[title='Emails']")
        expect(emails.locator("body")).not_to_be_empty()
        shown = emails.locator("span.direction").count()
        if shown:
            break
    assert shown > 0

    # Back in the Exchange tab: schedule a meeting with a colleague at a time the grid offers as free for both.
    page.get_by_role("navigation", name="Modules").get_by_role("link", name="Exchange").click()
    tab = page.frame_locator("iframe[title='Exchange widget']")
    tab.locator("summary", has_text="New").click()
    tab.get_by_role("link", name="Schedule Meeting").click()
    dialog = tab.get_by_role("dialog", name="Schedule Meeting")
    dialog.get_by_label("Subject").fill("Demo pricing call")
    monday = datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday())  # a working day ahead
    dialog.get_by_label("Start", exact=True).fill(f"{monday:%Y-%m-%d}T10:00")
    dialog.get_by_label("End", exact=True).fill(f"{monday:%Y-%m-%d}T10:30")
    dialog.get_by_label("Attendees", exact=True).fill("alex")
    dialog.get_by_role("option", name="Alex Wilber").click()
    expect(dialog.locator('tr[data-address="alex.wilber@contoso.com"]')).to_have_count(1)
    dialog.locator("button.offer").first.click()
    dialog.get_by_role("button", name="Schedule").click()
    expect(dialog.get_by_role("status")).to_contain_text("Your meeting “Demo pricing call” is scheduled")
    dialog.get_by_role("button", name="Close").click()
    expect(tab.locator("#upcoming")).to_contain_text("Demo pricing call")


def test_it_serves_microsoft_graph_on_the_same_mailboxes(demo: Demo):
    lines = dict(line.split(": ", 1) for line in demo.banner if ": " in line and not line.startswith("  "))
    graph_url, ca_file = lines["Microsoft Graph"], lines["CA certificate"]
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/v1\.0", graph_url)
    assert lines["Graph app (client id, secret)"] == "  ".join(DEMO_GRAPH_APP)
    session = requests.Session()
    session.trust_env = False  # the CA is given here, not by the environment
    session.verify = ca_file
    app = msal.ConfidentialClientApplication(DEMO_GRAPH_APP[0], client_credential=DEMO_GRAPH_APP[1],
                                             authority=lines["Sign-in authority"], http_client=session,
                                             instance_discovery=False)
    token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
    inbox = session.get(f"{graph_url}/users/{DEMO_ACCOUNTS[0].email}/mailFolders/inbox",
                        headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert inbox["totalItemCount"] > 0
    readme = (ROOT / "README.md").read_text(encoding="utf-8").split("## Run the demo", 1)[1].split("\n## ", 1)[0]
    assert DEMO_GRAPH_APP[0] in readme and DEMO_GRAPH_APP[1] in readme
