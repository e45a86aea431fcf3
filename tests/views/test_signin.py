"""Authorize: credentials checked live against Exchange, one attempt per submit, stored encrypted; sessions."""

from __future__ import annotations

import pytest
from contoso import PASSWORDS
from web_helpers import post

from widget import settings
from widget.extensions import db
from widget.models import User


def _user(app, email: str) -> User | None:
    with app.app_context():
        return db.session.scalar(db.select(User).where(User.email == email))


def test_it_authorizes_a_user_and_shows_the_dashboard(app, client, sign_in, sandbox):
    reply = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Authorized" in page and "None yet" in page and "Two-way" in page
    user = _user(app, "alice@contoso.com")
    assert user.status == "authorized" and user.exchange_username == "alice@contoso.com"
    assert user.exchange_password and PASSWORDS["alice@contoso.com"] not in user.exchange_password
    assert sandbox.store.users["alice@contoso.com"].failed_logins == 0


def test_it_accepts_a_domain_or_a_domain_user_name(app, client, sign_in):
    assert sign_in("bob@contoso.com", PASSWORDS["bob@contoso.com"], "CONTOSO").status_code == 302
    assert _user(app, "bob@contoso.com").exchange_username == "CONTOSO\\bob"
    assert sign_in("carol@contoso.com", PASSWORDS["carol@contoso.com"], "CONTOSO\\carol").status_code == 302
    assert _user(app, "carol@contoso.com").exchange_username == "CONTOSO\\carol"


def test_it_costs_exactly_one_failed_attempt_per_wrong_submit(app, sign_in, sandbox):
    for attempt in (1, 2, 3):
        reply = sign_in("bob@contoso.com", "wrong-password")
        assert reply.status_code == 401
        assert "This email and password do not match" in reply.get_data(as_text=True)
        assert sandbox.store.users["bob@contoso.com"].failed_logins == attempt
    assert _user(app, "bob@contoso.com") is None  # nothing stored before Exchange said yes


def test_it_stops_guessing_before_exchange_would_lock_the_account(sign_in, sandbox):
    # The directory locks after 5 (the widget's default threshold, and the test organisation's): 4 go through.
    for _ in range(4):
        assert sign_in("carol@contoso.com", "guess").status_code == 401
    reply = sign_in("carol@contoso.com", PASSWORDS["carol@contoso.com"])
    assert reply.status_code == 429 and "the widget tries no more until" in reply.get_data(as_text=True)
    user = sandbox.store.users["carol@contoso.com"]
    assert user.failed_logins == 4 and not user.locked


def test_it_says_when_the_exchange_account_is_locked(sign_in, sandbox):
    sandbox.store.users["alice@contoso.com"].locked = True
    reply = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert reply.status_code == 403 and "locked" in reply.get_data(as_text=True)


def test_it_says_when_exchange_cannot_be_reached(app, sign_in):
    with app.test_request_context():
        settings.save({"ews_url": "http://127.0.0.1:9/EWS/Exchange.asmx"})
    reply = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert reply.status_code == 503 and "cannot be reached" in reply.get_data(as_text=True)


def test_it_refuses_a_disabled_user_without_asking_exchange(app, sign_in, sandbox):
    with app.app_context():
        db.session.add(User(email="alice@contoso.com", disabled=True))
        db.session.commit()
    reply = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    # The answer of a wrong password: a sign-in page never tells which addresses are disabled.
    assert reply.status_code == 401 and "or this account cannot use the widget" in reply.get_data(as_text=True)
    assert sandbox.stats.operations["GetFolder"] == 0


def test_it_checks_an_administrators_local_password_without_exchange(sign_in, sandbox):
    reply = sign_in("admin@example.com", "not-the-password")
    assert reply.status_code == 401
    assert sandbox.stats.http_requests == 0


@pytest.mark.parametrize(("data", "message"), [
    ({"email": "not-an-address", "password": "x"}, "Enter your email address"),
    ({"email": "alice@contoso.com", "password": ""}, "Enter your password"),
])
def test_it_refuses_incomplete_forms_with_422(client, sandbox, data, message):
    reply = post(client, "/signin", data)
    assert reply.status_code == 422 and message in reply.get_data(as_text=True)
    assert sandbox.stats.http_requests == 0


def test_it_refuses_a_sign_in_without_a_csrf_token(client, sandbox):
    reply = client.post("/signin", data={"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"]})
    assert reply.status_code == 400 and "expired" in reply.get_data(as_text=True)
    assert sandbox.stats.http_requests == 0


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_it_never_redirects_to_another_site_after_signing_in(client, target):
    reply = post(client, "/signin", {"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"],
                                     "next": target})
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"


def test_it_returns_to_the_page_asked_for(client):
    reply = client.get("/account/password")
    assert reply.status_code == 302 and "/signin?next=" in reply.headers["Location"]
    reply = post(client, "/signin", {"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"],
                                     "next": "/account/password"})
    assert reply.headers["Location"] == "/account/password"


def test_it_starts_a_fresh_session_on_sign_in(client, sign_in):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    with client.session_transaction() as session:
        assert "planted" not in session


def test_it_ends_every_session_of_a_user_who_signs_out(app, sign_in):
    other = app.test_client()
    post(other, "/signin", {"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"]})
    assert other.get("/dashboard").status_code == 200
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    mine = app.test_client()
    post(mine, "/signin", {"email": "alice@contoso.com", "password": PASSWORDS["alice@contoso.com"]})
    reply = post(mine, "/signout", token_from="/dashboard")
    assert reply.status_code == 302 and reply.headers["Location"] == "/signin"
    assert other.get("/dashboard").status_code == 302
    assert mine.get("/dashboard").status_code == 302


def test_it_sends_an_htmx_request_of_an_expired_session_to_sign_in(client):
    reply = client.get("/account/password", headers={"HX-Request": "true"})
    assert reply.status_code == 401 and reply.headers["HX-Redirect"].startswith("/signin")


def test_it_refuses_sign_out_without_a_csrf_token(client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert client.post("/signout").status_code == 400
    assert client.get("/dashboard").status_code == 200
