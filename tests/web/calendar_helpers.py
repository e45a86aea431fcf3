"""Helpers for the calendar and task tests: users, drafts, running code as a user, the sandbox's delivery log, and a
database refusal provoked with a trigger."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from contoso import PASSWORDS
from flask import Flask
from sqlalchemy import text

from widget.extensions import db
from widget.models import SyncRun, User
from widget.sandbox import Sandbox
from widget.secret_box import encrypt
from widget.sync.calendar_actions import MeetingDraft
from widget.sync.runner import run_sync


def add_user(app: Flask, email: str, *, time_zone: str = "UTC") -> int:
    """An authorized user with their Exchange password stored; returns the id."""
    with app.app_context():
        user = User(email=email, exchange_username=email, exchange_password=encrypt(PASSWORDS[email]),
                    status="authorized", time_zone=time_zone)
        db.session.add(user)
        db.session.commit()
        return user.id


@contextmanager
def run_in(app: Flask, user_id: int) -> Iterator[User]:
    """An app context (a request's worth of settings) with the user loaded."""
    with app.app_context():
        yield db.session.get(User, user_id)
        db.session.remove()


def meeting(start: datetime, *, subject: str = "Quote review", kind: str = "meeting",
            attendees: tuple[tuple[str, str], ...] = (), minutes: int = 60, reminder_minutes: int | None = None,
            time_zone: str = "Europe/Berlin") -> MeetingDraft:
    """A draft as the schedule form gives it."""
    return MeetingDraft(kind=kind, subject=subject, attendees=attendees if kind == "meeting" else (), location="",
                        start=start, end=start + timedelta(minutes=minutes), all_day=False, time_zone=time_zone,
                        reminder_minutes=reminder_minutes, notes="")


def sync(app: Flask, user_id: int, now: datetime | None = None) -> SyncRun:
    """One sync of the account, as the scheduler runs it (at `now`, if given)."""
    with run_in(app, user_id) as user:
        run = run_sync(user, now=now)
        db.session.refresh(run)
        db.session.expunge(run)
        return run


def sent_log(sandbox: Sandbox) -> list[tuple[str, str, tuple[str, ...]]]:
    """The sandbox's delivery log of meeting messages, from its control API: (kind, subject, recipients sorted)."""
    with urllib.request.urlopen(f"{sandbox.base_url}/sandbox/stats", timeout=10) as reply:
        sent = json.load(reply)["sent"]
    return [(entry["kind"], entry["subject"], tuple(sorted(entry["to"]))) for entry in sent]


@contextmanager
def database_refusing(table: str) -> Iterator[None]:
    """The database itself refuses every new row and every change of `table` (a trigger), as a full disk or a
    lost connection would at commit time."""
    name = f"refuse_{table}"
    if db.engine.dialect.name == "sqlite":
        statements = [f"CREATE TRIGGER {name}_insert BEFORE INSERT ON {table} BEGIN "
                      f"SELECT RAISE(ABORT, 'refused'); END",
                      f"CREATE TRIGGER {name}_update BEFORE UPDATE ON {table} BEGIN "
                      f"SELECT RAISE(ABORT, 'refused'); END"]
        cleanup = [f"DROP TRIGGER {name}_insert", f"DROP TRIGGER {name}_update"]
    else:
        # A lock held by a transaction left open would make the DDL wait for ever: fail instead.
        statements = ["SET LOCAL lock_timeout = '10s'",
                      f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                      f"LANGUAGE plpgsql",
                      f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION "
                      f"{name}()"]
        cleanup = ["SET LOCAL lock_timeout = '10s'", f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
    with db.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            for statement in cleanup:
                connection.execute(text(statement))
