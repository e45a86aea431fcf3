"""The user's dashboard: sync type, the latest sync and its outcome, and the user's status."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from .. import settings
from ..extensions import db, limiter
from ..models import SyncRun
from ..settings import SYNC_TYPE_LABELS

bp = Blueprint("dashboard", __name__)


def user_status(user, current) -> str:  # noqa: ANN001 - a User and the WidgetSettings
    """The status shown to users and administrators: disabled, impersonated, needs password, authorized, new."""
    if user.disabled:
        return "Disabled"
    if user.status == "needs_password":
        return "Needs password"
    if user.has_password:
        return "Authorized"
    if current.impersonation:
        return "Impersonated"
    return "Not authorized"


@bp.route("/")
@bp.route("/dashboard")
@login_required
def index() -> str:
    """The dashboard."""
    current = settings.load()
    sync_types = {
        "Emails": "Off" if current.email_sync_off_reason else SYNC_TYPE_LABELS[current.sync_emails],
        "Calendar": SYNC_TYPE_LABELS[current.sync_calendar],
        "Tasks": SYNC_TYPE_LABELS[current.sync_tasks],
    }
    run = _latest_run()
    return render_template(
        "dashboard/index.html", sync_types=sync_types, status=user_status(current_user, current),
        email_off_reason=current.email_sync_off_reason, impersonation=current.impersonation, run=run,
        running=_is_running(run), message=None,
    )


@bp.route("/sync-now", methods=["POST"])
@login_required
@limiter.limit("6 per minute")
def sync_now() -> ResponseReturnValue:
    """Sync now: start a sync of the user's mailbox in the background and answer with its progress."""
    from ..sync.dispatch import claim, sync_claimed

    user = current_user._get_current_object()
    current = settings.load()
    if user.status == "needs_password":
        return _sync_status(message="Exchange no longer accepts your stored password: update it first.", code=409)
    if not user.has_password and not current.impersonation:
        return _sync_status(message="Authorize with your Exchange password first.", code=409)
    worker = f"sync-now:{user.id}:{secrets.token_hex(4)}"
    if claim(user.id, worker, datetime.now(UTC)):
        app = current_app._get_current_object()
        threading.Thread(target=sync_claimed, args=(app, user.id, worker), name=f"sync-now-{user.id}",
                         daemon=True).start()
    return _sync_status(starting=True)


@bp.route("/sync-now/status")
@login_required
def sync_status() -> ResponseReturnValue:
    """The progress of the user's latest sync (polled while it runs)."""
    return _sync_status()


def _latest_run() -> SyncRun | None:
    return db.session.scalar(db.select(SyncRun).where(SyncRun.user_id == current_user.id)
                             .order_by(SyncRun.id.desc()).limit(1))


def _is_running(run: SyncRun | None) -> bool:
    return (run is not None and run.outcome == "running") or current_user.sync_claimed_at is not None


def _sync_status(*, message: str | None = None, code: int = 200, starting: bool = False) -> ResponseReturnValue:
    db.session.refresh(current_user._get_current_object())  # the sync runs in another thread: read its writes
    run = _latest_run()
    running = starting or _is_running(run)
    return render_template("dashboard/_sync_status.html", run=run, running=running, message=message), code
