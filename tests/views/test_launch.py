"""/launch: a CRM vouches for its user with a signed, short-lived, single-use token."""

from __future__ import annotations

import time

import pytest
from contoso import PASSWORDS

from widget import launch, settings
from widget.extensions import db
from widget.models import User

SECRET = "launch-secret-for-tests-0123456789"


@pytest.fixture
def configure(app):
    def apply(**values) -> None:  # noqa: ANN003 - settings by name
        with app.test_request_context():
            settings.save({"launch_secret": SECRET, **values})

    return apply


def test_it_signs_an_impersonated_user_straight_into_the_dashboard(app, client, configure):
    configure(impersonation=True, service_username="svc-crm@contoso.com",
              service_password=PASSWORDS["svc-crm@contoso.com"])
    reply = client.get(f"/launch?token={launch.sign(SECRET, 'Bob@Contoso.com')}")
    assert reply.status_code == 302 and reply.headers["Location"] == "/dashboard"
    page = client.get("/dashboard").get_data(as_text=True)
    assert "bob@contoso.com" in page and "Impersonated" in page
    with app.app_context():
        assert db.session.scalar(db.select(User).where(User.email == "bob@contoso.com")).exchange_password is None


def test_it_sends_a_user_without_stored_credentials_to_authorize(client, configure):
    configure(impersonation=False)
    reply = client.get(f"/launch?token={launch.sign(SECRET, 'carol@contoso.com')}")
    assert reply.status_code == 302 and reply.headers["Location"] == "/signin?email=carol@contoso.com"
    assert client.get("/dashboard").status_code == 302
    assert 'value="carol@contoso.com"' in client.get(reply.headers["Location"]).get_data(as_text=True)


def test_it_signs_in_a_user_whose_credentials_are_stored(app, client, sign_in, configure):
    configure(impersonation=False)
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    fresh = app.test_client()
    reply = fresh.get(f"/launch?token={launch.sign(SECRET, 'alice@contoso.com')}")
    assert reply.headers["Location"] == "/dashboard" and fresh.get("/dashboard").status_code == 200


def test_it_refuses_a_replayed_token(client, configure):
    configure(impersonation=True, service_username="svc-crm@contoso.com",
              service_password=PASSWORDS["svc-crm@contoso.com"])
    token = launch.sign(SECRET, "bob@contoso.com")
    assert client.get(f"/launch?token={token}").status_code == 302
    replay = client.get(f"/launch?token={token}")
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: launch.sign(SECRET, "bob@contoso.com", lifetime=-1), "expired"),
        (lambda: launch.sign(SECRET, "bob@contoso.com", now=time.time() - 300), "expired"),
        (lambda: launch.sign(SECRET, "bob@contoso.com", lifetime=3600), "longer than two minutes"),
        (lambda: launch.sign("another-secret", "bob@contoso.com"), "not signed by your CRM"),
        (lambda: launch.sign(SECRET, "bob@contoso.com")[:-4] + "0000", "not signed by your CRM"),
        (lambda: "garbage", "malformed"),
        (lambda: "%%%.abc", "not signed by your CRM"),
        (lambda: "", "not signed"),
    ],
)
def test_it_refuses_bad_tokens_and_signs_nobody_in(client, configure, make, message):
    configure(impersonation=True)
    reply = client.get("/launch", query_string={"token": make()})
    assert reply.status_code == 400 and message in reply.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_it_refuses_tokens_while_no_launch_secret_is_set(client):
    reply = client.get(f"/launch?token={launch.sign('anything', 'bob@contoso.com')}")
    assert reply.status_code == 400 and "no launch secret" in reply.get_data(as_text=True)


def test_it_refuses_a_disabled_user(app, client, configure):
    configure(impersonation=True)
    with app.app_context():
        db.session.add(User(email="bob@contoso.com", disabled=True))
        db.session.commit()
    reply = client.get(f"/launch?token={launch.sign(SECRET, 'bob@contoso.com')}")
    assert reply.status_code == 403 and client.get("/dashboard").status_code == 302
