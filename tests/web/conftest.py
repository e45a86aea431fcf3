"""Fixtures for the web front end: the app on SQLite (and on PostgreSQL when WIDGET_TEST_POSTGRES_URL is set),
pointed at a running Exchange sandbox; a test client; helpers to read CSRF tokens and to sign in."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from contoso import EXTRA_SECRETS
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from web_helpers import post
from werkzeug.security import generate_password_hash

from widget import MIGRATIONS, create_app
from widget.extensions import db, limiter
from widget.models import User

POSTGRES_URL = os.environ.get("WIDGET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = EXTRA_SECRETS[0]


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite in the instance folder; for PostgreSQL a URL whose search path is a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def app(tmp_path, database_url, sandbox, monkeypatch) -> Iterator[Flask]:  # noqa: ANN001
    """The widget with a migrated database, an administrator, and the sandbox as its Exchange server."""
    for name in [key for key in os.environ if key.startswith("WIDGET_") and not key.startswith("WIDGET_TEST_")]:
        monkeypatch.delenv(name)
    if database_url:
        monkeypatch.setenv("WIDGET_DATABASE_URL", database_url)
    application = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True,
                              "WIDGET_AUTO_MIGRATE": False})
    with application.app_context():
        upgrade(directory=str(MIGRATIONS))
        db.session.add(User(email=ADMIN_EMAIL, display_name="Admin", is_admin=True,
                            admin_password_hash=generate_password_hash(ADMIN_PASSWORD)))
        db.session.commit()
        from widget import settings

        settings.save({"ews_url": sandbox.url, "ews_auth": "NTLM"})
    limiter.reset()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    limiter.reset()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser-like client of the app."""
    return app.test_client()


@pytest.fixture
def sign_in(client: FlaskClient) -> Callable[..., Any]:
    """Authorize through /signin: sign_in("alice@contoso.com", "Alice-pw-1")."""

    def do(email: str, password: str, domain: str = "") -> Any:
        return post(client, "/signin", {"email": email, "password": password, "domain": domain})

    return do


@pytest.fixture
def admin_client(client: FlaskClient, sign_in: Callable[..., Any]) -> FlaskClient:
    """The client, signed in as the administrator."""
    reply = sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert reply.status_code == 302, reply.get_data(as_text=True)
    return client
