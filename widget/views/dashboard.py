"""The user's dashboard: sync type, the latest sync and its outcome, and the user's status."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from .. import settings
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
    return render_template(
        "dashboard/index.html", sync_types=sync_types, status=user_status(current_user, current),
        email_off_reason=current.email_sync_off_reason, impersonation=current.impersonation,
    )
