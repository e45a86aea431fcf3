"""Liveness for load balancers and monitors."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from ..extensions import csrf, db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
@csrf.exempt
def healthz() -> ResponseReturnValue:
    """200 with {"status": "ok"} when the database answers, 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
