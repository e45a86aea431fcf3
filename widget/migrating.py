"""Bringing the database up to date when the widget starts, once per deployment however many workers start at once.

Several gunicorn workers (or the reloader and its child) starting on a fresh database would each run the
migrations; the second would then try to create tables the first is creating. So every process takes the
deployment's migration lock first — a PostgreSQL advisory lock, or a file lock beside the SQLite database's
instance folder — waits for whoever holds it, and then finds nothing left to do.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlalchemy import text

from . import MIGRATIONS
from .extensions import db


@contextmanager
def migration_lock(app: Flask) -> Iterator[None]:
    """Held while one process migrates the deployment's database; others wait for it."""
    from .sync.dispatch import advisory_lock_key

    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            key = advisory_lock_key(connection, "migrations")
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
        return
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    with (Path(app.instance_path) / "migrations.lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def upgrade_database(app: Flask) -> None:
    """Apply the pending migrations under the deployment's migration lock (in an app context)."""
    from flask_migrate import upgrade

    with migration_lock(app):
        upgrade(directory=str(MIGRATIONS))
