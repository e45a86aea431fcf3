"""The sync history: every recorded sync run, newest first, 50 to a page.

- GET /sync/history: a user sees their own runs only, whatever the query string says; an administrator sees
  everyone's, with each run's user, and can filter them by user (`q`, part of an address or a name).
- Each run: when it started (in the viewer's time zone, with the zone named), how long it took, its folders,
  what it created, updated and deleted, the requests it made, its outcome in words and its error.
- A run still marked running is shown as running, with its progress, only while its account is claimed by a
  worker and no later run of that account exists; otherwise its worker died mid-way and it says so.
- Page links work without JavaScript; with htmx they swap the list only (the same URL answers both, so the
  response varies on HX-Request). While a run on the page is running, the list refreshes itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Any

from flask import Blueprint, make_response, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import func, or_

from .. import local_time, settings
from ..extensions import db
from ..htmx import targets
from ..models import SyncRun, User
from ..sync.labels import folder_label
from ..text_search import LIKE_ESCAPE, contains
from .paging import page_number

bp = Blueprint("history", __name__)

PER_PAGE = 50
MAX_QUERY = 200
LIST_ID = "sync-runs"
TIME_PATTERN = "%d %b %Y, %H:%M:%S"  # seconds too: runs of one account can start within a minute

# An outcome (SyncRun.outcome) in words, and the style class of those words.
OUTCOME_WORDS = {
    "ok": ("Synced", "success"),
    "off": ("Not run: sync is turned off", "hint"),
    "needs_password": ("Stopped: Exchange refused the stored password", "error"),
    "service_refused": ("Stopped: Exchange refused the service account's password", "error"),
    "throttled": ("Postponed: Exchange was busy", "hint"),
    "mailbox_moving": ("Postponed: the mailbox is being moved", "hint"),
    "error": ("Failed", "error"),
    "interrupted": ("Interrupted: the sync stopped before it finished", "error"),
}
RUNNING = ("Running", "running")
INTERRUPTED = OUTCOME_WORDS["interrupted"]


@dataclass(frozen=True)
class RunRow:
    """One run as the page shows it."""

    run: SyncRun
    user_email: str
    started: str
    duration: str | None  # None while running, or when the run never finished
    folders: str
    outcome: str
    outcome_class: str
    live: bool


def duration_text(length: timedelta) -> str:
    """A run's length in words a person reads at a glance (e.g. "2 min 5 s")."""
    seconds = int(length.total_seconds())
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _live_run_ids(runs: list[SyncRun], users: dict[int, User]) -> set[int]:
    """The runs marked running that really are: the latest of an account whose sync is claimed right now."""
    marked = [run for run in runs if run.outcome == "running"]
    if not marked:
        return set()
    latest = dict(db.session.execute(
        db.select(SyncRun.user_id, func.max(SyncRun.id))
        .where(SyncRun.user_id.in_({run.user_id for run in marked})).group_by(SyncRun.user_id)).all())
    return {run.id for run in marked
            if latest.get(run.user_id) == run.id and users[run.user_id].sync_claimed_at is not None}


def _row(run: SyncRun, user: User, live: bool, zone: tzinfo) -> RunRow:
    if live:
        outcome, css = RUNNING
    elif run.outcome == "running":
        outcome, css = INTERRUPTED
    else:
        outcome, css = OUTCOME_WORDS.get(run.outcome, (run.outcome.replace("_", " ").capitalize(), "hint"))
    return RunRow(
        run=run,
        user_email=user.email,
        started=local_time.shown(run.started_at, zone, TIME_PATTERN),
        duration=duration_text(run.finished_at - run.started_at) if run.finished_at else None,
        folders=", ".join(folder_label(folder) for folder in run.folders or []) or "—",
        outcome=outcome,
        outcome_class=css,
        live=live,
    )


def _history_context() -> dict[str, Any]:
    """The page of runs the viewer may see, and what the templates need around it."""
    is_admin = bool(current_user.is_admin)
    # Only an administrator's filter is read: a user's runs are theirs, whatever parameters they add.
    query = request.args.get("q", "").strip()[:MAX_QUERY] if is_admin else ""
    select = db.select(SyncRun, User).join(User, User.id == SyncRun.user_id)
    if not is_admin:
        select = select.where(SyncRun.user_id == current_user.id)
    elif query:
        pattern = contains(query, lower=True)
        select = select.where(or_(func.lower(User.email).like(pattern, escape=LIKE_ESCAPE),
                                  func.lower(User.display_name).like(pattern, escape=LIKE_ESCAPE)))
    total = db.session.scalar(db.select(func.count()).select_from(select.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(page_number(), pages)
    # Newest first by id: a run is recorded as it starts, and the primary key orders millions of runs unaided.
    found = db.session.execute(select.order_by(SyncRun.id.desc())
                               .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    users = {user.id: user for _, user in found}
    live = _live_run_ids([run for run, _ in found], users)
    zone = local_time.user_zone(current_user, settings.load())

    def page_url(number: int) -> str:
        return url_for("history.index", q=query or None, page=number)

    return {
        "rows": [_row(run, user, run.id in live, zone) for run, user in found],
        "total": total, "page": page, "pages": pages, "page_url": page_url, "query": query,
        "is_admin": is_admin, "any_live": bool(live), "list_id": LIST_ID,
        "zone_name": zone.key,
    }


@bp.route("/sync/history")
@login_required
def index() -> ResponseReturnValue:
    """The sync history: the user's own runs, or everyone's for an administrator (filtered by user on request)."""
    context = _history_context()
    if targets(LIST_ID):
        body = render_template("history/_runs.html", **context)
    elif context["is_admin"]:
        body = render_template("history/admin.html", **context)
    else:
        body = render_template("history/index.html", **context)
    response = make_response(body)
    response.vary.add("HX-Request")
    return response
