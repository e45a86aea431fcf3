"""Authorize: credentials checked live against Exchange, one attempt per submit, stored encrypted."""

from __future__ import annotations

from org import PASSWORDS

from widget.extensions import db
from widget.models import User


def test_it_authorizes_a_user_and_shows_the_dashboard(app, client, sign_in, sandbox):
    reply = sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Authorized" in page and "None yet" in page
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))
        assert user.exchange_password and PASSWORDS["alice@contoso.com"] not in user.exchange_password


def test_it_costs_exactly_one_failed_attempt_per_wrong_submit(app, client, sign_in, sandbox):
    for attempt in (1, 2, 3):
        reply = sign_in("bob@contoso.com", "wrong-password")
        assert reply.status_code == 401
        assert "did not accept this email and password" in reply.get_data(as_text=True)
        assert sandbox.store.users["bob@contoso.com"].failed_logins == attempt
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "bob@contoso.com")) is None
