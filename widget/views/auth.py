"""Signing in: Authorize with the Exchange password, launch from the CRM, sign out, and the first-run setup."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from .. import launch, settings
from ..extensions import db, limiter
from ..models import Setting, User, UserStatus
from ..secret_box import encrypt

bp = Blueprint("auth", __name__)

SETUP_TOKEN_KEY = "setup_token_sha256"


def _address_key() -> str:
    return "signin-address:" + (request.form.get("email", "").strip().lower() or "-")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("dashboard.index")


def sign_in(user: User) -> None:
    """Start a fresh session for `user` (nothing of an earlier session survives)."""
    session.clear()
    login_user(user)


def _find_user(email: str) -> User | None:
    return db.session.scalar(db.select(User).where(User.email == email))


def _render_signin(error: str | None = None, status: int = 200, **values: str) -> tuple[str, int]:
    current = settings.load()
    return render_template(
        "auth/signin.html", error=error, values=values, impersonation=current.impersonation,
        configured=bool(current.ews_url), next=request.values.get("next", ""),
    ), status


@bp.route("/signin", methods=["GET", "POST"])
# Per address: fewer attempts than any sane Active Directory lockout threshold, so that guessing through the
# widget cannot lock anyone out. Per client: a ceiling for someone trying many addresses.
@limiter.limit("3 per minute;10 per hour", key_func=_address_key, methods=["POST"])
@limiter.limit("20 per minute", methods=["POST"])
def signin() -> Response | tuple[str, int]:
    """Authorize: the email, password and domain are checked live against Exchange before anything is stored."""
    if request.method == "GET":
        return _render_signin(email=request.args.get("email", ""))
    from ..exchange.factory import check_credentials, exchange_login
    from ..exchange.problems import ExchangeProblem

    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    domain = request.form.get("domain", "").strip()
    if "@" not in email or len(email) > 320:
        return _render_signin("Enter your email address, such as name@company.com.", 422, email=email, domain=domain)
    if not password:
        return _render_signin("Enter your password.", 422, email=email, domain=domain)
    user = _find_user(email)
    if user is not None and user.disabled:
        return _render_signin("Your administrator has turned off the widget for this account.", 403, email=email)
    if user is not None and user.is_admin and user.admin_password_hash:
        # Administrators have a local password; it is never sent to Exchange.
        if not check_password_hash(user.admin_password_hash, password):
            return _render_signin("This email and password do not match.", 401, email=email)
        sign_in(user)
        return redirect(safe_next(request.form.get("next")))
    current = settings.load()
    try:
        login = exchange_login(email, domain)
        check_credentials(current, email, login, password)
    except ExchangeProblem as problem:
        status = {"credentials": 401, "locked": 403, "access": 403}.get(problem.kind, 503)
        return _render_signin(problem.message, status, email=email, domain=domain)
    if user is None:
        user = User(email=email, display_name=email.split("@")[0])
        db.session.add(user)
    user.exchange_username = login
    user.exchange_password = encrypt(password)
    user.status = UserStatus.AUTHORIZED
    user.authorized_at = user.sync_due_at = datetime.now(UTC)
    db.session.commit()
    sign_in(user)
    return redirect(safe_next(request.form.get("next")))


@bp.route("/signout", methods=["POST"])
@login_required
def signout() -> Response:
    """Sign out here and everywhere: the session version moves on, so every session of this user ends."""
    current_user.session_version += 1
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("auth.signin"))


@bp.route("/launch")
def launch_view() -> Response | tuple[str, int]:
    """The CRM's way in: a signed, short-lived, single-use token names the user."""
    current = settings.load()
    try:
        claims = launch.read(current.launch_secret, request.args.get("token", ""))
        launch.redeem(claims)
    except launch.LaunchRefused as refused:
        return render_template("errors/message.html", title="Cannot open the widget", message=str(refused)), 400
    user = _find_user(claims.email)
    if user is not None and user.disabled:
        return render_template("errors/message.html", title="Cannot open the widget",
                               message="Your administrator has turned off the widget for this account."), 403
    if current.impersonation:
        if user is None:
            user = User(email=claims.email, display_name=claims.email.split("@")[0])
            db.session.add(user)
            db.session.commit()
        sign_in(user)
        return redirect(url_for("dashboard.index"))
    if user is not None and user.has_password:
        sign_in(user)
        return redirect(url_for("dashboard.index"))
    return redirect(url_for("auth.signin", email=claims.email))


def _setup_token_hash() -> str | None:
    row = db.session.get(Setting, SETUP_TOKEN_KEY)
    return row.value if row else None


def announce_setup_token() -> str | None:
    """While no administrator exists, make a one-time setup token and print where to use it; returns it."""
    if db.session.scalar(db.select(User.id).where(User.is_admin).limit(1)) is not None:
        return None
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = db.session.get(Setting, SETUP_TOKEN_KEY)
    if row is None:
        db.session.add(Setting(key=SETUP_TOKEN_KEY, value=digest))
    else:
        row.value = digest
    db.session.commit()
    print(f"No administrator yet. Create one at: {request.host_url.rstrip('/')}/setup?token={token}",
          file=sys.stderr, flush=True)
    return token


@bp.route("/setup", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def setup() -> Response | tuple[str, int]:
    """First run: create the first administrator, with the one-time token printed on the console."""
    if db.session.scalar(db.select(User.id).where(User.is_admin).limit(1)) is not None:
        return render_template("errors/message.html", title="Already set up",
                               message="An administrator exists. Sign in instead."), 404
    token = request.values.get("token", "")
    expected = _setup_token_hash()
    if expected is None:
        announce_setup_token()
        return render_template("errors/message.html", title="Set up the widget",
                               message="A one-time setup link has been printed on the widget's console."), 403
    if not hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), expected):
        return render_template("errors/message.html", title="Set up the widget",
                               message="This setup link is not valid. Use the link printed on the console."), 403
    if request.method == "GET":
        return render_template("auth/setup.html", token=token, error=None, email="")
    email = request.form.get("email", "").strip().lower()
    password = request.form.get("password", "")
    error = None
    if "@" not in email:
        error = "Enter the administrator's email address."
    elif len(password) < 12:
        error = "Choose a password of at least 12 characters."
    elif password != request.form.get("confirm", ""):
        error = "The two passwords differ."
    if error:
        return render_template("auth/setup.html", token=token, error=error, email=email), 422
    user = _find_user(email) or User(email=email, display_name=email.split("@")[0])
    user.is_admin = True
    user.admin_password_hash = generate_password_hash(password)
    db.session.add(user)
    db.session.delete(db.session.get(Setting, SETUP_TOKEN_KEY))
    db.session.commit()
    sign_in(user)
    return redirect(url_for("admin.index"))
