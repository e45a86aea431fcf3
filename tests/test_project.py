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
