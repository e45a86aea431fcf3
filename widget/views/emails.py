"""The Emails related list of a CRM record, reading an email, and sending one from a record.

- GET /crm/<module>/<record_id>/emails: the related list (newest first, paged, searchable; htmx live search
  swaps only the list, and the same URL answers a whole page without JavaScript).
- GET /emails/<id>: one email; its HTML body is served by GET /emails/<id>/body as its own sanitised document
  under a strict CSP and shown in an <iframe sandbox="">; plain text is escaped in a <pre>.
- GET/POST /crm/<module>/<record_id>/emails/new: compose and send through the user's own Exchange mailbox
  (Exchange first, so the result is real), then the sent email is stored at once and listed.

Authorization: a user sees and opens their own mail only, unless the administrator made email team-wide. Any
email the user may not see answers 404, like an id that does not exist (no confirmation that it does).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from .. import local_time, settings
from ..addresses import AddressError, parse_address_list
from ..crm.listing import emails_for_record
from ..crm.records import find_record, primary_address
from ..crm.visibility import visible_email
from ..exchange.problems import ExchangeProblem
from ..extensions import db, limiter
from ..htmx import is_htmx, page_popup_or_form, targets
from ..mail_html import BODY_CSP, body_document
from ..models import CRM_MODULES, User
from ..sync.sent_copies import send_from_widget
from .paging import page_number

bp = Blueprint("emails", __name__)

PER_PAGE = 25
MAX_RECIPIENTS = 100
MAX_SUBJECT = 255
MAX_BODY = 100_000
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^[^@\s<>(),;:\"\[\]\\]+@{_LABEL}(?:\.{_LABEL})+$")


# -- helpers ---------------------------------------------------------------------------------------------------------
def _module_or_404(module: str) -> str:
    if module not in CRM_MODULES:
        abort(404)
    return module


def _team_wide(current: settings.WidgetSettings) -> bool:
    return current.email_visibility == "team"


def _when(zone: tzinfo) -> Any:
    """The templates' `when(moment, long=False)`: an instant in `zone`, the zone named."""
    def when(moment: datetime | None, long: bool = False) -> str:
        return local_time.shown(moment, zone, "%a %d %b %Y, %H:%M" if long else "%d %b %Y, %H:%M")

    return when


def _size(number: int | None) -> str:
    number = int(number or 0)
    if number < 1024:
        return f"{number} bytes"
    if number < 1024 * 1024:
        return f"{number / 1024:.0f} KB"
    return f"{number / (1024 * 1024):.1f} MB"


def _list_context(module: str, record_id: str, current: settings.WidgetSettings) -> dict[str, Any]:
    query = request.args.get("q", "").strip()[:200]
    off_reason = current.email_sync_off_reason
    result = None
    if not off_reason:
        result = emails_for_record(current_user, module, record_id, query=query or None,
                                            page=page_number(), per_page=PER_PAGE, team_wide=_team_wide(current))
    zone = local_time.user_zone(current_user, current)
    return {
        "module": module, "record_id": record_id, "query": query, "result": result, "off_reason": off_reason,
        "record": result.record if result else find_record(module, record_id),
        "when": _when(zone), "zone_name": getattr(zone, "key", str(zone)), "team_wide": _team_wide(current),
        "can_send": not off_reason,
    }


# -- the related list ------------------------------------------------------------------------------------------------
@bp.route("/crm/<module>/<record_id>/emails")
@login_required
def related_list(module: str, record_id: str) -> ResponseReturnValue:
    """The Emails related list of a CRM record (Contacts, Leads, Accounts or Deals, by the CRM's own id)."""
    _module_or_404(module)
    context = _list_context(module, record_id, settings.load())
    if targets("email-list"):
        return render_template("emails/_list.html", **context)
    return render_template("emails/list.html", **context)


# -- one email ---------------------------------------------------------------------------------------------------------
def _visible_or_404(email_id: int) -> Any:
    email = visible_email(current_user, email_id, team_wide=_team_wide(settings.load()))
    if email is None:
        abort(404)
    return email


def _back_link() -> tuple[str, str] | None:
    """Where "Back" goes: the record's list the email was opened from (built from checked parts, not a URL)."""
    module, record_id = request.args.get("module", ""), request.args.get("record", "")
    if module in CRM_MODULES and record_id:
        return url_for("emails.related_list", module=module, record_id=record_id), module
    return None


@bp.route("/emails/<int:email_id>")
@login_required
def show(email_id: int) -> ResponseReturnValue:
    """One email: subject, from, to, cc, date, attachments, and its body (HTML in a sandboxed frame)."""
    current = settings.load()
    if current.email_sync_off_reason:
        abort(404)
    email = _visible_or_404(email_id)
    body_problem = _fetch_body_if_needed(email, current)
    attachments = [(name, _size(size)) for name, size in (email.attachments or [])]
    return render_template("emails/show.html", email=email, attachments=attachments, body_problem=body_problem,
                           when=_when(local_time.user_zone(current_user, current)), back=_back_link(),
                           owner=_owner_label(email))


def _fetch_body_if_needed(email: Any, current: settings.WidgetSettings) -> str | None:
    """Fetch the body of an email whose body the sync left for later (one GetItem, from its owner's mailbox);
    what stopped it, in words, or None."""
    if email.body_fetched:
        return None
    from ..exchange.factory import mailbox_for
    from ..exchange.problems import ExchangeProblem
    from ..sync.bodies import fetch_on_open

    owner = db.session.get(User, email.user_id)
    whose = "your" if owner.id == current_user.id else f"{owner.email}’s"
    if owner.disabled:
        # A turned-off account's stored password is not used for anyone, its owner's colleagues included.
        return "This email’s text is not here yet, and its owner’s account is turned off in the widget."
    if owner.password_refused:
        return (f"This email’s text is not here yet, and Exchange refused {whose} stored password: it can be "
                f"fetched once {'you authorize' if owner.id == current_user.id else 'they authorize'} again.")
    try:
        if fetch_on_open(email, mailbox_for(owner, current)):
            return None
    except ExchangeProblem as problem:
        db.session.rollback()
        owner.note_refusal(problem.refused_credentials)
        return f"This email’s text could not be fetched from Exchange: {problem.message}"
    return "This email is no longer in the mailbox in Exchange (deleted or moved); the next sync removes it here."


def _owner_label(email: Any) -> str | None:
    """Whose mailbox a colleague's email comes from (team-wide visibility); None for the user's own."""
    if email.user_id == current_user.id:
        return None
    owner = db.session.get(User, email.user_id)
    return owner.email if owner else None


@bp.route("/emails/<int:email_id>/body")
@login_required
def body(email_id: int) -> ResponseReturnValue:
    """The email's body as its own document: sanitised HTML (or escaped text) under a strict CSP."""
    if settings.load().email_sync_off_reason:
        abort(404)
    email = _visible_or_404(email_id)
    response = Response(body_document(email.body_html, email.body_text), mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    # The body document's own policy (widget.security keeps a CSP a view has set). Its frame-ancestors add
    # 'self', because the widget's own email page frames it inside the CRM's frame.
    origins = " ".join(settings.load().frame_origins)
    response.headers["Content-Security-Policy"] = f"{BODY_CSP}; frame-ancestors 'self' {origins}".rstrip()
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# -- sending from a record ---------------------------------------------------------------------------------------------
def _parse_addresses(raw: str, label: str, errors: dict[str, str], key: str) -> list[tuple[str, str]]:
    pairs = []
    try:
        found = parse_address_list(raw.replace(";", ","))
    except AddressError as error:
        errors[key] = f"{label}: {error}"
        return []
    for name, address in found:
        address = address.strip()
        if not address and not name.strip():
            continue
        if not _ADDRESS.match(address):
            errors[key] = f"{label}: “{(address or name).strip()}” is not an email address."
            return []
        pairs.append((address.lower(), name.strip()))
    if len(pairs) > MAX_RECIPIENTS:
        errors[key] = f"{label}: at most {MAX_RECIPIENTS} addresses."
    if not pairs and raw.strip() and key not in errors:
        errors[key] = f"{label}: “{raw.strip()}” is not an email address."
    return pairs


def _compose(module: str, record_id: str, values: dict[str, str], errors: dict[str, str] | None = None,
             problem: str | None = None, status: int = 200) -> ResponseReturnValue:
    template = page_popup_or_form("emails/compose.html", "emails/compose_modal.html", "emails/_compose_form.html")
    current = settings.load()
    return render_template(template, module=module, record_id=record_id, values=values, errors=errors or {},
                           problem=problem, off_reason=current.email_sync_off_reason,
                           record=find_record(module, record_id)), status


@bp.route("/crm/<module>/<record_id>/emails/new", methods=["GET"])
@login_required
def compose(module: str, record_id: str) -> ResponseReturnValue:
    """The compose form, with the record's address filled in."""
    _module_or_404(module)
    record = find_record(module, record_id)
    values = {"to": primary_address(record) if record else "", "cc": "", "subject": "", "body": ""}
    return _compose(module, record_id, values)


@bp.route("/crm/<module>/<record_id>/emails/new", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def send(module: str, record_id: str) -> ResponseReturnValue:
    """Send an email from the record through the user's Exchange mailbox; store and list it at once."""
    _module_or_404(module)
    values = {key: request.form.get(key, "") for key in ("to", "cc", "subject", "body")}
    current = settings.load()
    if current.email_sync_off_reason:
        return _compose(module, record_id, values, problem=current.email_sync_off_reason, status=409)
    if current_user.password_refused:
        # Never try a password Exchange refused: it is how accounts get locked out.
        return _compose(module, record_id, values, status=409,
                        problem="Exchange no longer accepts your stored password. Update your password, then send.")
    errors: dict[str, str] = {}
    to = _parse_addresses(values["to"], "To", errors, "to")
    cc = _parse_addresses(values["cc"], "Cc", errors, "cc")
    if not to and "to" not in errors:
        errors["to"] = "To: enter at least one email address."
    subject = " ".join(values["subject"].split())
    if not subject:
        errors["subject"] = "Enter a subject."
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"The subject is too long (at most {MAX_SUBJECT} characters)."
    text = values["body"].replace("\r\n", "\n")
    if not text.strip():
        errors["body"] = "Write a message."
    elif len(text) > MAX_BODY:
        errors["body"] = "The message is too long."
    if errors:
        return _compose(module, record_id, values, errors, status=422)

    try:
        email = send_from_widget(current_user._get_current_object(), current, subject=subject, text=text, to=to,
                                 cc=cc)
    except ExchangeProblem as problem:
        if problem.kind == "recipients":
            errors["to"] = "Exchange did not accept these recipients. Check the addresses."
            return _compose(module, record_id, values, errors, status=422)
        return _compose(module, record_id, values, problem=problem.message, status=503)
    if not is_htmx():
        return redirect(url_for("emails.related_list", module=module, record_id=record_id, sent=email.id), 303)
    context = _list_context(module, record_id, current)
    return render_template("emails/_sent.html", email=email, **context)
