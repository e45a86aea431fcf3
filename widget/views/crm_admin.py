"""The administrator's pages of the CRM directory: the records (search, module filter, pages), the CSV import
(upload, map columns, preview, import) and the API tokens of the CRM's webhooks.

Like the other admin pages: administrators only (others get 403, anonymous visitors are sent to sign in),
a CSRF token on every POST, plain forms that work without JavaScript, errors re-rendered beside the
submitted values with status 422. An uploaded file waits in the instance folder under a random name
between the mapping and the import (never in the session) and is deleted after the import. A new API token
is shown once, in the answer that created it; only its SHA-256 is stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, or_
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from ..crm import csv_import, tokens
from ..crm.csv_import import MAX_UPLOAD_BYTES, CsvProblem, ParsedCsv, Plan, Upload
from ..crm.directory import MODULES, RELATIONS, addresses_of, counts_by_module
from ..extensions import db
from ..models import ApiToken, CrmAddress, CrmRecord
from ..text_search import LIKE_ESCAPE, contains
from .admin import CHOICE_LABELS, admin_required, forbidden
from .paging import page_number

bp = Blueprint("crm_admin", __name__, url_prefix="/admin/crm")
bp.register_error_handler(403, forbidden)

PAGE_SIZE = 50
PROBLEMS_SHOWN = 200
MAX_MB = MAX_UPLOAD_BYTES // (1024 * 1024)


@bp.context_processor
def _crm_context() -> dict[str, Any]:
    return {"choice_labels": CHOICE_LABELS, "modules": MODULES, "max_mb": MAX_MB}


@bp.url_value_preprocessor
def _limit_upload(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Before the CSRF check reads the form: a larger upload is refused while it is read, not stored first.
    if endpoint == "crm_admin.upload":
        request.max_content_length = MAX_UPLOAD_BYTES + 1024 * 1024  # the file, and the form around it


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: Exception) -> ResponseReturnValue:
    """An upload over the limit (said before anything of it is kept)."""
    return render_template("errors/message.html", title="File too large",
                           message=f"The file is larger than {MAX_MB} MB: split it into several files, or import it "
                                   f"with the command line (flask --app widget import-records)."), 413


# -- Records --------------------------------------------------------------------------------------------------------


def _names(module: str, crm_ids: set[str]) -> dict[str, str]:
    if not crm_ids:
        return {}
    return dict(db.session.execute(db.select(CrmRecord.crm_id, CrmRecord.name).where(
        CrmRecord.module == module, CrmRecord.crm_id.in_(sorted(crm_ids)))).all())


@bp.route("")
@admin_required
def records() -> ResponseReturnValue:
    """The directory's records: search by name, record id or address; filter by module; 50 per page."""
    query = request.args.get("q", "").strip()[:200]
    module = request.args.get("module", "")
    module = module if module in MODULES else ""
    page = page_number()
    select = db.select(CrmRecord)
    if module:
        select = select.where(CrmRecord.module == module)
    if query:
        pattern = contains(query, lower=True)
        select = select.where(or_(
            func.lower(CrmRecord.name).like(pattern, escape=LIKE_ESCAPE),
            func.lower(CrmRecord.crm_id).like(pattern, escape=LIKE_ESCAPE),
            CrmRecord.id.in_(db.select(CrmAddress.record_id)
                             .where(CrmAddress.address.like(pattern, escape=LIKE_ESCAPE))),
        ))
    total = db.session.scalar(db.select(func.count()).select_from(select.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(page, pages)
    rows = db.session.scalars(select.order_by(CrmRecord.module, func.lower(CrmRecord.name), CrmRecord.crm_id)
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    addresses = addresses_of([record.id for record in rows])
    accounts = _names("Accounts", {r.account_crm_id for r in rows if r.account_crm_id})
    contacts = _names("Contacts", {r.contact_crm_id for r in rows if r.contact_crm_id})
    shown = [(record, sorted(addresses[record.id])) for record in rows]

    def page_url(number: int) -> str:
        return url_for("crm_admin.records", q=query or None, module=module or None, page=number)

    return render_template("admin/crm_records.html", shown=shown, query=query, module=module, page=page,
                           pages=pages, total=total, counts=counts_by_module(), page_url=page_url,
                           account_names=accounts, contact_names=contacts)


# -- Import ---------------------------------------------------------------------------------------------------------

def _upload_page(status: int = 200, errors: dict[str, str] | None = None, module: str = "") -> ResponseReturnValue:
    return render_template("admin/crm_import.html", errors=errors or {}, module=module,
                           fields=csv_import.FIELDS), status


@bp.route("/import")
@admin_required
def upload_form() -> ResponseReturnValue:
    """Step 1: choose a CSV file and the module of its records."""
    return _upload_page(module=request.args.get("module", ""))


@bp.route("/import", methods=["POST"])
@admin_required
def upload() -> ResponseReturnValue:
    """Keep the uploaded file (if it reads as CSV) and go on to the mapping of its columns."""
    module = request.form.get("module", "")
    errors = {}
    if module not in MODULES:
        errors["module"] = f"Choose the module of the records: {', '.join(MODULES)}."
    file = request.files.get("file")
    data = b""
    if file is None or not file.filename:
        errors["file"] = "Choose a CSV file to import."
    else:
        data = file.stream.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise RequestEntityTooLarge()
        try:
            csv_import.read_csv(data)
        except CsvProblem as problem:
            errors["file"] = str(problem)
    if errors:
        return _upload_page(422, errors, module)
    upload_id = csv_import.save_upload(current_app.instance_path, data, file.filename or "", module)
    return redirect(url_for("crm_admin.mapping", upload_id=upload_id))


class UploadGone(NotFound):
    """An upload that was imported or cancelled already (or never was)."""


def _upload(upload_id: str) -> tuple[Upload, ParsedCsv]:
    upload = csv_import.load_upload(current_app.instance_path, upload_id)
    if upload is None:
        raise UploadGone()
    return upload, csv_import.read_csv(upload.data)  # it read once, at upload: it reads again


@bp.errorhandler(UploadGone)
def _gone(error: Exception) -> ResponseReturnValue:
    """An upload that is gone: say so, and how to go on."""
    return render_template("errors/message.html", title="Upload gone",
                           message="There is nothing at this address: an uploaded file is gone once it is imported "
                                   "or cancelled. Upload it again to import it."), 404


def _submitted_mapping(module: str, parsed: ParsedCsv) -> dict[str, int]:
    """The mapping of the form: a field left out of the form keeps the recognised column, "" maps none."""
    mapping = csv_import.detect_mapping(module, parsed.headers)
    for f in csv_import.fields_for(module):
        name = f"map-{f.key}"
        if name not in request.form:
            continue
        value = request.form[name]
        if value == "":
            mapping.pop(f.key, None)
        elif value.isascii() and value.isdigit() and len(value) < 6:
            mapping[f.key] = int(value)
        else:
            mapping[f.key] = -1  # not a column: check_mapping says so
    return mapping


def _preview(parsed: ParsedCsv, plan: Plan | None, mapping: dict[str, int]) -> list[dict[str, Any]]:
    """The first rows as they would be imported, each with its problems."""
    records = dict(plan.records) if plan else {}
    problems: dict[int, list[tuple[str, str]]] = {}
    if plan:
        for kind, items in (("error", plan.errors), ("warning", plan.warnings)):
            for problem in items:
                problems.setdefault(problem.line, []).append((kind, problem.message))
    preview = []
    for line, row in parsed.rows[:csv_import.PREVIEW_ROWS]:
        def cell(key: str, row: list[str] = row) -> str:
            index = mapping.get(key)
            return row[index].strip() if index is not None and 0 <= index < len(row) else ""

        record = records.get(line)
        if record is not None:
            values = {"crm_id": record.crm_id, "name": record.name, "emails": ", ".join(record.emails),
                      "account": record.account_crm_id or "", "contact": record.contact_crm_id or ""}
        else:
            name = cell("name") or " ".join(p for p in (cell("first_name"), cell("last_name")) if p)
            values = {"crm_id": cell("crm_id"), "name": name,
                      "emails": ", ".join(e for e in (cell("email"), cell("secondary_email")) if e),
                      "account": cell("account_id") or cell("account_name"),
                      "contact": cell("contact_id") or cell("contact_name")}
        preview.append({"line": line, "cells": values, "problems": problems.get(line, []),
                        "imported": record is not None})
    return preview


def _mapping_page(upload: Upload, parsed: ParsedCsv, mapping: dict[str, int], status: int = 200,
                  submitted: bool = False) -> ResponseReturnValue:
    module = upload.module
    errors = csv_import.check_mapping(module, mapping, parsed.headers)
    plan = None if errors else csv_import.plan_import(parsed, module, mapping)
    samples = parsed.rows[0][1] if parsed.rows else []
    columns = [(index, header, samples[index].strip() if index < len(samples) else "")
               for index, header in enumerate(parsed.headers)]
    detected = csv_import.detect_mapping(module, parsed.headers)
    return render_template(
        "admin/crm_mapping.html", upload=upload, parsed=parsed, mapping=mapping, errors=errors, plan=plan,
        fields=csv_import.fields_for(module), columns=columns, preview=_preview(parsed, plan, mapping),
        recognised=bool(detected) and detected == mapping, submitted=submitted, shown_max=PROBLEMS_SHOWN,
        relations=RELATIONS[module],
    ), status


@bp.route("/import/<upload_id>")
@admin_required
def mapping(upload_id: str) -> ResponseReturnValue:
    """Step 2: the columns mapped to fields (recognised ones preset), a preview of the first rows, the problems."""
    upload, parsed = _upload(upload_id)
    return _mapping_page(upload, parsed, csv_import.detect_mapping(upload.module, parsed.headers))


@bp.route("/import/<upload_id>", methods=["POST"])
@admin_required
def import_upload(upload_id: str) -> ResponseReturnValue:
    """Preview with the submitted mapping, or import: good rows in one transaction, the others listed."""
    upload, parsed = _upload(upload_id)
    mapping_ = _submitted_mapping(upload.module, parsed)
    errors = csv_import.check_mapping(upload.module, mapping_, parsed.headers)
    if request.form.get("action") != "import" or errors:
        return _mapping_page(upload, parsed, mapping_, 422 if errors else 200, submitted=True)
    plan = csv_import.plan_import(parsed, upload.module, mapping_)
    try:
        result = csv_import.run_import(plan)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    csv_import.delete_upload(current_app.instance_path, upload_id)
    return render_template("admin/crm_import_result.html", upload=upload, plan=plan, result=result.upsert,
                           shown_max=PROBLEMS_SHOWN)


@bp.route("/import/<upload_id>/cancel", methods=["POST"])
@admin_required
def cancel_import(upload_id: str) -> ResponseReturnValue:
    """Forget an uploaded file without importing it."""
    csv_import.delete_upload(current_app.instance_path, upload_id)
    flash("The upload is cancelled: nothing was imported.")
    return redirect(url_for("crm_admin.upload_form"))


# -- API tokens -----------------------------------------------------------------------------------------------------

def _tokens_page(status: int = 200, **context: Any) -> ResponseReturnValue:
    rows = db.session.scalars(db.select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()
    context.setdefault("new_token", None)
    context.setdefault("error", None)
    context.setdefault("name", "")
    return render_template("admin/crm_tokens.html", tokens=rows, **context), status


@bp.route("/tokens")
@admin_required
def tokens_page() -> ResponseReturnValue:
    """The API tokens: name, when created, last used, revoked; a form to issue one."""
    return _tokens_page()


@bp.route("/tokens", methods=["POST"])
@admin_required
def create_token() -> ResponseReturnValue:
    """Issue a token; this answer is the only time it is shown."""
    name = request.form.get("name", "")
    try:
        row, token = tokens.issue(name)
    except ValueError as error:
        return _tokens_page(422, error=str(error), name=name)
    db.session.commit()
    return _tokens_page(new_token=token, new_token_name=row.name)


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@admin_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    """Revoke a token: the API refuses it from now on."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        abort(404)
    if tokens.revoke(row):
        db.session.commit()
    flash(f"The token “{row.name}” is revoked: the API refuses it from now on.")
    return redirect(url_for("crm_admin.tokens_page"))
