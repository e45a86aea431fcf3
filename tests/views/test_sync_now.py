"""Sync now on the dashboard: the sync runs in the background and the page follows its progress."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from contoso import PASSWORDS
from web_helpers import csrf_token

from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, User
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox


def _status_until_done(client, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = client.get("/sync-now/status", headers={"HX-Request": "true"}).get_data(as_text=True)
        if "Sync finished" in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the sync did not finish")


def test_it_syncs_now_and_shows_progress_then_the_result(app, client, sign_in, sandbox):
    with app.app_context():
        record = CrmRecord(module="Contacts", crm_id="C-9", name="Pat Buyer")
        db.session.add(record)
        db.session.flush()
        db.session.add(CrmAddress(record_id=record.id, address="pat@buyer.example"))
        db.session.commit()
    props = {"Subject": "Order", "ToRecipients": [Mailbox("alice@contoso.com")], "Body": Body("Text", "Hi")}
    deliver_message(sandbox.store, message_defaults(props, Mailbox("pat@buyer.example", "Pat"), datetime.now(UTC)))
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))
        user.time_zone = "Asia/Tokyo"  # times are shown in the user's zone, named
        db.session.commit()
    assert "Sync now" in client.get("/dashboard").get_data(as_text=True)
    sandbox.add_fault("delay", operation="SyncFolderItems", mailbox="alice@contoso.com", seconds=1)
    reply = client.post("/sync-now", headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/dashboard")})
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Syncing" in text and 'hx-trigger="every 1s"' in text
    final = _status_until_done(client)
    assert "1 new, 0 changed, 0 removed" in final and "every 1s" not in final
    assert " JST:" in final and " JST —" in client.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "alice@contoso.com"))
        assert user.sync_claimed_at is None and user.last_sync_outcome == "1 new, 0 changed, 0 removed"


def test_it_asks_for_a_password_before_syncing_an_account_that_needs_one(app, client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    with app.app_context():
        db.session.execute(db.update(User).where(User.email == "alice@contoso.com").values(status="needs_password"))
        db.session.commit()
    reply = client.post("/sync-now", headers={"HX-Request": "true", "X-CSRFToken": csrf_token(client, "/dashboard")})
    assert reply.status_code == 409 and "update it first" in reply.get_data(as_text=True)


def test_it_refuses_sync_now_without_a_csrf_token(client, sign_in):
    sign_in("alice@contoso.com", PASSWORDS["alice@contoso.com"])
    assert client.post("/sync-now").status_code == 400
