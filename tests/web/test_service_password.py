"""A service password rotated in Active Directory: the first refusal stops every impersonated account's work at once,
nothing tries it again (six tries would lock the service account, and every user with it), the administrator and the
users are told, and saving a new password that Exchange accepts resumes every impersonated account."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from contoso import PASSWORDS
from web_helpers import csrf_token, post

from widget import launch, settings
from widget.extensions import db
from widget.models import SyncRun, User
from widget.sync.runner import run_sync

SERVICE = "svc-crm@contoso.com"
SECRET = "l" * 40
PEOPLE = ("alice@contoso.com", "bob@contoso.com")


@pytest.fixture
def impersonated(app, client):
    """Impersonation on, and alice and bob known as impersonated users (by a launch each)."""
    with app.test_request_context():
        settings.save({"launch_secret": SECRET, "impersonation": True, "service_username": SERVICE,
                       "service_password": PASSWORDS[SERVICE]})
    for email in PEOPLE:
        assert app.test_client().get(f"/launch?token={launch.sign(SECRET, email)}").status_code == 302
    return app


def _sync(app, email: str) -> SyncRun:  # noqa: ANN001
    """One sync of the account now; the run as it ended (detached, its columns loaded)."""
    with app.app_context():
        run = run_sync(db.session.scalar(db.select(User).where(User.email == email)))
        db.session.refresh(run)
        db.session.expunge(run)
        return run


def _users(app) -> dict[str, User]:  # noqa: ANN001
    with app.app_context():
        users = {u.email: u for u in db.session.scalars(db.select(User).where(User.email.in_(PEOPLE)))}
        db.session.expunge_all()
        return users


def test_it_stops_every_impersonated_account_after_one_refusal_and_resumes_them_with_a_working_password(
        impersonated, sandbox, admin_client):
    app = impersonated
    assert _sync(app, "alice@contoso.com").outcome == "ok"
    sandbox.store.set_password(SERVICE, "Rotated-in-AD-2")

    first = _sync(app, "alice@contoso.com")
    assert first.outcome == "service_refused" and "service account" in first.error
    assert sandbox.store.users[SERVICE].failed_logins == 1
    # Nobody tries the refused password again: bob's sync, his availability grid, another sync of alice's.
    assert _sync(app, "bob@contoso.com").outcome == "service_refused"
    assert _sync(app, "alice@contoso.com").outcome == "service_refused"
    bob = app.test_client()
    assert bob.get(f"/launch?token={launch.sign(SECRET, 'bob@contoso.com')}").status_code == 302
    grid = bob.get("/meetings/availability?kind=meeting&start=2027-03-15T10:00&end=2027-03-15T11:00")
    assert grid.status_code == 409 and "service account" in grid.get_data(as_text=True)
    assert sandbox.store.users[SERVICE].failed_logins == 1 and not sandbox.store.users[SERVICE].locked
    assert all(u.sync_due_at is None and u.status != "needs_password" for u in _users(app).values())

    # Users and the administrator are told, on every Settings page.
    dashboard = bob.get("/dashboard").get_data(as_text=True)
    assert 'id="service-refused"' in dashboard and "Paused: service account refused" in dashboard
    for page in ("/admin/", "/admin/users", "/admin/crm", "/sync/history"):
        assert 'id="service-refused"' in admin_client.get(page).get_data(as_text=True), page

    # A wrong new password is not saved, and costs one attempt; the right one resumes everyone.
    wrong = post(admin_client, "/admin/impersonation", {"impersonation": "on", "service_username": SERVICE,
                                                        "service_password": "Not-it-3"})
    assert wrong.status_code == 422 and "Not saved" in wrong.get_data(as_text=True)
    assert sandbox.store.users[SERVICE].failed_logins == 2
    with app.test_request_context():
        assert settings.load().service_password == PASSWORDS[SERVICE]
    right = post(admin_client, "/admin/impersonation", {"impersonation": "on", "service_username": SERVICE,
                                                        "service_password": "Rotated-in-AD-2"})
    assert right.status_code == 302
    page = admin_client.get(right.headers["Location"]).get_data(as_text=True)
    assert "2 impersonated accounts sync again" in page and 'id="service-refused"' not in page
    now = datetime.now(UTC)
    assert all(u.sync_due_at is not None and u.sync_due_at <= now for u in _users(app).values())
    assert _sync(app, "bob@contoso.com").outcome == "ok"
    again = bob.post("/sync-now", headers={"HX-Request": "true", "X-CSRFToken": csrf_token(bob, "/dashboard")})
    assert again.status_code == 200 and "service account" not in again.get_data(as_text=True)
    deadline = time.monotonic() + 30
    while "Sync finished" not in bob.get("/sync-now/status", headers={"HX-Request": "true"}).get_data(as_text=True):
        assert time.monotonic() < deadline, "Sync now did not finish"
        time.sleep(0.2)


def test_it_keeps_a_user_with_their_own_password_syncing_while_the_service_account_is_refused(
        impersonated, sandbox, sign_in):
    app = impersonated
    sign_in("carol@contoso.com", PASSWORDS["carol@contoso.com"])  # carol authorizes with her own password
    sandbox.store.set_password(SERVICE, "Rotated-in-AD-2")
    assert _sync(app, "alice@contoso.com").outcome == "service_refused"
    assert _sync(app, "carol@contoso.com").outcome == "ok"
