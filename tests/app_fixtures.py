"""Fixtures for the tests that run the widget app (views, sync, crm): the app on SQLite (and on PostgreSQL when
WIDGET_TEST_POSTGRES_URL is set), pointed at a running Exchange sandbox; a test client; signing in."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from contoso import EXTRA_SECRETS
from databases import install_sqlite_copy, postgres_schema, without_widget_settings
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from web_helpers import post
from werkzeug.security import generate_password_hash

from widget import MIGRATIONS, create_app, settings
from widget.extensions import db, limiter
from widget.models import User
from widget.sandbox import Sandbox

POSTGRES_URL = os.environ.get("WIDGET_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = EXTRA_SECRETS[0]
# Hashed once, and cheaply: hundreds of tests sign in as the administrator, and scrypt costs 0.1 s of CPU each time.
ADMIN_PASSWORD_HASH = generate_password_hash(ADMIN_PASSWORD, "pbkdf2:sha256:1000")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The widget's database: "sqlite" (a file in the instance folder) or "postgresql" (a schema of its own)."""
    return request.param


def _close(application: Flask) -> None:
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(backend: str, tmp_path: Path, sandbox: Sandbox, migrated_sqlite: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Flask]]:
    """Build deployments of the widget on the test's backend, each with its own instance folder and database:
    migrated, with an administrator, and the sandbox as its Exchange server. make_app("other") adds one."""
    without_widget_settings(monkeypatch)
    with ExitStack() as cleanup:

        def build(name: str = "instance") -> Flask:
            instance = tmp_path / name
            if backend == "postgresql":
                monkeypatch.setenv("WIDGET_DATABASE_URL", cleanup.enter_context(postgres_schema(POSTGRES_URL)))
            else:
                monkeypatch.delenv("WIDGET_DATABASE_URL", raising=False)
                install_sqlite_copy(migrated_sqlite, instance)
            application = create_app({"INSTANCE_PATH": str(instance), "TESTING": True, "WIDGET_AUTO_MIGRATE": False})
            cleanup.callback(_close, application)  # before its schema is dropped: callbacks run last-in first-out
            with application.app_context():
                if backend == "postgresql":
                    upgrade(directory=str(MIGRATIONS))
                db.session.add(User(email=ADMIN_EMAIL, display_name="Admin", is_admin=True,
                                    admin_password_hash=ADMIN_PASSWORD_HASH))
                db.session.commit()
                settings.save({"ews_url": sandbox.url, "ews_auth": "NTLM"})
            limiter.reset()
            return application

        yield build
    limiter.reset()


@pytest.fixture
def app(make_app: Callable[[str], Flask]) -> Flask:
    """The widget with a migrated database, an administrator, and the sandbox as its Exchange server."""
    return make_app("instance")


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
