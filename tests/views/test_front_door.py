"""Who may sign in as whom: launch links never open an administrator's session, never leave an earlier session
open, create users only for mailboxes the service account reaches, and name addresses as every other way in does;
administrators delete users with their stored mail; the setup link and Test connection give nothing away."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from contoso import PASSWORDS, make_store
from web_helpers import post, signed_in

from widget import create_app, launch, settings
from widget.crm.directory import RecordError, RecordInput
from widget.extensions import db
from widget.models import CalendarItem, Email, SyncRun, Task, User
from widget.sandbox import Sandbox

SECRET = "launch-secret-for-tests-0123456789"
SERVICE = {"impersonation": True, "service_username": "svc-crm@contoso.com",
           "service_password": PASSWORDS["svc-crm@contoso.com"]}


@pytest.fixture
def impersonating(app):  # noqa: ANN001 - the app fixture
    """Impersonation on, with the test organisation's service account, and a launch secret."""
    with app.test_request_context():
        settings.save({"launch_secret": SECRET, **SERVICE})
    return app


def _users(app) -> list[str]:  # noqa: ANN001 - the app fixture
    with app.app_context():
        return sorted(db.session.scalars(db.select(User.email)))


def _text(reply) -> str:  # noqa: ANN001 - a test response
    return " ".join(re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True)).replace("&#39;", "'").split())


# -- 3: a launch token never signs in an administrator -------------------------------------------------------------
def test_it_never_opens_an_administrator_session_from_a_launch_token(impersonating, client):
    reply = client.get(f"/launch?token={launch.sign(SECRET, 'Admin@Example.com')}")
    assert reply.status_code == 403 and "Administrators cannot open the widget from the CRM" in _text(reply)
    assert client.get("/admin/").headers["Location"].startswith("/signin")
    assert client.get("/dashboard").headers["Location"].startswith("/signin")


# -- 4: a refused launch ends the session that was there ----------------------------------------------------------
def test_it_ends_the_earlier_session_when_a_launch_is_refused(impersonating, client):
    token = launch.sign(SECRET, "alice@contoso.com")
    assert client.get(f"/launch?token={token}").headers["Location"] == "/dashboard"
    assert client.get("/dashboard").status_code == 200
    for refused in (token, launch.sign(SECRET, "bob@contoso.com", lifetime=-5),
                    launch.sign(SECRET, "bob@contoso.com", lifetime=3600)):
        assert client.get(f"/launch?token={launch.sign(SECRET, 'alice@contoso.com')}").status_code == 302
        reply = client.get(f"/launch?token={refused}")
        assert reply.status_code == 400 and "Cannot open the widget" in _text(reply)
        back = client.get("/dashboard")  # "Back to the widget"
        assert back.status_code == 302 and back.headers["Location"].startswith("/signin")


def test_it_ends_an_administrators_session_on_any_launch(impersonating, admin_client):
    assert admin_client.get("/admin/").status_code == 200
    assert admin_client.get(f"/launch?token={launch.sign(SECRET, 'bob@contoso.com')}").status_code == 302
    assert admin_client.get("/admin/").status_code == 403  # now Bob, who is no administrator


# -- 5: launch tokens create users only for mailboxes the service account reaches ----------------------------------
@pytest.mark.parametrize("address", ["nobody@contoso.com", "outsider@gmail.com"])
def test_it_creates_no_user_for_an_address_without_a_reachable_mailbox(impersonating, client, sandbox, address):
    with impersonating.test_request_context():
        settings.save({"ews_version": "Exchange2016"})  # no version probe: what is counted is the check alone
    before = _users(impersonating)
    reply = client.get(f"/launch?token={launch.sign(SECRET, address)}")
    assert reply.status_code == 403
    assert f"The widget cannot open a mailbox for {address}" in _text(reply)
    assert _users(impersonating) == before
    assert client.get("/dashboard").headers["Location"].startswith("/signin")
    # One mailbox request (a GetFolder), after the two legs of NTLM's handshake on the new connection.
    assert sandbox.stats.http_requests == 3


def test_it_creates_a_user_for_a_mailbox_the_service_account_reaches(impersonating, client, sandbox):
    reply = client.get(f"/launch?token={launch.sign(SECRET, 'carol@contoso.com')}")
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"
    assert "carol@contoso.com" in _users(impersonating)
    # A known user opens without asking Exchange again.
    before = sum(sandbox.stats.operations.values())
    assert client.get(f"/launch?token={launch.sign(SECRET, 'carol@contoso.com')}").status_code == 302
    assert sum(sandbox.stats.operations.values()) == before


# -- 6: one address check for every way in --------------------------------------------------------------------------
def test_it_refuses_look_alike_and_over_long_launch_addresses(impersonating, client):
    signed_in(impersonating, "carol@contoso.com")
    before = _users(impersonating)
    for address in ("\u212aarol@contoso.com", "ｃarol@contoso.com", "c" * 250 + "@contoso.com"):
        reply = client.get(f"/launch?token={launch.sign(SECRET, address)}")
        assert reply.status_code == 400, address
        assert "does not name an address the widget takes" in _text(reply), address
        assert client.get("/dashboard").headers["Location"].startswith("/signin")
    # A trailing space or other case is the same person, not a second account.
    for address in ("carol@contoso.com ", " Carol@Contoso.COM"):
        assert client.get(f"/launch?token={launch.sign(SECRET, address)}").headers["Location"] == "/dashboard"
    assert _users(impersonating) == before


def test_it_refuses_look_alike_addresses_at_sign_in_in_the_csv_import_and_the_api(impersonating, client, sandbox,
                                                                                  admin_client):
    kelvin = "\u212aarol@contoso.com"
    reply = post(client, "/signin", {"email": kelvin, "password": PASSWORDS["carol@contoso.com"], "domain": ""})
    assert reply.status_code == 422 and "look-alike character" in _text(reply)
    assert sandbox.stats.http_requests == 0
    # The API (and the CSV import, whose rows become the same RecordInput) refuse it with the same words.
    made = post(admin_client, "/admin/crm/tokens", {"name": "crm"}, token_from="/admin/crm/tokens")
    bearer = re.search(r'id="new-token" class="mono secret-once" value="([^"]+)"', made.get_data(as_text=True))
    api = impersonating.test_client().post("/api/crm/records", json={"upsert": [
        {"module": "Contacts", "id": "C-1", "name": "Carol", "emails": [kelvin]}]},
        headers={"Authorization": f"Bearer {bearer.group(1)}"})
    assert api.status_code == 400 and "look-alike character" in api.get_json()["error"]
    with pytest.raises(RecordError, match="look-alike"):
        RecordInput(module="Contacts", crm_id="C-2", name="Carol", emails=(kelvin,))


# -- 5: administrators delete users, and their stored mail goes with them ------------------------------------------
def test_it_lets_an_administrator_delete_a_user_and_what_the_widget_kept_for_them(app, admin_client):
    alice = signed_in(app, "alice@contoso.com")
    now = datetime.now(UTC)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))
        db.session.add_all([Email(user_id=user.id, item_id="m-1", folder="inbox", subject="Offer", received_at=now),
                            CalendarItem(user_id=user.id, item_id="c-1", start_at=now, end_at=now),
                            Task(user_id=user.id, item_id="t-1"), SyncRun(user_id=user.id, outcome="ok")])
        db.session.commit()
        user_id = user.id
    users_page = admin_client.get("/admin/users").get_data(as_text=True)
    assert f'href="/admin/users/{user_id}/delete" class="button" aria-label="Delete alice@contoso.com">Delete</a>' \
        in users_page
    ask = admin_client.get(f"/admin/users/{user_id}/delete")
    assert ask.status_code == 200 and "Delete alice@contoso.com?" in _text(ask)
    assert "1 email, 1 calendar item and 1 task" in _text(ask)
    reply = post(admin_client, f"/admin/users/{user_id}/delete", {}, token_from=f"/admin/users/{user_id}/delete")
    assert reply.status_code == 302
    assert "alice@contoso.com is deleted" in _text(admin_client.get("/admin/users"))
    with app.app_context():
        for model in (Email, CalendarItem, Task, SyncRun):
            assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0, model.__name__
        assert db.session.get(User, user_id) is None
    assert alice.get("/dashboard").headers["Location"].startswith("/signin")


def test_it_does_not_let_an_administrator_delete_themselves(app, admin_client):
    with app.app_context():
        admin_id = db.session.scalar(db.select(User.id).where(User.is_admin))
    reply = post(admin_client, f"/admin/users/{admin_id}/delete", {}, token_from="/admin/users")
    assert reply.status_code == 422 and "You cannot delete yourself" in _text(reply)
    assert admin_client.get("/admin/").status_code == 200


# -- 7: the setup link -------------------------------------------------------------------------------------------
def test_it_prints_the_setup_link_with_the_configured_address_never_the_askers_host(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("WIDGET_PUBLIC_URL", "https://widget.contoso.com")
    monkeypatch.delenv("WIDGET_DATABASE_URL", raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True})
    app.test_client().get("/setup", headers={"Host": "evil.example"})
    printed = capfd.readouterr().err
    assert "Create one at: https://widget.contoso.com/setup?token=" in printed and "evil.example" not in printed


# -- 9: Test connection sends the stored service password only to the saved server -----------------------------------
def test_it_does_not_send_the_stored_service_password_to_another_server(app, admin_client, sandbox):
    with app.test_request_context():
        settings.save(SERVICE)
    elsewhere = Sandbox(make_store(), auth_schemes=("Basic",)).start()  # a server the administrator controls
    try:
        reply = post(admin_client, "/admin/server/test", {"ews_url": elsewhere.url, "ews_auth": "Basic"},
                     token_from="/admin/server")
        assert reply.status_code == 422
        assert "sends the stored service password only to the saved server" in _text(reply)
        assert elsewhere.stats.http_requests == 0
    finally:
        elsewhere.stop()
    # The saved server is still tested with the stored password.
    reply = post(admin_client, "/admin/server/test", {"ews_url": sandbox.url, "ews_auth": "NTLM"},
                 token_from="/admin/server")
    assert reply.status_code == 200 and "Signed in as svc-crm@contoso.com" in _text(reply)
