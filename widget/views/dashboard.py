"""The user's dashboard: sync type, the latest sync and its outcome, the user's status, the upcoming meetings and
appointments, the open tasks, New ▾ (Schedule Meeting, Schedule Appointment, New Task) and the user's time zone.

The two lists are regions that refresh themselves (GET /dashboard/upcoming, /dashboard/tasks) when a new item is
scheduled, a task is created or completed, or the time zone changes: those answers carry an HX-Trigger event
(calendar-changed, tasks-changed), so that a new item appears without a page reload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from .. import local_time, service_account, settings
from ..extensions import db, limiter
from ..htmx import CALENDAR_CHANGED, TASKS_CHANGED, is_htmx
from ..models import CalendarItem, SyncRun, Task
from ..settings import SYNC_TYPE_LABELS
from .paging import row_id

bp = Blueprint("dashboard", __name__)

UPCOMING_DAYS = 7  # today and the next seven days
LIST_LIMIT = 200  # rows per list: a dashboard, not an archive


@dataclass(frozen=True)
class Day:
    """The upcoming items of one day, in the user's zone."""

    day: date
    label: str
    items: list[CalendarItem]


@bp.route("/")
@bp.route("/dashboard")
@login_required
def index() -> str:
    """The dashboard."""
    current = settings.load()
    sync_types = {
        "Emails": "Off" if current.email_sync_off_reason else SYNC_TYPE_LABELS[current.sync_emails],
        "Calendar": SYNC_TYPE_LABELS[current.sync_calendar],
        "Tasks": SYNC_TYPE_LABELS[current.sync_tasks],
    }
    run = _latest_run()
    status = current_user.status_label(current.impersonation, service_account.refused())
    return render_template(
        "dashboard/index.html", sync_types=sync_types, status=status,
        email_off_reason=current.email_sync_off_reason, impersonation=current.impersonation, run=run,
        running=_is_running(run), message=None, done=_done_banner(),
        **_zone_form_context(local_time.user_zone_name(current_user, current)),
        **(_upcoming_context(current) | _tasks_context(current)),
    )


@bp.route("/sync-now", methods=["POST"])
@login_required
@limiter.limit("6 per minute")
def sync_now() -> ResponseReturnValue:
    """Sync now: start a sync of the user's mailbox in the background and answer with its progress."""
    from ..sync.dispatch import start_sync_now

    user = current_user._get_current_object()
    current = settings.load()
    reason = user.mailbox_unreachable_reason(current.impersonation, service_account.refused())
    if reason:
        return _sync_status(message=reason, code=409)
    start_sync_now(current_app._get_current_object(), user.id)  # (a sync already running shows its progress)
    return _sync_status(starting=True)


@bp.route("/sync-now/status")
@login_required
def sync_status() -> ResponseReturnValue:
    """The progress of the user's latest sync (polled while it runs)."""
    return _sync_status()


def _latest_run() -> SyncRun | None:
    return db.session.scalar(db.select(SyncRun).where(SyncRun.user_id == current_user.id)
                             .order_by(SyncRun.id.desc()).limit(1))


def _is_running(run: SyncRun | None) -> bool:
    return (run is not None and run.outcome == "running") or current_user.sync_claimed_at is not None


def _sync_status(*, message: str | None = None, code: int = 200, starting: bool = False) -> ResponseReturnValue:
    db.session.refresh(current_user._get_current_object())  # the sync runs in another thread: read its writes
    run = _latest_run()
    running = starting or _is_running(run)
    return render_template("dashboard/_sync_status.html", run=run, running=running, message=message), code


# -- upcoming meetings and appointments, open tasks ------------------------------------------------------------------
def _day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today + timedelta(days=1):
        return "Tomorrow"
    return day.strftime("%A %d %B")


def upcoming_days(user: Any, zone: tzinfo, now: datetime) -> list[Day]:
    """The user's meetings and appointments not over yet, from now to the end of the seventh day after today (in
    `zone`), by day: single items and the occurrences of recurring series (never the series' masters)."""
    today = now.astimezone(zone).date()
    horizon = datetime.combine(today + timedelta(days=UPCOMING_DAYS + 1), time(), tzinfo=zone)
    items = db.session.scalars(
        db.select(CalendarItem).where(
            CalendarItem.user_id == user.id, CalendarItem.is_recurring_master.is_(False),
            CalendarItem.end_at > now, CalendarItem.start_at < horizon,
        ).order_by(CalendarItem.start_at, CalendarItem.id).limit(LIST_LIMIT)
    ).all()
    days: dict[date, list[CalendarItem]] = {}
    for item in items:
        # An all-day event is a day of the calendar it was scheduled in, wherever it is read; an event that began
        # before today (a multi-day one, say) is listed under today.
        own = (local_time.zone_or_none(item.time_zone) or zone) if item.is_all_day else zone
        days.setdefault(max(item.start_at.astimezone(own).date(), today), []).append(item)
    return [Day(day, _day_label(day, today), listed) for day, listed in sorted(days.items())]


def open_tasks(user: Any) -> list[Task]:
    """The user's tasks not completed yet, the soonest due first (those without a due date last)."""
    return list(db.session.scalars(
        db.select(Task).where(Task.user_id == user.id, Task.is_complete.is_(False))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(LIST_LIMIT)
    ))


def _has_lists() -> bool:
    return not current_user.is_admin  # an administrator has no mailbox in the widget


def _upcoming_context(current: settings.WidgetSettings) -> dict[str, Any]:
    zone = local_time.user_zone(current_user, current)
    now = datetime.now(UTC)
    return {"days": upcoming_days(current_user, zone, now) if _has_lists() else [],
            "calendar_sync": SYNC_TYPE_LABELS[current.sync_calendar],
            "when": lambda moment, pattern="%H:%M": local_time.shown(moment, zone, pattern),
            "zone_label": zone.key}


def _tasks_context(current: settings.WidgetSettings) -> dict[str, Any]:
    zone = local_time.user_zone(current_user, current)
    # Exchange keeps a task's due date, not a time: the widget stores that day's midnight in the user's zone.
    return {"tasks": open_tasks(current_user) if _has_lists() else [],
            "today": datetime.now(UTC).astimezone(zone).date(),
            "due_day": lambda moment: moment.astimezone(zone).date()}


def _done_banner() -> str | None:
    """After a form sent without JavaScript: what was just created (the user's own item only)."""
    scheduled, task = row_id(request.args.get("scheduled", "")), row_id(request.args.get("task", ""))
    if scheduled is not None:
        item = db.session.get(CalendarItem, scheduled)
        if item is not None and item.user_id == current_user.id:
            return f"“{item.subject}” is scheduled."
    if task is not None:
        row = db.session.get(Task, task)
        if row is not None and row.user_id == current_user.id:
            return f"The task “{row.subject}” is saved."
    return None


@bp.route("/dashboard/upcoming")
@login_required
def upcoming() -> ResponseReturnValue:
    """The upcoming meetings and appointments (the region refreshes itself on calendar-changed)."""
    return render_template("dashboard/_upcoming.html", **_upcoming_context(settings.load()))


@bp.route("/dashboard/tasks")
@login_required
def tasks() -> ResponseReturnValue:
    """The open tasks (the region refreshes itself on tasks-changed)."""
    return render_template("dashboard/_tasks.html", **_tasks_context(settings.load()))


# -- the user's time zone --------------------------------------------------------------------------------------------
@bp.route("/dashboard/time-zone", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def time_zone() -> ResponseReturnValue:
    """Set the user's time zone (an IANA name); every time the widget shows is then in it."""
    chosen = request.form.get("time_zone", "").strip()
    current = settings.load()
    shown_now = local_time.user_zone_name(current_user, current)
    if chosen not in local_time.zone_choices() and chosen != shown_now:
        context = _zone_form_context(shown_now, error="Choose a time zone from the list, such as Europe/Berlin.")
        return render_template("dashboard/_time_zone.html", **context), 422
    current_user.time_zone = local_time.stored_choice(chosen)
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("dashboard.index"), 303)
    # The lists redraw their times in the new zone.
    return (render_template("dashboard/_time_zone.html", **_zone_form_context(chosen, saved=True)), 200,
            {"HX-Trigger": f"{CALENDAR_CHANGED}, {TASKS_CHANGED}"})


def _zone_form_context(shown: str, *, error: str | None = None, saved: bool = False) -> dict[str, Any]:
    """The time zone form: the zones to pick from (the one in effect among them, even when it is an alias such as
    the deployment default's "UTC"), which one is selected, and the outcome of the last save."""
    zones = local_time.zone_choices()
    selected = local_time.stored_choice(shown) if shown in (local_time.NOT_CHOSEN, local_time.CHOSEN_UTC) else shown
    if selected not in zones:
        zones = (selected, *zones)
    return {"zones": zones, "zone_name": selected, "zone_options": zone_options(zones, selected), "zone_error": error,
            "zone_saved": saved}


def zone_options(zones: tuple[str, ...], selected: str) -> Markup:
    """The <option>s of the time zone select, `selected` marked. Some 430 options rendered by the template took half
    of the dashboard's time, so their markup is built once per list and only the selected one changes."""
    value = f'<option value="{escape(selected)}">'
    return Markup(_zone_options_markup(zones).replace(value, value[:-1] + " selected>", 1))


@lru_cache(maxsize=8)
def _zone_options_markup(zones: tuple[str, ...]) -> str:
    return "".join(f'<option value="{escape(zone)}">{escape(zone.replace("_", " "))}</option>' for zone in zones)
