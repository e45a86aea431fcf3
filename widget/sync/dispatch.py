"""The dispatcher: which accounts are due, who may sync them, and one scheduler per deployment.

- An account is claimed atomically in the database (an UPDATE that succeeds for one worker only), so it never
  syncs twice at once, whatever the number of processes. A running sync renews its claim with every page it
  stores; a claim not renewed for CLAIM_TIMEOUT is abandoned (its worker died) and may be taken over.
- A deployment lock makes one scheduler per deployment: a file lock beside a SQLite database, an advisory
  lock on PostgreSQL. Extra web workers, or Flask's reloader, then start none.
  The advisory lock's key names the deployment's schema, so that deployments sharing a PostgreSQL database
  (one schema each) do not stop each other's scheduler.
- Due accounts run in a bounded pool, keeping the requests in flight under Exchange's concurrency budget.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Connection, or_, text, update

from ..extensions import db
from ..models import User, UserStatus

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = timedelta(minutes=10)  # far longer than one page takes, even from a slow server
POOL_SIZE = 4  # accounts synced at once: well under Exchange's ~10 concurrent requests per service account


def advisory_lock_key(connection: Connection, purpose: str = "scheduler") -> int:
    """The PostgreSQL advisory lock key of the deployment whose tables `connection` sees, for one purpose: one per
    database and schema (advisory locks are shared by every schema of a database), the same in every process."""
    database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
    digest = hashlib.blake2b(f"exchange-widget {purpose} {database} {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)  # pg_try_advisory_lock takes a bigint


class DeploymentLock:
    """Held by the one scheduler of a deployment for as long as it runs."""

    def __init__(self, app: Flask):
        self.app = app
        self._file: Any = None
        self._connection: Any = None
        self._key: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another scheduler holds it."""
        with self.app.app_context():
            engine = db.engine
            if engine.dialect.name == "postgresql":
                connection = engine.connect()
                key = advisory_lock_key(connection)
                if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                    self._connection, self._key = connection, key  # the lock lives as long as this session
                    return True
                connection.close()
                return False
        path = Path(self.app.instance_path) / "scheduler.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        """Let another scheduler take over."""
        if self._connection is not None:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.close()
            self._connection = None
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def due_accounts(now: datetime, limit: int) -> list[int]:
    """Ids of accounts due for a sync and not being synced, most overdue first."""
    stale = now - CLAIM_TIMEOUT
    query = (
        db.select(User.id)
        .where(User.sync_due_at.is_not(None), User.sync_due_at <= now, User.disabled.is_(False),
               User.status != UserStatus.NEEDS_PASSWORD,
               or_(User.sync_claimed_at.is_(None), User.sync_claimed_at < stale))
        .order_by(User.sync_due_at)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def claim(user_id: int, worker: str, now: datetime) -> bool:
    """Claim an account for one sync; True for exactly one of several workers trying at once."""
    stale = now - CLAIM_TIMEOUT
    result = db.session.execute(
        update(User)
        .where(User.id == user_id, or_(User.sync_claimed_at.is_(None), User.sync_claimed_at < stale))
        .values(sync_claimed_at=now, sync_claimed_by=worker)
    )
    db.session.commit()
    return result.rowcount == 1


def release(user_id: int, worker: str) -> None:
    """End a claim (only the worker holding it can)."""
    db.session.execute(update(User).where(User.id == user_id, User.sync_claimed_by == worker)
                       .values(sync_claimed_at=None, sync_claimed_by=None))
    db.session.commit()


def sync_claimed(app: Flask, user_id: int, worker: str, now: datetime | None = None) -> str:
    """Run one claimed account's sync in its own app context, then release the claim; returns the outcome.

    `now` is the time of the claim: the run starts then, and its next due time counts from it.
    """
    from .runner import run_sync

    with app.app_context():
        try:
            user = db.session.get(User, user_id)
            return run_sync(user, now=now).outcome if user is not None else "gone"
        finally:
            db.session.rollback()
            release(user_id, worker)


class Dispatcher:
    """Picks due accounts each tick and syncs them in a bounded pool."""

    def __init__(self, app: Flask, pool_size: int = POOL_SIZE):
        self.app = app
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="widget-sync")
        self.pool_size = pool_size
        self.running: dict[int, Future] = {}

    def tick(self, now: datetime | None = None) -> list[int]:
        """One round: claim what is due (as far as the pool has room) and start it; returns the ids started."""
        self.running = {uid: f for uid, f in self.running.items() if not f.done()}
        room = self.pool_size - len(self.running)
        if room <= 0:
            return []
        now = now or datetime.now(UTC)
        started = []
        with self.app.app_context():
            for user_id in due_accounts(now, room):
                if user_id in self.running or not claim(user_id, self.worker, now):
                    continue
                # The run keeps the tick's clock, so that its next due time agrees with the claim's.
                self.running[user_id] = self.pool.submit(sync_claimed, self.app, user_id, self.worker, now)
                started.append(user_id)
        return started

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with `wait`, let running syncs finish."""
        self.pool.shutdown(wait=wait)
