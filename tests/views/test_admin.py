"""The administrator's pages: only administrators get in, every POST needs its CSRF token, settings are saved and
shown (errors beside their fields), environment pins are read-only, users are disabled and enabled, and the launch
secret is shown once."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from contoso import PASSWORDS
from flask import Flask
from flask.testing import FlaskClient
from web_helpers import csrf_token, post

from widget import create_app, settings
from widget.extensions import db
from widget.models import Setting, User

ALICE = "alice@contoso.com"
SERVICE_PASSWORD = PASSWORDS["svc-crm@contoso.com"]


@pytest.fixture
def carol_id(app: Flask) -> int:
    """A user who authorized earlier (no sign-in needed to be listed)."""
    with app.app_context():
        user = User(email="carol@contoso.com", display_name="Carol Chen", exchange_username="carol@contoso.com",
                    exchange_password="encrypted", status="authorized")
        db.session.add(user)
        db.session.commit()
        return user.id


ADMIN_URLS = [
    ("GET", "/admin/"),
    ("GET", "/admin/server"),
    ("POST", "/admin/server"),
    ("POST", "/admin/server/test"),
    ("GET", "/admin/impersonation"),
    ("POST", "/admin/impersonation"),
    ("POST", "/admin/impersonation/test"),
    ("GET", "/admin/sync"),
    ("POST", "/admin/sync"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users/{user}/disable"),
    ("POST", "/admin/users/{user}/enable"),
    ("GET", "/admin/embedding"),
    ("POST", "/admin/embedding"),
    ("POST", "/admin/embedding/secret"),
    ("GET", "/admin/users/{user}/delete"),
    ("POST", "/admin/users/{user}/delete"),  # last: it takes the user the URLs above act on away
]
# Every POST route of the blueprint is listed (the test below checks the list against the app's routes).
CHANGES = {"ews_url": "https://changed.example.com", "ews_auth": "Basic", "impersonation": "on",
           "service_username": "svc", "service_password": "changed", "sync_interval_minutes": "60",
           "frame_origins": "https://crm.example.com", "test_mailbox": "bob@contoso.com"}


def _text(reply) -> str:  # noqa: ANN001 - a test response
    """The page's text as a person reads it."""
    text = re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True))
    return " ".join(text.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"').split())


def _settings(app: Flask) -> settings.WidgetSettings:
    with app.app_context():
        return settings.load()


def _stored(app: Flask) -> dict:
    with app.app_context():
        rows = {row.key: row.value for row in db.session.scalars(db.select(Setting))}
        users = {user.email: (user.disabled, user.session_version) for user in db.session.scalars(db.select(User))}
        return {"settings": rows, "users": users}


def _each_url(user_id: int) -> list[tuple[str, str]]:
    return [(method, path.format(user=user_id)) for method, path in ADMIN_URLS]


# -- Who gets in --------------------------------------------------------------------------------------------------

def test_it_lists_every_admin_url_in_these_tests(app):
    routes = {(method, rule.rule.replace("<int:user_id>", "{user}")) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("admin.") for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == {(method, path.rstrip("/") if path != "/admin/" else path) for method, path in ADMIN_URLS}


def test_it_sends_anonymous_visitors_to_sign_in(app, client, carol_id):
    before = _stored(app)
    for method, path in _each_url(carol_id):
        reply = client.get(path) if method == "GET" else post(client, path, CHANGES, token_from="/signin")
        assert reply.status_code == 302, f"{method} {path}"
        assert reply.headers["Location"].startswith("/signin"), f"{method} {path}"
    assert _stored(app) == before


def test_it_tells_htmx_to_load_sign_in_when_the_session_has_expired(client, carol_id):
    token = csrf_token(client, "/signin")
    for method, path in _each_url(carol_id):
        headers = {"HX-Request": "true", "X-CSRFToken": token}
        reply = client.get(path, headers=headers) if method == "GET" else client.post(path, data={}, headers=headers)
        assert reply.status_code == 401, f"{method} {path}"
        assert reply.headers["HX-Redirect"].startswith("/signin"), f"{method} {path}"


def test_it_refuses_a_signed_in_user_who_is_not_an_administrator(app, client, sign_in, carol_id):
    assert sign_in(ALICE, PASSWORDS[ALICE]).status_code == 302
    before = _stored(app)
    for method, path in _each_url(carol_id):
        reply = client.get(path) if method == "GET" else post(client, path, CHANGES, token_from="/dashboard")
        assert reply.status_code == 403, f"{method} {path}"
        assert "Only an administrator of the widget can open this page." in _text(reply), f"{method} {path}"
    assert _stored(app) == before
    assert client.get("/dashboard").status_code == 200  # still signed in: only the admin pages are closed


def test_it_lets_the_administrator_in(admin_client, carol_id):
    for method, path in _each_url(carol_id):
        if method == "GET":
            reply = admin_client.get(path)
            assert reply.status_code == 200, f"{method} {path}"
            assert 'aria-label="Settings"' in reply.get_data(as_text=True), f"{method} {path}"
        else:
            # Empty forms: saved (redirect), refused with reasons (422), or answered (200) — never refused entry.
            reply = post(admin_client, path, {}, token_from="/admin/")
            assert reply.status_code in (200, 302, 422), f"{method} {path}: {reply.status_code}"


def test_it_refuses_every_admin_post_without_a_csrf_token_and_changes_nothing(app, admin_client, carol_id):
    before = _stored(app)
    for method, path in _each_url(carol_id):
        if method != "POST":
            continue
        reply = admin_client.post(path, data=CHANGES)
        assert reply.status_code == 400, path
        assert "This form has expired or did not come from the widget." in _text(reply), path
        reply = admin_client.post(path, data={**CHANGES, "csrf_token": "forged"}, headers={"X-CSRFToken": "forged"})
        assert reply.status_code == 400, path
    assert _stored(app) == before


def test_it_accepts_the_csrf_token_in_the_htmx_header(admin_client, sandbox):
    token = csrf_token(admin_client, "/admin/server")
    reply = admin_client.post("/admin/server/test", data={"ews_url": sandbox.url, "ews_auth": "NTLM"},
                              headers={"HX-Request": "true", "X-CSRFToken": token})
    assert reply.status_code == 200
    assert "The server answers as an EWS endpoint." in _text(reply)


# -- Overview -----------------------------------------------------------------------------------------------------

def test_it_shows_an_overview_of_what_is_set_up(app, admin_client, sandbox, carol_id):
    page = _text(admin_client.get("/admin/"))
    assert f"Configured : {sandbox.url} (NTLM)" in page
    assert "Off: each user authorizes with their own Exchange password." in page
    assert "1 user." in page
    for section in ("Exchange server", "Impersonation", "Sync settings", "Users", "Embedding"):
        assert section in page
    with app.app_context():
        settings.save({"ews_url": "", "impersonation": True, "service_username": "svc-crm",
                       "service_password": SERVICE_PASSWORD})
    page = _text(admin_client.get("/admin/"))
    assert "Not configured yet : users cannot authorize until it is set up." in page
    assert "On, as svc-crm: users never give a password." in page


# -- Exchange server ----------------------------------------------------------------------------------------------

def _server_form(**values: str) -> dict[str, str]:
    return {"ews_url": "mail.contoso.com", "ews_auth": "NTLM", "ews_verify_tls": "on", "ews_ca_bundle": "",
            "ews_version": "", **values}


def test_it_saves_the_server_settings_and_shows_them(app, admin_client):
    reply = post(admin_client, "/admin/server", _server_form(ews_auth="Basic", ews_verify_tls="",
                                                             ews_version="Exchange2013"))
    assert reply.status_code == 302 and reply.headers["Location"] == "/admin/server"
    page = admin_client.get("/admin/server")
    html = page.get_data(as_text=True)
    assert "Saved." in _text(page)
    assert 'value="https://mail.contoso.com/EWS/Exchange.asmx"' in html  # a host name becomes the EWS URL
    assert '<option value="Basic" selected>' in html and '<option value="Exchange2013" selected>' in html
    assert " checked" not in re.search(r'<input type="checkbox" id="f-ews_verify_tls"[^>]*>', html).group(0)
    current = _settings(app)
    assert (current.ews_url, current.ews_auth, current.ews_verify_tls, current.ews_version) == (
        "https://mail.contoso.com/EWS/Exchange.asmx", "Basic", False, "Exchange2013")


def test_it_has_a_label_for_every_field(admin_client):
    for path in ("/admin/server", "/admin/impersonation", "/admin/sync", "/admin/embedding", "/admin/users"):
        html = admin_client.get(path).get_data(as_text=True)
        fields = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="(?:hidden|submit)")[^>]*\bid="([^"]+)"', html)
        assert fields, path
        for field_id in fields:
            assert f'for="{field_id}"' in html, f"{path}: no label for #{field_id}"


def test_it_shows_each_error_beside_its_field_with_the_submitted_values(app, admin_client):
    before = _settings(app).ews_url
    reply = post(admin_client, "/admin/server", _server_form(ews_url="ftp://mail.contoso.com", ews_auth="Kerberos",
                                                             ews_ca_bundle="not a certificate"))
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    assert 'value="ftp://mail.contoso.com"' in html and ">not a certificate</textarea>" in html
    url_field = html.split('id="field-ews_url"')[1].split('id="field-ews_auth"')[0]
    assert "EWS URL or host must be an http(s) URL or a host name." in url_field
    assert 'aria-invalid="true"' in url_field
    auth_field = html.split('id="field-ews_auth"')[1].split('id="field-ews_verify_tls"')[0]
    assert "Authentication must be one of: NTLM, Basic." in auth_field
    assert "Nothing was saved" in _text(reply)
    assert _settings(app).ews_url == before


def test_it_refuses_a_ca_bundle_that_is_not_pem(app, admin_client):
    reply = post(admin_client, "/admin/server", _server_form(ews_ca_bundle="-----BEGIN CERTIFICATE-----\nnope\n"
                                                                            "-----END CERTIFICATE-----"))
    assert reply.status_code == 422
    bundle_field = reply.get_data(as_text=True).split('id="field-ews_ca_bundle"')[1]
    assert "CA certificates must be PEM certificates" in bundle_field.split('id="field-ews_version"')[0]


def test_it_requires_the_server_address(admin_client):
    reply = post(admin_client, "/admin/server", _server_form(ews_url=""))
    assert reply.status_code == 422
    assert "Enter the EWS URL or the server's host name." in _text(reply)


@pytest.fixture
def pinned_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A second start of the widget, on the same instance and database, with settings pinned by the environment."""
    monkeypatch.setenv("WIDGET_EWS_URL", "https://pinned.contoso.com/EWS/Exchange.asmx")
    monkeypatch.setenv("WIDGET_EWS_AUTH", "Basic")
    monkeypatch.setenv("WIDGET_IMPERSONATION", "true")
    monkeypatch.setenv("WIDGET_SERVICE_USERNAME", "svc-crm@contoso.com")
    monkeypatch.setenv("WIDGET_SERVICE_PASSWORD", SERVICE_PASSWORD)
    monkeypatch.setenv("WIDGET_LAUNCH_SECRET", "a-launch-secret-from-the-environment")
    pinned = create_app({"INSTANCE_PATH": app.instance_path, "TESTING": True, "WIDGET_AUTO_MIGRATE": False})
    yield pinned
    with pinned.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def pinned_admin(pinned_app: Flask) -> FlaskClient:
    client = pinned_app.test_client()
    from app_fixtures import ADMIN_EMAIL, ADMIN_PASSWORD

    assert post(client, "/signin", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).status_code == 302
    return client


def test_it_shows_settings_pinned_by_the_environment_read_only(pinned_admin):
    html = pinned_admin.get("/admin/server").get_data(as_text=True)
    url_field = html.split('id="field-ews_url"')[1].split('id="field-ews_auth"')[0]
    assert 'value="https://pinned.contoso.com/EWS/Exchange.asmx"' in url_field and " readonly" in url_field
    assert "set by the environment (WIDGET_EWS_URL)" in url_field
    auth_field = html.split('id="field-ews_auth"')[1].split('id="field-ews_verify_tls"')[0]
    assert " disabled" in auth_field and "set by the environment (WIDGET_EWS_AUTH)" in auth_field
    tls_field = html.split('id="field-ews_verify_tls"')[1].split('id="field-ews_ca_bundle"')[0]
    assert "set by the environment" not in tls_field and " disabled" not in tls_field
    page = pinned_admin.get("/admin/impersonation")
    assert "set by the environment (WIDGET_SERVICE_PASSWORD)" in _text(page)
    assert SERVICE_PASSWORD not in page.get_data(as_text=True)


def test_it_does_not_change_a_pinned_setting_on_post_but_saves_the_others(pinned_app, pinned_admin):
    reply = post(pinned_admin, "/admin/server", _server_form(ews_url="https://other.contoso.com", ews_auth="NTLM",
                                                             ews_verify_tls=""))
    assert reply.status_code == 302
    with pinned_app.app_context():
        current = settings.load()
        assert current.ews_url == "https://pinned.contoso.com/EWS/Exchange.asmx" and current.ews_auth == "Basic"
        assert current.ews_verify_tls is False
        assert db.session.get(Setting, "ews_url").value != "https://other.contoso.com/EWS/Exchange.asmx"


def test_it_cannot_rotate_a_launch_secret_pinned_by_the_environment(pinned_app, pinned_admin):
    page = _text(pinned_admin.get("/admin/embedding"))
    assert "A launch secret is set." in page and "set by the environment (WIDGET_LAUNCH_SECRET)" in page
    assert "a-launch-secret-from-the-environment" not in page and "Rotate" not in page
    reply = post(pinned_admin, "/admin/embedding/secret", {}, token_from="/admin/embedding")
    assert reply.status_code == 422
    with pinned_app.app_context():
        assert settings.load().launch_secret == "a-launch-secret-from-the-environment"


# -- Impersonation ------------------------------------------------------------------------------------------------

def _impersonation_form(**values: str) -> dict[str, str]:
    return {"impersonation": "on", "service_username": "svc-crm", "service_domain": "CONTOSO",
            "service_password": SERVICE_PASSWORD, **values}


def test_it_saves_impersonation_and_never_shows_the_password(app, admin_client):
    reply = post(admin_client, "/admin/impersonation", _impersonation_form())
    assert reply.status_code == 302
    page = admin_client.get("/admin/impersonation")
    html = page.get_data(as_text=True)
    assert "Saved." in _text(page) and "A password is stored. Leave this blank to keep it." in _text(page)
    assert SERVICE_PASSWORD not in html
    assert 'value="svc-crm"' in html and 'value="CONTOSO"' in html
    with app.app_context():
        stored = db.session.get(Setting, "service_password").value
        assert SERVICE_PASSWORD not in stored
    current = _settings(app)
    assert current.impersonation and current.service_password == SERVICE_PASSWORD


def test_it_keeps_the_stored_password_when_the_field_is_left_blank(app, admin_client):
    post(admin_client, "/admin/impersonation", _impersonation_form())
    reply = post(admin_client, "/admin/impersonation", _impersonation_form(service_password="",
                                                                           service_username="svc-crm@contoso.com"))
    assert reply.status_code == 302
    current = _settings(app)
    assert current.service_username == "svc-crm@contoso.com" and current.service_password == SERVICE_PASSWORD


def test_it_refuses_impersonation_without_a_service_account(app, admin_client):
    reply = post(admin_client, "/admin/impersonation", _impersonation_form(service_username="", service_password=""))
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    user_field = html.split('id="field-service_username"')[1].split('id="field-service_domain"')[0]
    assert "Impersonation needs a service account: enter its user name (or turn impersonation off)." in user_field
    assert "Impersonation needs the service account&#39;s password." in html
    assert 'id="f-impersonation" name="impersonation" value="on" checked' in html
    assert not _settings(app).impersonation


def test_it_turns_impersonation_off_without_a_service_account(app, admin_client):
    reply = post(admin_client, "/admin/impersonation", {"service_username": "", "service_domain": "",
                                                        "service_password": ""})
    assert reply.status_code == 302
    assert not _settings(app).impersonation


# -- Sync settings ------------------------------------------------------------------------------------------------

def test_it_shows_every_sync_field_with_its_label(admin_client):
    html = admin_client.get("/admin/sync").get_data(as_text=True)
    keys = [field.key for field in settings.FIELDS]
    for field in settings.FIELDS[keys.index("sync_emails"):keys.index("default_time_zone") + 1]:
        assert f'<label for="f-{field.key}">{field.label}</label>' in html or \
            re.search(rf'<label class="check" for="f-{field.key}">\s*<input[^>]*>\s*{re.escape(field.label)}', html), \
            field.key
        tag = {"choice": "select", "list": "textarea"}.get(field.kind, "input")
        assert re.search(rf'<{tag}[^>]*id="f-{field.key}"', html), field.key
    assert '<option value="two_way" selected>Two-way</option>' in html
    assert 'name="sync_folders" rows="4" >inbox\nsentitems</textarea>' in html or ">inbox\nsentitems</textarea>" in html
    assert 'type="checkbox" id="f-other_email_integration"' in html


def test_it_saves_the_sync_settings(app, admin_client):
    form = {"sync_emails": "exchange_to_crm", "sync_calendar": "exchange_to_crm", "sync_tasks": "off",
            "sync_interval_minutes": "30", "sync_history_days": "90", "sync_folders": "inbox\r\nsentitems\r\nProjects",
            "excluded_addresses": "Noreply@Example.com\r\n", "excluded_domains": "@spam.example\r\nads.example",
            "email_visibility": "team", "store_unmatched_email": "on", "conflict_rule": "latest_wins",
            "default_time_zone": "Europe/Berlin"}
    reply = post(admin_client, "/admin/sync", form)
    assert reply.status_code == 302
    page = admin_client.get("/admin/sync")
    assert "Saved." in _text(page)
    assert ">inbox\nsentitems\nProjects</textarea>" in page.get_data(as_text=True)
    current = _settings(app)
    assert current.sync_calendar == "exchange_to_crm" and current.sync_tasks == "off"
    assert current.sync_interval_minutes == 30 and current.sync_history_days == 90
    assert current.sync_folders == ["inbox", "sentitems", "Projects"]
    assert current.excluded_addresses == ["noreply@example.com"]
    assert current.excluded_domains == ["spam.example", "ads.example"]
    assert current.email_visibility == "team" and current.store_unmatched_email is True
    assert current.conflict_rule == "latest_wins" and current.default_time_zone == "Europe/Berlin"
    assert current.other_email_integration is False


def test_it_refuses_wrong_sync_values_beside_their_fields(app, admin_client):
    reply = post(admin_client, "/admin/sync", {"sync_emails": "exchange_to_crm", "sync_calendar": "two_way",
                                               "sync_tasks": "two_way", "sync_interval_minutes": "2",
                                               "sync_history_days": "30", "sync_folders": "inbox",
                                               "excluded_addresses": "not-an-address", "email_visibility": "private",
                                               "conflict_rule": "exchange_wins", "default_time_zone": "Mars/Olympus"})
    assert reply.status_code == 422
    html = reply.get_data(as_text=True)
    interval = html.split('id="field-sync_interval_minutes"')[1].split('id="field-sync_history_days"')[0]
    assert "Sync interval (minutes) must be at least 5." in interval and 'value="2"' in interval
    assert "&#39;not-an-address&#39; is not an e-mail address" in html
    assert "&#39;Mars/Olympus&#39; is not a time zone name" in html
    assert _settings(app).sync_interval_minutes == 15


def test_it_says_email_sync_is_off_and_why_when_another_integration_owns_email(app, admin_client):
    assert "Email sync is off" not in _text(admin_client.get("/admin/sync"))
    with app.app_context():
        settings.save({"other_email_integration": True})
    page = _text(admin_client.get("/admin/sync"))
    assert "Email sync is off: another email integration of your CRM owns email." in page
    assert "only one integration may sync a mailbox's email" in page
    assert "Emails: Off" in _text(admin_client.get("/admin/"))


# -- Users --------------------------------------------------------------------------------------------------------

def test_it_lists_users_with_status_and_last_sync(app, admin_client, carol_id):
    from datetime import UTC, datetime

    with app.app_context():
        carol = db.session.get(User, carol_id)
        carol.last_sync_at = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
        carol.last_sync_outcome = "12 emails, 3 appointments"
        db.session.add(User(email="dave@contoso.com", display_name="Dave", status="needs_password",
                            exchange_password="encrypted"))
        db.session.add(User(email="erin@contoso.com", display_name="Erin", disabled=True))
        db.session.commit()
    page = _text(admin_client.get("/admin/users"))
    assert "carol@contoso.com Authorized 2026-03-04 05:06 UTC 12 emails, 3 appointments Disable" in page
    assert "dave@contoso.com Needs password Never" in page
    assert "erin@contoso.com Disabled Never — Enable" in page
    assert "admin@example.com Administrator" in page


def test_it_finds_users_by_address_or_name(app, admin_client, carol_id):
    with app.app_context():
        db.session.add(User(email="dave@fabrikam.com", display_name="Dave Dunn"))
        db.session.commit()
    page = _text(admin_client.get("/admin/users?q=FABRIKAM"))
    assert "dave@fabrikam.com" in page and "carol@contoso.com" not in page
    page = _text(admin_client.get("/admin/users?q=chen"))
    assert "carol@contoso.com" in page and "dave@fabrikam.com" not in page
    assert "No user matches “100%”." in _text(admin_client.get("/admin/users?q=100%25"))


def test_it_disables_a_user_whose_open_session_ends_at_once(app, admin_client, sandbox):
    alice = app.test_client()
    assert post(alice, "/signin", {"email": ALICE, "password": PASSWORDS[ALICE]}).status_code == 302
    assert alice.get("/dashboard").status_code == 200
    with app.app_context():
        alice_id = db.session.scalar(db.select(User.id).where(User.email == ALICE))
    reply = post(admin_client, f"/admin/users/{alice_id}/disable", {}, token_from="/admin/users")
    assert reply.status_code == 302
    page = _text(admin_client.get("/admin/users"))
    assert f"{ALICE} is disabled: their sessions have ended." in page
    assert f"{ALICE} Disabled" in page
    refused = alice.get("/dashboard")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/signin")
    again = post(alice, "/signin", {"email": ALICE, "password": PASSWORDS[ALICE]})
    # The same answer as a wrong password: a sign-in never tells which addresses are disabled.
    assert again.status_code == 401 and "or this account cannot use the widget" in _text(again)

    reply = post(admin_client, f"/admin/users/{alice_id}/enable", {}, token_from="/admin/users")
    assert reply.status_code == 302
    assert f"{ALICE} Authorized" in _text(admin_client.get("/admin/users"))
    assert post(alice, "/signin", {"email": ALICE, "password": PASSWORDS[ALICE]}).status_code == 302


def test_it_does_not_let_an_administrator_disable_themself(app, admin_client):
    with app.app_context():
        admin_id = db.session.scalar(db.select(User.id).where(User.is_admin))
    reply = post(admin_client, f"/admin/users/{admin_id}/disable", {}, token_from="/admin/users")
    assert reply.status_code == 422
    assert "You cannot disable yourself" in _text(reply)
    with app.app_context():
        assert not db.session.get(User, admin_id).disabled
    assert admin_client.get("/admin/").status_code == 200


def test_it_answers_404_for_an_unknown_user(admin_client):
    assert post(admin_client, "/admin/users/99999/disable", {}, token_from="/admin/users").status_code == 404


# -- Embedding ----------------------------------------------------------------------------------------------------

def test_it_saves_the_frame_origins_and_frames_the_widget_there(app, admin_client):
    reply = post(admin_client, "/admin/embedding", {"frame_origins": "https://CRM.zoho.com/\r\nhttp://localhost:8000"})
    assert reply.status_code == 302
    page = admin_client.get("/admin/embedding")
    assert ">https://crm.zoho.com\nhttp://localhost:8000</textarea>" in page.get_data(as_text=True)
    assert "frame-ancestors https://crm.zoho.com http://localhost:8000" in page.headers["Content-Security-Policy"]


def test_it_refuses_an_origin_that_is_not_one(app, admin_client):
    reply = post(admin_client, "/admin/embedding", {"frame_origins": "https://crm.zoho.com/tab/1"})
    assert reply.status_code == 422
    assert "&#39;https://crm.zoho.com/tab/1&#39; is not an origin" in reply.get_data(as_text=True)
    assert ">https://crm.zoho.com/tab/1</textarea>" in reply.get_data(as_text=True)
    assert _settings(app).frame_origins == []


def test_it_shows_a_generated_launch_secret_once_and_then_only_that_one_is_set(app, admin_client):
    assert "No launch secret yet" in _text(admin_client.get("/admin/embedding"))
    reply = post(admin_client, "/admin/embedding/secret", {}, token_from="/admin/embedding")
    assert reply.status_code == 200
    secret = _settings(app).launch_secret
    assert len(secret) >= 43
    assert f'value="{secret}"' in reply.get_data(as_text=True)
    assert "Copy it into your CRM now: it is shown only this once." in _text(reply)
    with app.app_context():
        assert secret not in str(db.session.get(Setting, "launch_secret").value)  # stored encrypted
    later = admin_client.get("/admin/embedding")
    assert secret not in later.get_data(as_text=True)
    assert "A launch secret is set." in _text(later) and "Rotate" in _text(later)

    rotated = post(admin_client, "/admin/embedding/secret", {}, token_from="/admin/embedding")
    new_secret = _settings(app).launch_secret
    assert new_secret != secret and f'value="{new_secret}"' in rotated.get_data(as_text=True)
    assert "The launch secret is rotated." in _text(rotated)
    assert "Tokens signed with the old secret are refused from now on." in _text(rotated)
