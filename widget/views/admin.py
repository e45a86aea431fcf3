"""The administrator's pages: Exchange server, impersonation, sync settings, users, embedding.

Every page is a plain form that works without JavaScript (errors are re-rendered beside the submitted values,
with status 422; a successful save redirects back with "Saved."). The two tests — Test connection and the
impersonation test — are htmx buttons that post the form's current, unsaved values and swap in a result;
without JavaScript they answer the whole page with the result. Secrets are never shown back: a blank secret
keeps the stored one, and the launch secret is shown once, right after it was generated.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import tempfile
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any
from zoneinfo import available_timezones

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import func, or_

from .. import credential_budget, service_account, settings
from ..credential_budget import CredentialsHeld, Policy
from ..extensions import db, limiter
from ..htmx import is_htmx
from ..models import CalendarItem, Email, Task, User
from ..settings import EWS_VERSIONS, FIELDS, FIELDS_BY_KEY, SYNC_TYPE_LABELS, SettingsError, WidgetSettings
from ..text_search import LIKE_ESCAPE, contains

bp = Blueprint("admin", __name__, url_prefix="/admin")

SERVER_KEYS = ("ews_url", "ews_auth", "ews_verify_tls", "ews_ca_bundle", "ews_version", "lockout_threshold",
               "lockout_window_minutes")
IMPERSONATION_KEYS = ("impersonation", "service_username", "service_domain", "service_password")
_KEYS = [field.key for field in FIELDS]
SYNC_KEYS = tuple(_KEYS[_KEYS.index("sync_emails"):_KEYS.index("default_time_zone") + 1])
EMBEDDING_KEYS = ("frame_origins",)
USERS_SHOWN = 200

CHOICE_LABELS = {
    **SYNC_TYPE_LABELS,
    "": "Automatic (ask the server)",
    **{version: version.replace("Exchange", "Exchange ").replace("_", " ") for version in EWS_VERSIONS if version},
    "private": "Private: each user sees their own email",
    "team": "Team-wide: everyone sees the email on a record",
    "exchange_wins": "Exchange wins",
    "crm_wins": "CRM wins",
    "latest_wins": "The latest change wins",
}



def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only administrators: others get 403 (anonymous visitors are sent to sign in first)."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


@bp.errorhandler(403)
def forbidden(error: Exception) -> ResponseReturnValue:
    """A signed-in user who is not an administrator."""
    return render_template("errors/message.html", title="Administrators only",
                           message="Only an administrator of the widget can open this page."), 403


@bp.context_processor
def _admin_context() -> dict[str, Any]:
    return {"choice_labels": CHOICE_LABELS}


# -- Forms of settings --------------------------------------------------------------------------------------------

def _display(key: str, value: Any) -> Any:
    """A setting's value as a form shows it (secrets are never shown)."""
    field = FIELDS_BY_KEY[key]
    if field.kind == "secret":
        return ""
    if field.kind == "list":
        return "\n".join(value or [])
    if field.kind == "bool":
        return bool(value)
    return "" if value is None else str(value)


def _shown(keys: tuple[str, ...], current: WidgetSettings, submitted: bool = False) -> dict[str, Any]:
    """The values a form shows: the submitted ones (after an error or a test), else the settings in effect."""
    shown = {}
    for key in keys:
        field = FIELDS_BY_KEY[key]
        if not submitted or key in current.pinned or field.kind == "secret":
            shown[key] = _display(key, getattr(current, key))
        elif field.kind == "bool":
            shown[key] = key in request.form and request.form.get(key) not in ("", "0", "off", "false")
        else:
            shown[key] = request.form.get(key, "")
    return shown


def _submitted(keys: tuple[str, ...], current: WidgetSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """The typed values of the form's editable fields, and the errors per field."""
    editable = tuple(key for key in keys if key not in current.pinned)
    try:
        return settings.validate(request.form, editable), {}
    except SettingsError as error:
        return {}, error.errors


def _effective(key: str, values: dict[str, Any], current: WidgetSettings) -> Any:
    """A field's value once the form is saved: the submitted one, else the one in effect."""
    return values[key] if key in values else getattr(current, key)


def _page(template: str, keys: tuple[str, ...], status: int = 200, *, submitted: bool = False,
          errors: dict[str, str] | None = None, **context: Any) -> ResponseReturnValue:
    current = settings.load()
    return render_template(
        template, current=current, fields=[FIELDS_BY_KEY[key] for key in keys],
        shown=_shown(keys, current, submitted), errors=errors or {}, pinned=current.pinned, **context,
    ), status


def _save_or_errors(keys: tuple[str, ...], check: Callable[[dict[str, Any], WidgetSettings], dict[str, str]]
                    | None = None) -> dict[str, str]:
    """Validate and save the form's fields; returns the errors per field (nothing is saved if there is any)."""
    current = settings.load()
    values, errors = _submitted(keys, current)
    if not errors and check is not None:
        errors = check(values, current)
    if errors:
        return errors
    settings.save(values)
    return {}


def _saved(endpoint: str) -> ResponseReturnValue:
    flash("Saved.")
    return redirect(url_for(endpoint))


# -- Overview -----------------------------------------------------------------------------------------------------

@bp.route("/")
@admin_required
def index() -> ResponseReturnValue:
    """The administrator's start page: what is set up, and the sections."""
    current = settings.load()
    counts = dict(
        users=db.session.scalar(db.select(func.count(User.id)).where(User.is_admin.is_(False))) or 0,
        disabled=db.session.scalar(db.select(func.count(User.id)).where(User.disabled.is_(True))) or 0,
    )
    return render_template("admin/index.html", current=current, counts=counts)


# -- Exchange server ----------------------------------------------------------------------------------------------

def _check_server(values: dict[str, Any], current: WidgetSettings) -> dict[str, str]:
    errors = {}
    if not _effective("ews_url", values, current):
        errors["ews_url"] = "Enter the EWS URL or the server's host name."
    bundle = values.get("ews_ca_bundle", "")
    if bundle and not _valid_pem(bundle):
        errors["ews_ca_bundle"] = ("CA certificates must be PEM certificates (-----BEGIN CERTIFICATE----- ... "
                                   "-----END CERTIFICATE-----).")
    return errors


def _valid_pem(text: str) -> bool:
    if "-----BEGIN CERTIFICATE-----" not in text:
        return False
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        return False
    return True


@bp.route("/server", methods=["GET", "POST"])
@admin_required
def server() -> ResponseReturnValue:
    """Exchange server: EWS URL or host, authentication, TLS verification and CA bundle, version pin."""
    if request.method == "GET":
        return _page("admin/server.html", SERVER_KEYS, **_server_context())
    errors = _save_or_errors(SERVER_KEYS, _check_server)
    if errors:
        return _page("admin/server.html", SERVER_KEYS, 422, submitted=True, errors=errors, **_server_context())
    return _saved("admin.server")


def _service_login(current: WidgetSettings) -> str | None:
    """The service account's Exchange login, when impersonation is on and the account is complete."""
    from ..exchange.factory import exchange_login

    if current.impersonation and current.service_username and current.is_set("service_password"):
        return exchange_login(current.service_username, current.service_domain)
    return None


def _server_context() -> dict[str, Any]:
    return {"service_login": _service_login(settings.load()),
            "test_username": request.form.get("test_username", "").strip()}


@contextlib.contextmanager
def _bundle_file(pem: str) -> Iterator[str | None]:
    """The PEM text in a file of the instance folder while a test runs (the tested values are not saved)."""
    if not pem.strip():
        yield None
        return
    handle, path = tempfile.mkstemp(prefix="test-ca-", suffix=".pem", dir=current_app.instance_path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(pem)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _credential_errors() -> dict[str, str]:
    username, password = request.form.get("test_username", "").strip(), request.form.get("test_password", "")
    if username and not password:
        return {"test_password": "Enter the password of the user to test signing in with."}
    if password and not username:
        return {"test_username": "Enter the user name to test signing in with."}
    return {}


def _stored_server_unchanged(values: dict[str, Any], current: WidgetSettings) -> bool:
    """Whether the form tests the saved server itself: the only one the stored service password may be sent to."""
    url = _effective("ews_url", values, current)
    # Over https the certificate checks decide who receives it as much as the URL does.
    keys = ("ews_verify_tls", "ews_ca_bundle") if url.lower().startswith("https:") else ()
    return url == current.ews_url and all(_effective(key, values, current) == getattr(current, key) for key in keys)


def _budgeted_diagnosis(username: str | None, password: str | None, policy: Policy, **probe: Any) -> Any:
    """diagnose(), with a sign-in counted against the tested identity's budget (CredentialsHeld when spent)."""
    from ..exchange.factory import diagnose_server

    if not (username and password):
        return diagnose_server(username=None, password=None, **probe)
    with credential_budget.attempt(username, policy) as tried:
        diagnosis = diagnose_server(username=username, password=password, **probe)
        tried.not_sent = not diagnosis.reached_sign_in or diagnosis.problem in credential_budget.NOT_SENT
        tried.failed = not diagnosis.signed_in and not tried.not_sent
    return diagnosis


@bp.route("/server/test", methods=["POST"])
@admin_required
@limiter.limit("20 per minute")
def server_test() -> ResponseReturnValue:
    """Test connection with the form's current values (not saved): names the first check that fails.

    The stored service password is used only to sign in to the saved server: with another URL (or other TLS
    settings) the test asks for the password, so that an administrator cannot have it sent to a server of theirs.
    """
    from ..exchange.factory import diagnosis_timeout

    current = settings.load()
    values, errors = _submitted(SERVER_KEYS, current)
    if not errors:
        errors = _check_server(values, current)
    errors.update(_credential_errors())
    username = request.form.get("test_username", "").strip()
    password = request.form.get("test_password", "")
    tested_as = "typed" if username else None
    if not username and _service_login(current):
        if _stored_server_unchanged(values, current):
            username, password, tested_as = _service_login(current), current.service_password, "service account"
        else:
            errors.setdefault("test_password", "The server differs from the saved one, and the widget sends the stored "
                                               "service password only to the saved server: enter the user name and "
                                               "password to test signing in here.")
    diagnosis, status = None, 422 if errors else 200
    if not errors:
        verify = _effective("ews_verify_tls", values, current)
        timeout = float(current_app.config.get("WIDGET_TEST_CONNECTION_TIMEOUT", diagnosis_timeout()))
        with _bundle_file(_effective("ews_ca_bundle", values, current) if verify else "") as bundle:
            try:
                diagnosis = _budgeted_diagnosis(
                    username or None, password or None, Policy.from_settings(current),
                    url=_effective("ews_url", values, current), auth=_effective("ews_auth", values, current),
                    verify_tls=verify, ca_bundle_file=bundle, version=_effective("ews_version", values, current),
                    timeout=timeout)
            except CredentialsHeld as held:
                errors["test_username"], status = held.message, 429
    if is_htmx():
        return render_template("admin/_test_result.html", diagnosis=diagnosis, test_errors=errors,
                               tested_as=tested_as), status
    return _page("admin/server.html", SERVER_KEYS, status, submitted=True, errors=errors, diagnosis=diagnosis,
                 tested_as=tested_as, test_errors=errors, **_server_context())


# -- Impersonation ------------------------------------------------------------------------------------------------

def _check_impersonation(values: dict[str, Any], current: WidgetSettings) -> dict[str, str]:
    errors = {}
    if _effective("impersonation", values, current):
        if not _effective("service_username", values, current):
            errors["service_username"] = ("Impersonation needs a service account: enter its user name "
                                          "(or turn impersonation off).")
        if not values.get("service_password") and not current.is_set("service_password"):
            errors["service_password"] = "Impersonation needs the service account's password."
        if not errors and service_account.refused():
            errors = _check_new_service_password(values, current)
    return errors


def _check_new_service_password(values: dict[str, Any], current: WidgetSettings) -> dict[str, str]:
    """After Exchange refused the service password: the new one must work (one impersonated request) before it is
    saved and the impersonated accounts resume."""
    from ..exchange.factory import act_for_mailbox, exchange_login
    from ..exchange.problems import ExchangeProblem

    password = values.get("service_password")
    if not password:
        return {"service_password": "Exchange refused the stored password of the service account: enter its new "
                                    "password."}
    mailbox = request.form.get("test_mailbox", "").strip().lower() or db.session.scalar(
        db.select(User.email).where(User.exchange_password.is_(None), User.is_admin.is_(False),
                                    User.disabled.is_(False)).order_by(User.id).limit(1))
    if not mailbox:
        return {}  # nobody is impersonated yet: nothing to check it against
    login = exchange_login(_effective("service_username", values, current),
                           _effective("service_domain", values, current))
    try:
        with credential_budget.attempt(login, Policy.from_settings(current)):
            act_for_mailbox(current, login, password, mailbox)
    except CredentialsHeld as held:
        return {"service_password": held.message}
    except ExchangeProblem as problem:
        return {"service_password": f"Not saved: acting for {mailbox} with this password failed. {problem.message}"}
    return {}


@bp.route("/impersonation", methods=["GET", "POST"])
@admin_required
def impersonation() -> ResponseReturnValue:
    """Impersonation: on/off and the service account (its password is stored encrypted and never shown). After
    Exchange refused the service password, a new one is saved only once it works, and every impersonated account
    then syncs again."""
    if request.method == "GET":
        return _page("admin/impersonation.html", IMPERSONATION_KEYS, mailbox="")
    was_refused = service_account.refused()
    errors = _save_or_errors(IMPERSONATION_KEYS, _check_impersonation)
    if errors:
        return _page("admin/impersonation.html", IMPERSONATION_KEYS, 422, submitted=True, errors=errors,
                     mailbox=request.form.get("test_mailbox", ""))
    if was_refused and settings.load().impersonation:
        resumed = service_account.resume()
        flash(f"Saved. Exchange accepts the service account's password: {resumed} impersonated "
              f"account{'s' if resumed != 1 else ''} sync again.")
        return redirect(url_for("admin.impersonation"))
    return _saved("admin.impersonation")


@bp.route("/impersonation/test", methods=["POST"])
@admin_required
@limiter.limit("20 per minute")
def impersonation_test() -> ResponseReturnValue:
    """Act for a chosen mailbox as the service account of the form (a blank password: the stored one)."""
    from ..exchange.factory import act_for_mailbox, exchange_login
    from ..exchange.problems import ExchangeProblem

    current = settings.load()
    values, errors = _submitted(IMPERSONATION_KEYS, current)
    mailbox = request.form.get("test_mailbox", "").strip().lower()
    username = _effective("service_username", values, current)
    password = values.get("service_password") or current.service_password
    if "@" not in mailbox:
        errors["test_mailbox"] = "Enter the email address of a mailbox to act for."
    if not username:
        errors.setdefault("service_username", "Enter the service account's user name first.")
    elif not password:
        errors.setdefault("service_password", "Enter the service account's password first.")
    outcome = None
    if not errors:
        try:
            login = exchange_login(username, _effective("service_domain", values, current))
            with credential_budget.attempt(login, Policy.from_settings(current)):
                count = act_for_mailbox(current, login, password, mailbox)
            noun = "item" if count == 1 else "items"
            outcome = {"ok": True, "message": f"The service account can act for {mailbox}: its Inbox holds "
                                              f"{count} {noun}."}
        except ExchangeProblem as problem:
            outcome = {"ok": False, "message": problem.message}
        except CredentialsHeld as held:
            outcome = {"ok": False, "message": held.message}
    status = 422 if errors else 200
    if is_htmx():
        return render_template("admin/_impersonation_result.html", outcome=outcome, test_errors=errors,
                               mailbox=mailbox), status
    return _page("admin/impersonation.html", IMPERSONATION_KEYS, status, submitted=True, errors=errors,
                 outcome=outcome, test_errors=errors, mailbox=mailbox)


# -- Sync settings ------------------------------------------------------------------------------------------------

@bp.route("/sync", methods=["GET", "POST"])
@admin_required
def sync() -> ResponseReturnValue:
    """Sync settings: sync type per module, interval, history, folders, exclusions, visibility, conflicts."""
    zones = sorted(available_timezones())
    if request.method == "GET":
        return _page("admin/sync.html", SYNC_KEYS, zones=zones)
    errors = _save_or_errors(SYNC_KEYS)
    if errors:
        return _page("admin/sync.html", SYNC_KEYS, 422, submitted=True, errors=errors, zones=zones)
    return _saved("admin.sync")


# -- Users --------------------------------------------------------------------------------------------------------

@bp.route("/users")
@admin_required
def users() -> ResponseReturnValue:
    """The users: status, last sync and its outcome; search by address or name."""
    query = request.args.get("q", "").strip()
    select = db.select(User).order_by(User.email)
    if query:
        pattern = contains(query, lower=True)
        select = select.where(or_(func.lower(User.email).like(pattern, escape=LIKE_ESCAPE),
                                  func.lower(User.display_name).like(pattern, escape=LIKE_ESCAPE)))
    rows = db.session.scalars(select.limit(USERS_SHOWN + 1)).all()
    current = settings.load()
    refused = service_account.refused()
    people = [(user, user.status_label(current.impersonation, refused)) for user in rows[:USERS_SHOWN]]
    return render_template("admin/users.html", people=people, query=query, more=len(rows) > USERS_SHOWN,
                           error=None), 200


def _target(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _users_refusal(message: str) -> ResponseReturnValue:
    """The Users page with why an action on it was refused."""
    current = settings.load()
    people = [(u, u.status_label(current.impersonation, service_account.refused())) for u in db.session.scalars(
        db.select(User).order_by(User.email).limit(USERS_SHOWN)).all()]
    return render_template("admin/users.html", people=people, query="", more=False, error=message), 422


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@admin_required
def disable_user(user_id: int) -> ResponseReturnValue:
    """Turn the widget off for a user: their sessions end at once and background sync stops."""
    user = _target(user_id)
    if user.id == current_user.id:
        return _users_refusal("You cannot disable yourself: another administrator can.")
    if not user.disabled:
        user.disabled = True
        user.session_version += 1  # every session of this user ends on its next request
        db.session.commit()
    flash(f"{user.email} is disabled: their sessions have ended.")
    return redirect(url_for("admin.users", q=request.form.get("q") or None))


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@admin_required
def enable_user(user_id: int) -> ResponseReturnValue:
    """Turn the widget on again for a user."""
    user = _target(user_id)
    if user.disabled:
        user.disabled = False
        db.session.commit()
    flash(f"{user.email} is enabled.")
    return redirect(url_for("admin.users", q=request.form.get("q") or None))


@bp.route("/users/<int:user_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_user(user_id: int) -> ResponseReturnValue:
    """Delete a user (after a page that asks): their sessions end, and their stored mail, calendar, tasks and sync
    history go with them (the database cascades). Nothing changes in Exchange."""
    user = _target(user_id)
    if user.id == current_user.id:
        return _users_refusal("You cannot delete yourself: another administrator can.")
    if request.method == "GET":
        counts = {model.__tablename__: db.session.scalar(db.select(func.count()).select_from(model).where(
            model.user_id == user.id)) for model in (Email, CalendarItem, Task)}
        return render_template("admin/delete_user.html", user=user, counts=counts), 200
    email = user.email
    db.session.delete(user)
    db.session.commit()
    flash(f"{email} is deleted, with the mail, calendar and tasks the widget kept for them.")
    return redirect(url_for("admin.users"))


# -- Embedding ----------------------------------------------------------------------------------------------------

@bp.route("/embedding", methods=["GET", "POST"])
@admin_required
def embedding() -> ResponseReturnValue:
    """Embedding: the CRM origins allowed to frame the widget, and the launch secret."""
    if request.method == "GET":
        return _page("admin/embedding.html", EMBEDDING_KEYS, new_secret=None)
    errors = _save_or_errors(EMBEDDING_KEYS)
    if errors:
        return _page("admin/embedding.html", EMBEDDING_KEYS, 422, submitted=True, errors=errors, new_secret=None)
    return _saved("admin.embedding")


@bp.route("/embedding/secret", methods=["POST"])
@admin_required
def launch_secret() -> ResponseReturnValue:
    """Generate (or rotate) the launch secret; this answer is the only time it is shown."""
    current = settings.load()
    if "launch_secret" in current.pinned:
        return _page("admin/embedding.html", EMBEDDING_KEYS, 422, new_secret=None,
                     secret_error="The launch secret is set by the environment (WIDGET_LAUNCH_SECRET): change it "
                                  "there.")
    rotated = current.is_set("launch_secret")
    value = secrets.token_urlsafe(32)
    settings.save({"launch_secret": value})
    return _page("admin/embedding.html", EMBEDDING_KEYS, new_secret=value, rotated=rotated)
