"""Setting the widget up (create-admin, the first-run page, migrations) and the headers that keep it safe in a frame."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from contoso import PASSWORDS
from flask_migrate import upgrade
from web_helpers import csrf_token, post

from widget import MIGRATIONS, create_app, settings
from widget.extensions import db
from widget.models import User

ROOT = Path(__file__).resolve().parents[2]


def _flask(*args: str, instance: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIDGET_")}
    env["WIDGET_INSTANCE_PATH"] = str(instance)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "widget", *args], input=stdin, text=True,
                          capture_output=True, env=env, cwd=ROOT, timeout=60)


def test_it_creates_an_administrator_from_the_command_line(tmp_path):
    instance = tmp_path / "instance"
    result = _flask("create-admin", "Boss@Example.com", instance=instance, stdin="Long-enough-pw-1\n")
    assert result.returncode == 0, result.stderr
    assert "Created administrator boss@example.com." in result.stdout
    for name in ("widget.sqlite3", "secret_key", "encryption_key"):
        assert (instance / name).stat().st_mode & 0o777 == 0o600
    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True})
    client = app.test_client()
    reply = post(client, "/signin", {"email": "boss@example.com", "password": "Long-enough-pw-1"})
    assert reply.status_code == 302 and client.get("/admin/").status_code == 200


def test_it_refuses_a_short_administrator_password(tmp_path):
    result = _flask("create-admin", "boss@example.com", instance=tmp_path / "i", stdin="short\n")
    assert result.returncode != 0 and "at least 12 characters" in result.stderr


def test_it_migrates_a_database_on_request(tmp_path):
    result = _flask("db", "upgrade", instance=tmp_path / "instance")
    assert result.returncode == 0, result.stderr
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        assert set(db.inspect(db.engine).get_table_names()) >= {"users", "settings", "launch_nonces",
                                                                 "alembic_version"}


def test_it_has_migrations_that_match_the_models(tmp_path):
    assert _flask("db", "upgrade", instance=tmp_path / "instance").returncode == 0
    result = _flask("db", "check", instance=tmp_path / "instance")
    assert result.returncode == 0 and "No new upgrade operations detected" in result.stdout + result.stderr


def test_it_migrates_when_it_starts_serving(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance")})
    assert app.test_client().get("/healthz").get_json() == {"status": "ok", "database": "ok"}
    with app.app_context():
        assert "users" in db.inspect(db.engine).get_table_names()


def test_it_guards_the_first_run_setup_with_a_token_printed_on_the_console(tmp_path, capfd):
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True})
    client = app.test_client()
    assert client.get("/setup").status_code == 403
    printed = capfd.readouterr().err
    # Only the path: the host would be the Host header of whoever asked first (WIDGET_PUBLIC_URL gives the host).
    assert "No administrator yet. Create one at: /setup?token=" in printed
    token = printed.rsplit("token=", 1)[1].split()[0]
    assert client.get("/setup?token=wrong").status_code == 403
    page = client.get(f"/setup?token={token}")
    assert page.status_code == 200 and 'for="confirm"' in page.get_data(as_text=True)
    data = {"token": token, "email": "first@example.com", "password": "First-admin-pw-1",
            "confirm": "First-admin-pw-1", "csrf_token": csrf_token(client, f"/setup?token={token}")}
    assert client.post("/setup", data={**data, "confirm": "different"}).status_code == 422
    reply = client.post("/setup", data=data)
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/"
    assert client.get(f"/setup?token={token}").status_code == 404  # once there is an administrator, never again
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "first@example.com")).is_admin


def test_it_sends_a_content_security_policy_that_frames_only_allowed_crm_origins(app, client):
    reply = client.get("/signin")
    csp = reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "X-Frame-Options" not in reply.headers
    with app.test_request_context():
        settings.save({"frame_origins": ["https://crm.zoho.com", "https://crm.example.org:8443"]})
    csp = client.get("/signin").headers["Content-Security-Policy"]
    assert "frame-ancestors https://crm.zoho.com https://crm.example.org:8443" in csp


def test_it_makes_the_session_cookie_fit_for_a_third_party_frame_only_when_embedding(app, sign_in):
    plain = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"]).headers.getlist("Set-Cookie")[-1]
    assert "SameSite=Lax" in plain and "HttpOnly" in plain and "Partitioned" not in plain
    with app.test_request_context():
        settings.save({"frame_origins": ["https://crm.zoho.com"]})
    embedded_client = app.test_client()
    reply = post(embedded_client, "/signin", {"email": "bob@contoso.com", "password": PASSWORDS["bob@contoso.com"]})
    cookie = reply.headers.getlist("Set-Cookie")[-1]
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize("url", ["/crm/Contacts/%00/emails", "/crm/Contacts/C-1/emails?q=%00",
                                 "/crm/Contacts/C-1/emails?%00=1", "/sync/history?page=1%00"])
def test_it_refuses_a_nul_in_the_address_with_a_page_that_says_so(admin_client, url):
    for headers in ({}, {"HX-Request": "true"}):
        reply = admin_client.get(url, headers=headers)
        assert reply.status_code == 400
        assert "The address holds a NUL character (%00), which no page of the widget takes." in \
            reply.get_data(as_text=True)


def test_it_refuses_a_nul_in_an_api_address_in_json(client):
    reply = client.post("/api/crm/records?since=%00", json={})
    assert reply.status_code == 400 and reply.is_json
    assert reply.get_json()["error"] == "The address holds a NUL character (%00), which no page of the widget takes."


def test_it_varies_pages_on_hx_request(client):
    assert "HX-Request" in client.get("/signin").headers["Vary"]


@pytest.mark.parametrize("value", ["no", "maybe"])
def test_it_names_a_bad_environment_setting(tmp_path, monkeypatch, value):
    monkeypatch.setenv("WIDGET_IMPERSONATION", value)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
    with app.test_request_context():
        if value == "no":
            assert settings.load().impersonation is False and "impersonation" in settings.load().pinned
        else:
            with pytest.raises(ValueError, match="WIDGET_IMPERSONATION must be on or off"):
                settings.load()


def _remaining_signins(client, forwarded_for: str) -> int:
    """The per-client sign-in allowance left after one attempt from `forwarded_for` (as a proxy would say it)."""
    reply = client.post("/signin", data={"csrf_token": csrf_token(client), "email": "", "password": ""},
                        headers={"X-Forwarded-For": forwarded_for})
    return int(reply.headers["X-RateLimit-Remaining"])


@pytest.mark.parametrize("proxies", ["0", "1"])
def test_it_believes_forwarded_client_addresses_only_behind_the_proxies_it_is_told_of(tmp_path, monkeypatch,
                                                                                      proxies):
    monkeypatch.setenv("WIDGET_TRUSTED_PROXIES", proxies)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
    client = app.test_client()
    first = _remaining_signins(client, "198.51.100.7")
    second = _remaining_signins(client, "203.0.113.9")
    if proxies == "1":
        assert second == first  # two people behind the proxy: each has an allowance of their own
    else:
        assert second == first - 1  # a client's own header counts for nothing without a trusted proxy


def test_it_refuses_a_nonsense_number_of_proxies(tmp_path, monkeypatch):
    monkeypatch.setenv("WIDGET_TRUSTED_PROXIES", "all")
    with pytest.raises(ValueError, match="WIDGET_TRUSTED_PROXIES must be a number of proxies"):
        create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "WIDGET_AUTO_MIGRATE": False})


def test_it_counts_a_signed_in_users_rate_limits_for_that_user_not_for_the_shared_address(app):
    def remaining(client) -> int:  # noqa: ANN001 - a test client
        reply = client.post("/dashboard/time-zone", data={"csrf_token": csrf_token(client, "/dashboard"),
                                                          "time_zone": "Not/A_Zone"})
        assert reply.status_code == 422
        return int(reply.headers["X-RateLimit-Remaining"])

    alice, bob = app.test_client(), app.test_client()  # two colleagues behind the same address
    for client, email in ((alice, "alice@contoso.com"), (bob, "bob@contoso.com")):
        assert post(client, "/signin", {"email": email, "password": PASSWORDS[email]}).status_code == 302
    first = remaining(alice)
    assert remaining(alice) == first - 1
    assert remaining(bob) == first  # Alice's requests did not spend Bob's allowance
