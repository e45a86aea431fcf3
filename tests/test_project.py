"""The project's skeleton: the app factory starts nothing, CI runs the README's test command, the CLI is there."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

from widget import create_app

ROOT = Path(__file__).resolve().parents[1]


def test_it_creates_the_app_without_starting_anything(tmp_path):
    threads_before = {t.ident for t in threading.enumerate()}
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.name == "widget"
    # A library may arm a short timer (the rate limiter's memory store does); nothing may keep running.
    for thread in [t for t in threading.enumerate() if t.ident not in threads_before]:
        thread.join(timeout=2)
        assert not thread.is_alive(), f"create_app() left {thread.name} running"


def test_it_loads_the_app_without_importing_the_sandbox_or_exchangelib():
    code = (
        "import sys, tempfile; from widget import create_app; create_app({'INSTANCE_PATH': tempfile.mkdtemp()}); "
        "print(sorted(m for m in sys.modules if m.startswith(('exchangelib', 'widget.sandbox', 'lxml'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_it_offers_the_sandbox_command():
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "widget", "sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    for option in ("--port", "--host", "--user", "--impersonator", "--seed", "--messages", "--store"):
        assert option in result.stdout


def test_it_runs_in_ci_exactly_the_test_command_of_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Run the tests", 1)[1]
    command = re.search(r"```sh\n(.+?)\n```", section, re.S).group(1).strip()
    ci_lines = [
        line
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_lines == [command]


# Words and names that belong to EWS (or to exchangelib) and must not leave widget/exchange/: the rest of the widget
# speaks the mailbox port's own words, so that another backend (Microsoft Graph) can stand behind the same port.
EWS_ONLY = re.compile(
    r"\bexchangelib\b|\bRecurringMaster\b|\bNotStarted\b|[\"']Completed[\"']|\bWorkingElsewhere\b|[\"']NoData[\"']"
    r"|\bErrorMailRecipientNotFound\b|\bDistinguishedFolderId\b|\bItemId\b"
    r"|\bBODY_BATCH\b|\bEWSTimeZone\b|\bEWSDateTime\b|\bews_errors\b|\bSyncFolderItems\b|\bGetUserAvailability\b")


def _code_outside_the_port() -> list[Path]:
    package = ROOT / "widget"
    return [path for path in [*package.rglob("*.py"), ROOT / "jobs.py"]
            if not path.is_relative_to(package / "exchange") and not path.is_relative_to(package / "sandbox")
            and not path.is_relative_to(package / "migrations")]


def test_it_keeps_every_ews_word_and_exchangelib_inside_the_exchange_package():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in _code_outside_the_port()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if EWS_ONLY.search(line.split("#", 1)[0])]
    assert found == []


def test_it_imports_no_adapter_outside_the_exchange_package_but_through_its_factory():
    adapter_import = re.compile(r"from \.+exchange\.ews|from widget\.exchange\.ews|import widget\.exchange\.ews")
    found = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in _code_outside_the_port()
             for line in path.read_text(encoding="utf-8").splitlines() if adapter_import.search(line)]
    assert found == []


def test_it_finds_an_ews_word_where_one_is_planted():
    assert EWS_ONLY.search('if stamp.item_type == "RecurringMaster":')
    assert EWS_ONLY.search("from exchangelib import Account")
    assert not EWS_ONLY.search("if event.is_series:")
