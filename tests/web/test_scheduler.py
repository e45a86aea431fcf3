"""The scheduler: one per deployment, accounts claimed atomically, a slow account never overlapping itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contoso import PASSWORDS

from widget.extensions import db
from widget.models import SyncRun, User
from widget.secret_box import encrypt
from widget.sync.dispatch import CLAIM_TIMEOUT, DeploymentLock, Dispatcher, claim, due_accounts

ROOT = Path(__file__).resolve().parents[2]


def _add_user(app, email: str, **values) -> int:  # noqa: ANN003 - columns by name
    with app.app_context():
        user = User(email=email, exchange_username=email, exchange_password=encrypt(PASSWORDS[email]),
                    status="authorized", sync_due_at=datetime.now(UTC) - timedelta(seconds=1), **values)
        db.session.add(user)
        db.session.commit()
        return user.id


def test_it_lets_one_scheduler_hold_the_deployment_lock(app):
    first, second = DeploymentLock(app), DeploymentLock(app)
    assert first.acquire() is True
    try:
        assert second.acquire() is False
    finally:
        first.release()
    assert second.acquire() is True
    second.release()


def test_it_claims_an_account_for_one_worker_only(app):
    user_id = _add_user(app, "alice@contoso.com")
    now = datetime.now(UTC)
    with app.app_context():
        assert due_accounts(now, 10) == [user_id]
        assert claim(user_id, "worker-a", now) is True
        assert claim(user_id, "worker-b", now) is False
        assert due_accounts(now, 10) == []
        # A claim whose worker died is taken over once it is stale.
        later = now + CLAIM_TIMEOUT + timedelta(seconds=1)
        assert due_accounts(later, 10) == [user_id]
        assert claim(user_id, "worker-b", later) is True


def test_it_skips_accounts_that_need_a_password_or_are_disabled(app):
    _add_user(app, "alice@contoso.com", disabled=True)
    _add_user(app, "bob@contoso.com")
    with app.app_context():
        db.session.execute(db.update(User).where(User.email == "bob@contoso.com").values(status="needs_password"))
        db.session.commit()
        assert due_accounts(datetime.now(UTC), 10) == []


def test_it_syncs_due_accounts_and_never_overlaps_a_slow_one(app, sandbox):
    user_id = _add_user(app, "alice@contoso.com")
    sandbox.add_fault("delay", operation="SyncFolderItems", mailbox="alice@contoso.com", seconds=1.5)
    one, two = Dispatcher(app), Dispatcher(app)
    try:
        assert one.tick() == [user_id]
        assert two.tick() == [] and one.tick() == []  # running: neither dispatcher starts it again
        one.running[user_id].result(timeout=30)
        with app.app_context():
            runs = db.session.scalars(db.select(SyncRun).where(SyncRun.user_id == user_id)).all()
            assert [run.outcome for run in runs] == ["ok"]
            user = db.session.get(User, user_id)
            assert user.sync_claimed_at is None and user.sync_due_at > datetime.now(UTC)
        assert two.tick() == []  # not due again until the interval has passed
    finally:
        one.shutdown()
        two.shutdown()


def _start_jobs(instance: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIDGET_")}
    env.update(WIDGET_INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "jobs.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _first_line_with(process: subprocess.Popen, words: tuple[str, ...], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if any(word in line for word in words):
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError("the scheduler said nothing expected")


def test_it_runs_one_scheduler_when_two_start_on_one_database(tmp_path):
    instance = tmp_path / "instance"
    first = _start_jobs(instance)
    try:
        assert "Scheduler running" in _first_line_with(first, ("Scheduler running", "Another scheduler"))
        second = _start_jobs(instance)
        try:
            assert "Another scheduler runs this deployment" in _first_line_with(
                second, ("Scheduler running", "Another scheduler"))
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(20) == 0
