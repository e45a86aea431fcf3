"""Tasks from the dashboard: New Task (subject, due date, reminder, importance, notes) and Mark complete.

Exchange first, then the local store (widget.sync.calendar_actions), so that what the dashboard lists is real.
A task the user does not own answers 404, like one that does not exist.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from .. import local_time, settings
from ..exchange.problems import ExchangeProblem
from ..exchange.values import IMPORTANCES
from ..extensions import db, limiter
from ..htmx import TASKS_CHANGED, is_htmx, page_popup_or_form
from ..models import Task
from .dashboard import _tasks_context
from .mailbox_access import mailbox_problem, note_refused_password, status_for
from .meeting_form import MAX_NOTES, MAX_SUBJECT, YEARS, parse_wall, plain_text

bp = Blueprint("tasks", __name__)


def _user() -> Any:
    return current_user._get_current_object()


def _render(values: dict[str, str], errors: dict[str, str] | None = None, problem: str | None = None,
            status: int = 200) -> ResponseReturnValue:
    template = page_popup_or_form("tasks/new.html", "tasks/new_modal.html", "tasks/_form.html")
    zone = local_time.user_zone(current_user, settings.load())
    return render_template(template, values=values, errors=errors or {}, problem=problem, importances=IMPORTANCES,
                           zone_name=zone.key), status


@bp.route("/tasks/new", methods=["GET"])
@login_required
def new() -> ResponseReturnValue:
    """The New Task form."""
    return _render({"subject": "", "due": "", "reminder_at": "", "importance": "Normal", "notes": ""})


def _check(values: dict[str, str], zone: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The task's values for Exchange, or each field's error."""
    errors: dict[str, str] = {}
    subject = " ".join(values["subject"].split())
    if not subject:
        errors["subject"] = "Enter a subject."
    elif len(subject) > MAX_SUBJECT:
        errors["subject"] = f"The subject is too long (at most {MAX_SUBJECT} characters)."
    due = None
    if values["due"].strip():
        try:
            day = date.fromisoformat(values["due"].strip())
            if day.year not in YEARS:
                raise ValueError(day)
            due = datetime.combine(day, time(), tzinfo=zone)
        except ValueError:
            errors["due"] = f"“{values['due'].strip()}” is not a date, such as 2027-03-15."
    reminder_at = None
    typed = values["reminder_at"].strip()
    if values["reminder"]:
        reminder_at = parse_wall(typed, zone) if typed else None
        if reminder_at is None:
            errors["reminder_at"] = (f"“{typed}” is not a date and time in {zone.key}." if typed
                                     else f"Choose when the reminder comes ({zone.key}).")
    if values["importance"] not in IMPORTANCES:
        errors["importance"] = "Choose Low, Normal or High."
    notes = values["notes"].replace("\r\n", "\n")
    if len(notes) > MAX_NOTES:
        errors["notes"] = "The notes are too long."
    return {"subject": subject, "due": due, "reminder_at": reminder_at, "notes": notes,
            "importance": values["importance"]}, errors


@bp.route("/tasks/new", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def create() -> ResponseReturnValue:
    """Create the task in Exchange, then store it; errors come back beside their fields and nothing is created."""
    values = {key: plain_text(request.form.get(key, ""))
              for key in ("subject", "due", "reminder_at", "importance", "notes")}
    values["reminder"] = "on" if request.form.get("reminder") in ("on", "true", "1") else ""
    current = settings.load()
    checked, errors = _check(values, local_time.user_zone(current_user, current))
    if errors:
        return _render(values, errors, status=422)
    problem = mailbox_problem(_user(), current)
    if problem:
        return _render(values, problem=problem, status=409)
    from ..sync import calendar_actions

    try:
        task = calendar_actions.create_task(_user(), calendar_actions.TaskDraft(**checked))
    except ExchangeProblem as refused:
        note_refused_password(_user(), refused)
        return _render(values, problem=refused.message, status=status_for(refused))
    if not is_htmx():
        return redirect(url_for("dashboard.index", task=task.id), 303)
    return render_template("tasks/_created.html", task=task), 200, {"HX-Trigger": TASKS_CHANGED}


@bp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@login_required
@limiter.limit("60 per minute")
def complete(task_id: int) -> ResponseReturnValue:
    """Mark complete: in Exchange, then here; answers the refreshed list of open tasks."""
    task = db.session.get(Task, task_id)
    if task is None or task.user_id != current_user.id:
        abort(404)
    current = settings.load()
    problem = mailbox_problem(_user(), current)
    status = 200
    if problem is None and not task.is_complete:
        from ..sync import calendar_actions

        try:
            calendar_actions.complete_task(_user(), task)
        except ExchangeProblem as refused:
            note_refused_password(_user(), refused)
            problem, status = refused.message, status_for(refused)
    elif problem is not None:
        status = 409
    if not is_htmx():
        if problem:
            return render_template("errors/message.html", title="The task is not completed", message=problem), status
        return redirect(url_for("dashboard.index"), 303)
    # The answer is the refreshed list itself (no tasks-changed event: the list would only ask for itself again).
    return render_template("dashboard/_tasks.html", task_problem=problem, **_tasks_context(current)), status
