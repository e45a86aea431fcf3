"""The first answer after a start is made with the settings in force: a real `flask run` process, asked once.

A CRM frame that is the first visitor after a restart must get the third-party cookie
(`widget_session_embedded=...; Secure; SameSite=None; Partitioned`) when embedding is on, and a first-party one
when it is off, on a fresh instance folder and on an existing database (migrated, or one migration behind)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from flask_migrate import downgrade, upgrade
from server_processes import widget_server

from widget import MIGRATIONS, create_app, settings
from widget.extensions import db

CRM = "https://crm.example.com"


def _existing_database(instance: Path, *, frame_origins: list[str], revision: str = "head") -> None:
    app = create_app({"INSTANCE_PATH": str(instance), "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        with app.test_request_context():
            settings.save({"frame_origins": frame_origins})
        if revision != "head":
            downgrade(directory=str(MIGRATIONS), revision=revision)
        db.engine.dispose()


def _first_cookie(base: str) -> str:
    session = requests.Session()
    session.trust_env = False
    reply = session.get(base + "/signin", timeout=30)
    assert reply.status_code == 200
    return reply.headers["Set-Cookie"]


def _embedded(cookie: str) -> bool:
    if cookie.startswith("widget_session_embedded="):
        assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie, cookie
        return True
    assert cookie.startswith("widget_session=") and "SameSite=Lax" in cookie, cookie
    return False


@pytest.mark.parametrize("embedding", [True, False], ids=["embedding-on", "embedding-off"])
def test_it_answers_the_first_request_on_a_fresh_instance_with_the_cookie_in_force(tmp_path, embedding):
    env = {"WIDGET_FRAME_ORIGINS": CRM} if embedding else {}
    with widget_server(tmp_path / "instance", tmp_path / "widget.log", **env) as base:
        assert _embedded(_first_cookie(base)) is embedding
        assert _embedded(_first_cookie(base)) is embedding


@pytest.mark.parametrize("revision", ["head", "0007"], ids=["migrated", "one-migration-behind"])
@pytest.mark.parametrize("embedding", [True, False], ids=["embedding-on", "embedding-off"])
def test_it_answers_the_first_request_on_an_existing_database_with_the_cookie_in_force(tmp_path, embedding,
                                                                                     revision):
    instance = tmp_path / "instance"
    _existing_database(instance, frame_origins=[CRM] if embedding else [], revision=revision)
    with widget_server(instance, tmp_path / "widget.log") as base:
        assert _embedded(_first_cookie(base)) is embedding
        assert _embedded(_first_cookie(base)) is embedding
