"""The JSON API for the CRM's webhooks: `POST /api/crm/records` upserts and deletes directory records in batches.

- Authentication: `Authorization: Bearer <token>`, a token issued on /admin/crm/tokens (or by
  `flask --app widget api-token NAME`). No session, no cookie, no CSRF token: the bearer token is the
  credential. A missing, unknown or revoked token gets 401 with `WWW-Authenticate: Bearer`.
- The body is checked whole before anything is applied (see widget/crm/batch.py for its shape); a problem
  gets 400 with `{"error": "...", "errors": [...]}` naming where it is, e.g.
  `upsert[3].emails[0]: 'x' is not an e-mail address`. More than 1000 records, or a body over 8 MB, gets 413.
- A good batch is applied in one transaction and answered with its counts:
  `{"created": 1, "updated": 0, "unchanged": 0, "deleted": 1, "relink": true}` (`relink`: addresses new to
  the directory make every account re-link its past mail on its next sync).
- Rate limited per client address; a refusal is 429 with a JSON error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from ..crm import tokens
from ..crm.batch import MAX_RECORDS, BatchError, parse_batch
from ..crm.directory import delete_records, upsert_records
from ..extensions import csrf, db, limiter

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

MAX_BODY_BYTES = 8 * 1024 * 1024
RATE_LIMIT = "300 per minute"


def _error(status: int, errors: list[str] | str, **headers: str) -> ResponseReturnValue:
    errors = [errors] if isinstance(errors, str) else errors
    response = jsonify(error=errors[0], errors=errors)
    response.status_code = status
    response.headers.update(headers)
    return response


def _unauthorized(message: str, invalid: bool) -> ResponseReturnValue:
    challenge = 'Bearer realm="widget"'
    if invalid:
        challenge += f', error="invalid_token", error_description="{message}"'
    return _error(401, message, **{"WWW-Authenticate": challenge})


@bp.url_value_preprocessor
def _limit_body(endpoint: str | None, values: dict[str, Any] | None) -> None:
    # Before any before_request reads the body: a larger body is refused while it is read (413).
    request.max_content_length = MAX_BODY_BYTES


def _http_error(error: HTTPException) -> ResponseReturnValue:
    """Errors of this API in JSON, as its callers read them (not the HTML pages of the rest of the widget)."""
    messages = {
        413: f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB: send smaller batches",
        429: f"too many requests: at most {RATE_LIMIT}; wait, then send again",
        500: "the widget failed to apply the batch; nothing of it was applied",
    }
    return _error(error.code or 500, messages.get(error.code or 500, error.description or error.name))


# By code: the app's own handlers for these codes (HTML pages) would otherwise come first.
for _code in (400, 401, 403, 404, 405, 413, 429, 500):
    bp.register_error_handler(_code, _http_error)


def _bounded_int(text: str) -> int:
    # No value of a batch is a number this long; Python would refuse to convert one over 4300 digits anyway.
    if len(text.lstrip("-")) > 30:
        raise ValueError(f"a number of {len(text)} digits, longer than any id")
    return int(text)


def _bearer_token() -> tuple[str | None, str | None]:
    """(token, None), or (None, what is wrong with the Authorization header)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None, "the Authorization header is missing: send Authorization: Bearer <token>"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the Authorization header must be Bearer <token>"
    return token.strip(), None


@bp.route("/crm/records", methods=["POST"])
@limiter.limit(RATE_LIMIT)
def crm_records() -> ResponseReturnValue:
    """Upsert and delete CRM records in one batch: all of it or, if any part is wrong, none of it."""
    token, problem = _bearer_token()
    if token is None:
        return _unauthorized(problem or "", invalid=False)
    try:
        row = tokens.authenticate(token)
    except tokens.TokenRefused as refused:
        return _unauthorized(refused.message, invalid=True)
    body = request.get_data(cache=False)
    if not body.strip():
        return _error(400, 'the body is empty: send a JSON object such as {"upsert": [...], "delete": [...]}')
    try:
        payload = json.loads(body.decode("utf-8-sig"), parse_int=_bounded_int)
    except UnicodeDecodeError:
        return _error(400, "the body is not UTF-8 text")
    except json.JSONDecodeError as error:
        return _error(400, f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}")
    except RecursionError:
        return _error(400, "the body nests arrays or objects deeper than a batch of records does")
    except ValueError as error:
        return _error(400, f"the body is not a batch of records: {error}")
    try:
        batch = parse_batch(payload, MAX_RECORDS)
    except BatchError as error:
        return _error(error.status, error.errors)
    for attempt in range(2):
        try:
            result = upsert_records(batch.upserts)
            deleted = delete_records(batch.deletes)
            row.last_used_at = datetime.now(UTC)
            db.session.commit()
            break
        except IntegrityError:
            # Another request created one of these records meanwhile: once more, now as an update.
            db.session.rollback()
            if attempt:
                return _error(409, "another request changed the same records at the same time: send again")
        except Exception:
            db.session.rollback()
            raise
    return jsonify(created=result.created, updated=result.updated, unchanged=result.unchanged, deleted=deleted,
                   relink=result.relink)
