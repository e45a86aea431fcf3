"""The user's Exchange password: the Update Password popup."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user

from .. import credential_budget, settings
from ..credential_budget import CredentialsHeld, Policy
from ..extensions import db, limiter
from ..htmx import page_popup_or_form
from ..secret_box import encrypt

bp = Blueprint("account", __name__, url_prefix="/account")


def _form(error: str | None = None, status: int = 200, done: bool = False) -> ResponseReturnValue:
    template = page_popup_or_form("account/password.html", "account/password_modal.html", "account/_password_form.html")
    return render_template(template, error=error, done=done,
                           impersonated=settings.load().impersonation and not current_user.has_password), status


@bp.route("/password", methods=["GET", "POST"])
@login_required
@limiter.limit("5 per minute", methods=["POST"])
def password() -> ResponseReturnValue:
    """Update Password: the new password is checked against Exchange before it replaces the stored one."""
    if request.method == "GET":
        return _form()
    from ..exchange.factory import check_credentials
    from ..exchange.problems import ExchangeProblem

    new_password = request.form.get("password", "")
    if not new_password:
        return _form("Enter your new Exchange password.", 422)
    current = settings.load()
    login = current_user.exchange_username or current_user.email
    try:
        with credential_budget.attempt(login, Policy.from_settings(current)):
            check_credentials(current, current_user.email, login, new_password)
    except CredentialsHeld as held:
        return _form(held.message, 429)
    except ExchangeProblem as problem:
        # The stored password stays as it was. A refusal of this password or account is the user's to fix (4xx);
        # only an Exchange that cannot answer is a 503.
        status = {"credentials": 422, "locked": 403, "access": 403}.get(problem.kind, 503)
        return _form(problem.message, status)
    user = current_user._get_current_object()
    user.authorize(login, encrypt(new_password), datetime.now(UTC))
    # Other sessions end; this one carries on with the new session version.
    user.session_version += 1
    db.session.commit()
    login_user(user)
    return _form(done=True)
