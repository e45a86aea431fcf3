"""A sync's claim on its account lives as long as the sync does: renewed with every stored page, taken over once
its worker has died, and the cut-off run says that it was interrupted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contoso import PASSWORDS
from ews_client import fill_inbox
from web_helpers import post

from widget.extensions import db
from widget.models import SyncRun, User
from widget.sync.dispatch import CLAIM_TIMEOUT, claim, due_accounts, sync_claimed

ALICE = "alice@contoso.com"


def _alice(app, client) -> int:  # noqa: ANN001 - the app and a test client
    assert post(client, "/signin", {"email": ALICE, "password": PASSWORDS[ALICE]}).status_code == 302
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == ALICE))
        user.sync_due_at = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
        return user.id


def test_it_renews_the_claim_with_every_page_so_a_long_sync_is_never_taken_over(app, client, sandbox):
    user_id = _alice(app, client)
    fill_inbox(sandbox.store, ALICE, 600)  # two pages of SyncFolderItems
    sandbox.add_fault("delay", operation="SyncFolderItems", mailbox=ALICE, times=2, seconds=0.3)
    start = datetime.now(UTC) - CLAIM_TIMEOUT + timedelta(milliseconds=200)  # the claim would go stale mid-sync
    with app.app_context():
        assert claim(user_id, "worker-1", start)
    seen: list[datetime] = []
    with app.app_context():
        from widget.sync.runner import run_sync

        user = db.session.get(User, user_id)
        run_sync(user, now=start, progress=lambda folder, handled: seen.append(user.sync_claimed_at))
        # While the sync ran, its claim stayed fresh: no other worker found the account due.
        assert seen and all(renewed > start for renewed in seen)
        assert seen == sorted(seen)


def test_it_takes_over_a_dead_workers_claim_and_marks_its_run_interrupted(app, client, sandbox):
    user_id = _alice(app, client)
    fill_inbox(sandbox.store, ALICE, 3)
    died = datetime.now(UTC) - CLAIM_TIMEOUT - timedelta(minutes=1)
    with app.app_context():
        assert claim(user_id, "worker-that-died", died)
        db.session.add(SyncRun(user_id=user_id, started_at=died, folders=["inbox"], outcome="running",
                               progress="Inbox: 512 changes"))
        db.session.commit()
        now = datetime.now(UTC)
        assert due_accounts(now, 10) == [user_id]
        assert claim(user_id, "worker-2", now)
    assert sync_claimed(app, user_id, "worker-2", now) == "ok"
    with app.app_context():
        runs = db.session.scalars(db.select(SyncRun).where(SyncRun.user_id == user_id).order_by(SyncRun.id)).all()
        assert [run.outcome for run in runs] == ["interrupted", "ok"]
        assert runs[0].finished_at is not None and runs[0].progress is None
    history = client.get("/sync/history").get_data(as_text=True)
    assert "Interrupted: the sync stopped before it finished" in history
