"""What a deployment leaks no more: the cookie and HSTS over HTTPS without embedding, a SQLite file outside the
instance folder readable by others, rows of mail in database errors, launch tokens in access logs."""

from __future__ import annotations

import logging
import stat

import pytest
import requests
from server_processes import widget_server
from sqlalchemy.exc import IntegrityError

from widget import create_app, launch, settings
from widget.access_logs import LaunchQueryFilter
from widget.extensions import db
from widget.models import Email, User


def test_it_sends_a_secure_cookie_and_hsts_over_https_with_embedding_off(app, client):
    with app.test_request_context():
        assert settings.load().embedding is False
    reply = client.get("/signin", base_url="https://widget.contoso.com")
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("widget_session=") and "Secure" in cookie and "SameSite=Lax" in cookie
    assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = app.test_client().get("/signin")  # plain HTTP (a development machine): neither
    assert "Secure" not in plain.headers["Set-Cookie"] and "Strict-Transport-Security" not in plain.headers


def test_it_creates_a_sqlite_database_outside_the_instance_folder_owner_only(tmp_path, monkeypatch):
    elsewhere = tmp_path / "data" / "widget.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("WIDGET_DATABASE_URL", f"sqlite:///{elsewhere}")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.test_client().get("/healthz").status_code == 200  # migrated, in WAL mode
    with app.app_context():
        db.session.add(User(email="alice@contoso.com"))
        db.session.commit()
        files = list(elsewhere.parent.iterdir())
        assert {path.name for path in files} >= {"widget.db", "widget.db-wal", "widget.db-shm"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        db.engine.dispose()


def test_it_keeps_mail_out_of_database_errors(app):
    with app.app_context():
        user = User(email="alice@contoso.com")
        db.session.add(user)
        db.session.commit()
        for _ in range(2):
            db.session.add(Email(user_id=user.id, item_id="same", folder="inbox", subject="Merger terms: 41 per share",
                                 body_text="Strictly confidential"))
        with pytest.raises(IntegrityError) as refused:
            db.session.commit()
        db.session.rollback()
    assert "Merger terms" not in str(refused.value) and "confidential" not in str(refused.value)


def test_it_keeps_launch_tokens_out_of_the_access_log(tmp_path):
    token = launch.sign("s" * 32, "alice@contoso.com")
    log = tmp_path / "widget.log"
    with widget_server(tmp_path / "instance", log) as base:
        session = requests.Session()
        session.trust_env = False
        assert session.get(f"{base}/launch?token={token}", timeout=30).status_code == 400
        assert session.get(f"{base}/signin?email=alice@contoso.com", timeout=30).status_code == 200
    text = log.read_text()
    assert "GET /launch?[query removed] HTTP/1.1" in text
    assert token not in text and token.split(".")[1] not in text
    assert "GET /signin?email=alice@contoso.com HTTP/1.1" in text  # other URLs are logged as they were


def test_it_keeps_launch_tokens_out_of_gunicorns_access_log_atoms():
    # gunicorn logs its access line with a dict of atoms: the request line, the path and the query apart.
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(r)s" %(s)s %(q)s', None, None)
    record.args = {"h": "10.0.0.1", "r": "GET /launch?token=abc.def HTTP/1.1", "s": "302", "U": "/launch",
                   "q": "token=abc.def"}
    LaunchQueryFilter().filter(record)
    assert record.getMessage() == '10.0.0.1 "GET /launch?[query removed] HTTP/1.1" 302 [query removed]'


def test_it_warns_when_rate_limits_live_in_memory_and_several_processes_serve(tmp_path):
    session = requests.Session()
    session.trust_env = False
    instance = tmp_path / "instance"
    with widget_server(instance, tmp_path / "one.log") as one:
        assert session.get(f"{one}/healthz", timeout=30).status_code == 200
        with widget_server(instance, tmp_path / "two.log") as two:
            assert session.get(f"{two}/healthz", timeout=30).status_code == 200
    assert "WIDGET_RATELIMIT_STORAGE_URL" not in (tmp_path / "one.log").read_text()  # alone when it started
    second = (tmp_path / "two.log").read_text()
    assert "Rate limits are kept in this process's memory" in second and "2 processes serve this widget" in second
    assert "redis://" in second
