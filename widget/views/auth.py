"""Signing in: Authorize with the Exchange password, launch from the CRM, sign out, and the first-run setup."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from .. import credential_budget, launch, settings
from ..addresses import MAX_LENGTH, AddressError, normalise_address
from ..credential_budget import CredentialsHeld, Policy
from ..extensions import db, limiter
from ..models import Setting, User
from ..secret_box import encrypt

bp = Blueprint("auth", __name__)

SETUP_TOKEN_KEY = "setup_token_sha256"


# Every refused sign-in gets this one answer, whether the password was wrong, the address is an administrator's or a
# disabled user's, or Exchange accepted the password but has no mailbox for it: no answer tells a right password or a
# kind of account apart.
REFUSED = ("This email and password do not match, or this account cannot use the widget. "
           "Check them (and the domain, if your company uses one).")
MAX_DOMAIN = 255


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only, never another site (nor a header of its own)."""
    if target and not any(ord(char) < 33 or char in "\\\x7f" for char in target):
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


def _held(held: CredentialsHeld) -> tuple[str, int, dict[str, str]]:
    page, _ = _render_signin(held.message, 429, email=request.form.get("email", "").strip()[:MAX_LENGTH])
    return page, 429, {"Retry-After": held.retry_after}


@bp.route("/signin", methods=["GET", "POST"])
# Per client: a ceiling for someone trying many addresses. What keeps accounts from being locked out is the budget
# per Exchange identity (widget.credential_budget), shared by every worker through the database.
@limiter.limit("20 per minute", methods=["POST"])
def signin() -> Response | tuple[str, int]:
    """Authorize: the email, password and domain are checked live against Exchange before anything is stored."""
    if request.method == "GET":
        return _render_signin(email=request.args.get("email", ""))
    from ..exchange.factory import check_credentials, exchange_login
    from ..exchange.problems import ExchangeProblem

    password = request.form.get("password", "")
    domain = request.form.get("domain", "").strip()
    try:
        email = normalise_address(request.form.get("email", ""))
    except AddressError as error:
        return _render_signin(f"Enter your email address, such as name@company.com ({error}).", 422,
                              email=request.form.get("email", "").strip()[:MAX_LENGTH], domain=domain[:MAX_DOMAIN])
    if not password:
        return _render_signin("Enter your password.", 422, email=email, domain=domain[:MAX_DOMAIN])
    if len(domain) > MAX_DOMAIN:
        return _render_signin(f"The domain is longer than {MAX_DOMAIN} characters.", 422, email=email)
    current = settings.load()
    policy = Policy.from_settings(current)
    user = _find_user(email)
    if user is not None and user.disabled:
        return _render_signin(REFUSED, 401, email=email)
    try:
        if user is not None and user.is_admin and user.admin_password_hash:
            # Administrators have a local password; it is never sent to Exchange, and guessing it is budgeted too.
            with credential_budget.attempt(email, policy) as tried:
                tried.failed = not check_password_hash(user.admin_password_hash, password)
            if tried.failed:
                return _render_signin(REFUSED, 401, email=email)
            sign_in(user)
            return redirect(safe_next(request.form.get("next")))
        login = exchange_login(email, domain)
        # A right password without a mailbox costs as a wrong one: the budget must not tell them apart either.
        with credential_budget.attempt(login, policy, also_failures=frozenset({"access"})):
            check_credentials(current, email, login, password)
    except CredentialsHeld as held:
        return _held(held)
    except ExchangeProblem as problem:
        if problem.kind in ("credentials", "access"):
            return _render_signin(REFUSED, 401, email=email, domain=domain)
        status = 403 if problem.kind == "locked" else 503
        return _render_signin(problem.message, status, email=email, domain=domain)
    if user is None:
        user = User(email=email, display_name=email.split("@")[0])
        db.session.add(user)
    user.authorize(login, encrypt(password), datetime.now(UTC))
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


def _cannot_open(message: str, status: int) -> tuple[str, int]:
    return render_template("errors/message.html", title="Cannot open the widget", message=message), status


def _reach_new_mailbox(current: settings.WidgetSettings, email: str) -> None:
    """Before a launch creates a user: the service account must reach `email`'s mailbox (ExchangeProblem if not)."""
    from ..exchange.factory import act_for_mailbox, exchange_login
    from ..exchange.problems import ExchangeProblem

    if not (current.service_username and current.is_set("service_password")):
        raise ExchangeProblem("not_configured", "Impersonation has no service account yet. Ask your administrator.")
    login = exchange_login(current.service_username, current.service_domain)
    with credential_budget.attempt(login, Policy.from_settings(current)):
        act_for_mailbox(current, login, current.service_password, email)


@bp.route("/launch")
def launch_view() -> Response | tuple[str, int]:
    """The CRM's way in: a signed, short-lived, single-use token names the user. Never an administrator's session."""
    # A launch attempt, accepted or not, ends the session that was there: a refused link must not leave the widget
    # open as whoever used this browser before.
    logout_user()
    session.clear()
    current = settings.load()
    try:
        claims = launch.read(current.launch_secret, request.args.get("token", ""))
        launch.redeem(claims)
    except launch.LaunchRefused as refused:
        return _cannot_open(str(refused), 400)
    user = _find_user(claims.email)
    if user is not None and user.is_admin:
        # Whoever holds the launch secret (it lives in the CRM's code) must not become an administrator.
        return _cannot_open("Administrators cannot open the widget from the CRM: sign in with your password at "
                            f"{url_for('auth.signin')} instead.", 403)
    if user is not None and user.disabled:
        return _cannot_open("Your administrator has turned off the widget for this account.", 403)
    if current.impersonation:
        if user is None:
            from ..exchange.problems import ExchangeProblem

            try:
                _reach_new_mailbox(current, claims.email)
            except CredentialsHeld as held:
                return _cannot_open(held.message, 429)
            except ExchangeProblem as problem:
                if problem.kind in ("access", "credentials", "not_configured"):
                    return _cannot_open(f"The widget cannot open a mailbox for {claims.email}: {problem.message}",
                                        403)
                return _cannot_open(problem.message, 503)
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
    # Never the Host header of whoever asked: that is the asker's to choose, and the link would lead to their site.
    public_url = current_app.config["WIDGET_SETTINGS"].public_url
    link = f"{public_url.rstrip('/')}/setup?token={token}" if public_url else f"/setup?token={token}"
    where = "" if public_url else " (on this widget's own address)"
    print(f"No administrator yet. Create one at: {link}{where}", file=sys.stderr, flush=True)
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
    email = request.form.get("email", "").strip()[:MAX_LENGTH]
    password = request.form.get("password", "")
    error = None
    try:
        email = normalise_address(email)
    except AddressError as refused:
        error = f"Enter the administrator's email address ({refused})."
    if error is None and len(password) < 12:
        error = "Choose a password of at least 12 characters."
    elif error is None and password != request.form.get("confirm", ""):
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
