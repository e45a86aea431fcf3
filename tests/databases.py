"""Fresh, migrated databases for the tests that build the widget: SQLite files and PostgreSQL schemas.

Running the migrations costs about a second on SQLite (each revision's commit waits for the disk), and most tests
need a freshly migrated database. So a worker migrates one SQLite file once (`migrate_sqlite_template`) and each
test gets a copy of it; PostgreSQL gets a schema of its own per test, migrated by Alembic as before.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from widget import MIGRATIONS, create_app
from widget.extensions import db

SQLITE_FILE = "widget.sqlite3"  # where the widget keeps its database in the instance folder (widget/config.py)


def without_widget_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove the WIDGET_* settings (not the test suite's WIDGET_TEST_*) of the environment, for this test only."""
    for name in [key for key in os.environ if key.startswith("WIDGET_") and not key.startswith("WIDGET_TEST_")]:
        monkeypatch.delenv(name)


def migrate_sqlite_template(folder: Path) -> Path:
    """Build a SQLite database migrated to the newest revision in `folder`; returns the file to copy."""
    with pytest.MonkeyPatch.context() as patch:
        without_widget_settings(patch)  # a developer's WIDGET_DATABASE_URL must not receive the template
        app = create_app({"INSTANCE_PATH": str(folder / "instance"), "TESTING": True, "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        db.session.remove()
        db.engine.dispose()
    template = folder / "migrated.sqlite3"
    # VACUUM INTO writes one self-contained file, whatever the write-ahead log still held.
    with sqlite3.connect(folder / "instance" / SQLITE_FILE) as source:
        source.execute("VACUUM INTO ?", (str(template),))
    source.close()
    return template


def install_sqlite_copy(template: Path, instance: Path) -> None:
    """Give the instance folder its own copy of the migrated database, owner-only as the widget makes it."""
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = instance / SQLITE_FILE
    shutil.copyfile(template, target)
    target.chmod(0o600)


@contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A new, empty schema on the PostgreSQL database of `server_url`, dropped afterwards; yields a database URL
    whose connections work in that schema (their search path)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        separator = "&" if "?" in server_url else "?"
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
