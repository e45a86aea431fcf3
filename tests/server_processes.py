"""Real server processes for tests that a test client cannot stand in for: the widget served by `flask run` (a first
answer after a start, several workers on one database) and the sandbox by `flask --app widget sandbox`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0


def _environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
    env.update(extra)
    return env


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@contextmanager
def widget_server(instance: Path, log: Path, **env: str) -> Iterator[str]:
    """The widget served by `flask run` on a port the system picks, with WIDGET_* settings from `env`; yields its base
    URL once it listens (read from its own banner, not by asking it anything: the first request is the test's; a
    port picked beforehand could be taken meanwhile by another test's server)."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "widget", "run", "--port", "0", "--no-reload"],
            env=_environment(WIDGET_INSTANCE_PATH=str(instance), **env), cwd=ROOT, stdout=output,
            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert process.poll() is None, f"the widget did not start:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the widget did not listen in time:\n{log.read_text()}"
            listening = re.search(r"Running on http://127\.0\.0\.1:(\d+)", log.read_text())
            if listening:
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{listening.group(1)}"
    finally:
        _stop(process)


@dataclass(frozen=True)
class SandboxProcess:
    """A running `flask --app widget sandbox`: its EWS URL and control API."""

    url: str
    control: str

    def stats(self) -> dict:
        """GET /sandbox/stats."""
        session = requests.Session()
        session.trust_env = False
        return session.get(self.control + "stats", timeout=10).json()


@contextmanager
def sandbox_server(log: Path, *args: str) -> Iterator[SandboxProcess]:
    """The sandbox as its own process (`flask --app widget sandbox ARGS`), once its banner says it serves."""
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "widget", "sandbox", *args],
                                   env=_environment(), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "Press Ctrl-C to stop." not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, f"no sandbox:\n{log.read_text()}"
            time.sleep(0.05)
        banner = dict(line.split(": ", 1) for line in log.read_text().splitlines()
                      if line.startswith(("EWS URL: ", "Control API: ")))
        yield SandboxProcess(banner["EWS URL"], banner["Control API"])
    finally:
        _stop(process)
