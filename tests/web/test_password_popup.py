"""Update Password: the new password is checked with Exchange before it replaces the stored one."""

from __future__ import annotations

from contoso import PASSWORDS
from web_helpers import csrf_token

from widget.extensions import db
from widget.models import User
from widget.secret_box import decrypt


def _alice(app) -> User:
    with app.app_context():
        return db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))


def _submit(client, password: str):
    token = csrf_token(client, "/dashboard")
    return client.post("/account/password", data={"password": password},
                       headers={"HX-Request": "true", "X-CSRFToken": token})


def test_it_opens_as_a_popup_over_the_dashboard(client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert 'hx-get="/account/password"' in dashboard and "Update Password" in dashboard
    popup = client.get("/account/password", headers={"HX-Request": "true"})
    text = popup.get_data(as_text=True)
    assert popup.status_code == 200 and 'role="dialog"' in text and "<html" not in text
    assert popup.headers["Vary"] == "HX-Request" or "HX-Request" in popup.headers["Vary"]
    whole = client.get("/account/password").get_data(as_text=True)
    assert "<html" in whole and 'for="new-password"' in whole


def test_it_keeps_the_old_password_when_exchange_refuses_the_new_one(app, client, sign_in, sandbox):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    stored_before = _alice(app).exchange_password
    reply = _submit(client, "not-my-password")
    assert reply.status_code == 422 and "did not accept" in reply.get_data(as_text=True)
    assert _alice(app).exchange_password == stored_before
    with app.app_context():
        assert decrypt(_alice(app).exchange_password) == PASSWORDS["alice@contoso.com"]
    assert sandbox.store.users["alice@contoso.com"].failed_logins == 1


def test_it_stores_a_new_password_that_exchange_accepts_and_resumes_sync(app, client, sign_in, sandbox):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    other = app.test_client()
    other_token = csrf_token(other, "/signin")
    other.post("/signin", data={"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"],
                                "csrf_token": other_token})
    sandbox.store.set_password("alice@contoso.com", "Changed-pw-2")
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))
        user.status, user.sync_due_at = "needs_password", None
        db.session.commit()
    assert "no longer accepts your stored password" in client.get("/dashboard").get_data(as_text=True)

    reply = _submit(client, "Changed-pw-2")
    assert reply.status_code == 200 and "Your Exchange password is updated" in reply.get_data(as_text=True)
    user = _alice(app)
    assert user.status == "authorized" and user.sync_due_at is not None
    with app.app_context():
        assert decrypt(user.exchange_password) == "Changed-pw-2"
    assert client.get("/dashboard").status_code == 200  # this session carries on
    assert other.get("/dashboard").status_code == 302  # the other one ended


def test_it_refuses_an_empty_password_and_a_missing_csrf_token(app, client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert _submit(client, "").status_code == 422
    assert client.post("/account/password", data={"password": "x"}).status_code == 400
    with app.app_context():
        assert decrypt(_alice(app).exchange_password) == PASSWORDS["alice@contoso.com"]
