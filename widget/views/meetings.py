"""Scheduling meetings and appointments, live availability, the attendee picker, and a record's Meetings list.

- GET /meetings/new?kind=meeting|appointment: the schedule form (a popup for htmx, a page without JavaScript).
- POST /meetings/new: Schedule (Exchange first, then stored; a meeting invites its attendees, an appointment
  nobody). Field errors come back inside the form beside each field with 422, and nothing is created. Without
  JavaScript the same POST also adds typed attendees, removes a chip, applies a suggested time or shows the
  availability, re-rendering the form.
- GET /meetings/availability: the availability grid (a fragment) of the user and the attendees over the chosen
  day, from ONE free/busy request, with the next times that suit everyone known.
- GET /meetings/people?q=: the attendee picker's options: CRM Leads and Contacts, people of the Exchange
  organisation (ResolveNames), or the typed address itself.
- GET /crm/<module>/<record_id>/meetings: the Meetings related list of a CRM record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from sqlalchemy import or_, select

from .. import local_time, settings
from ..crm.listing import meetings_for_record
from ..crm.records import primary_address
from ..exchange.problems import ExchangeProblem
from ..extensions import db, limiter
from ..htmx import CALENDAR_CHANGED, is_htmx, page_popup_or_form, targets
from ..models import CrmAddress, CrmRecord
from ..text_search import LIKE_ESCAPE, contains
from . import meeting_form
from .availability_grid import LEGEND, STATUSES, build_grid, day_window, meeting_minutes
from .emails import _module_or_404
from .mailbox_access import mailbox_problem, note_refused_password, status_for
from .paging import page_number

bp = Blueprint("meetings", __name__)

PER_PAGE = 25
CRM_PEOPLE = 8  # CRM records offered per lookup
MIN_LOOKUP = 2  # characters typed before the organisation's directory is asked
TITLES = {"meeting": "Schedule Meeting", "appointment": "Schedule Appointment"}


def _zone() -> Any:
    return local_time.user_zone(current_user, settings.load())


def _user() -> Any:
    return current_user._get_current_object()


# -- the form ------------------------------------------------------------------------------------------------------
def _render_form(form: meeting_form.ScheduleForm, *, errors: dict[str, str] | None = None, problem: str | None = None,
                 availability: dict[str, Any] | None = None, status: int = 200) -> ResponseReturnValue:
    template = page_popup_or_form("meetings/new.html", "meetings/new_modal.html", "meetings/_form.html")
    zone = _zone()
    return render_template(template, form=form, errors=errors or {}, problem=problem, title=TITLES[form.kind],
                           reminders=meeting_form.REMINDERS, zone_name=zone.key, availability=availability,
                           chip_value=meeting_form.chip_value, statuses=STATUSES, legend=LEGEND), status


@bp.route("/meetings/new", methods=["GET"])
@login_required
def new() -> ResponseReturnValue:
    """The schedule form: Schedule Meeting, or Schedule Appointment with ?kind=appointment. Attendees may be given
    in advance (?attendee=address, as a CRM record's Meetings list does)."""
    kind = meeting_form.kind_of(request.args.get("kind"))
    form = meeting_form.default_form(kind, _zone(), datetime.now(UTC))
    if form.is_meeting:
        for raw in request.args.getlist("attendee")[:meeting_form.MAX_ATTENDEES]:
            pair = meeting_form.parse_attendee(raw)
            if pair and pair[0] not in {address for address, _ in form.attendees}:
                form.attendees.append(pair)
    return _render_form(form)


@bp.route("/meetings/new", methods=["POST"])
@login_required
@limiter.limit("60 per minute")
def schedule() -> ResponseReturnValue:
    """Schedule: check every field, then create the item in Exchange (a meeting with invitations, an appointment
    without) and store it; each field's error comes back beside it, and nothing is created on any error."""
    kind = meeting_form.kind_of(request.form.get("kind"))
    form, errors = meeting_form.read_form(request.form, kind)
    action = request.form.get("action", "schedule")
    if action != "schedule" or request.form.get("remove") or request.form.get("slot"):
        # The form's own buttons without JavaScript: add the typed attendees, drop a chip, take a suggested time,
        # or show the availability. Nothing is scheduled.
        availability = _availability_context(form) if action == "availability" else None
        return _render_form(form, errors=errors, availability=availability, status=422 if errors else 200)
    zone = _zone()
    draft, errors = meeting_form.check(form, zone, errors)
    if draft is None:
        return _render_form(form, errors=errors, status=422)
    current = settings.load()
    problem = mailbox_problem(_user(), current)
    if problem:
        return _render_form(form, problem=problem, status=409)
    from ..sync import calendar_actions

    try:
        item = calendar_actions.schedule(_user(), draft)
    except ExchangeProblem as refused:
        note_refused_password(_user(), refused)
        if refused.kind == "recipients":
            return _render_form(form, errors={"attendees": "Exchange did not accept these attendees. Check the "
                                                             "addresses."}, status=422)
        return _render_form(form, problem=refused.message, status=status_for(refused))
    if not is_htmx():
        return redirect(url_for("dashboard.index", scheduled=item.id), 303)
    response = render_template("meetings/_scheduled.html", item=item, title=TITLES[draft.kind],
                               when=local_time.shown(item.start_at, zone), invited=len(draft.attendees))
    return response, 200, {"HX-Trigger": CALENDAR_CHANGED}


# -- availability --------------------------------------------------------------------------------------------------
def _availability_context(form: meeting_form.ScheduleForm) -> dict[str, Any]:
    """The grid's template context for `form`'s attendees and chosen time: a grid, or a problem in words."""
    zone = _zone()
    span = meeting_form.chosen_span(form, zone)
    if span is None:
        return {"problem": "Enter a start date and time to see the availability.", "status": 422}
    if len(form.attendees) > meeting_form.MAX_ATTENDEES:
        return {"problem": f"Exchange shows the availability of at most {meeting_form.MAX_ATTENDEES} attendees "
                           "and you.", "status": 422}
    user = _user()
    current = settings.load()
    problem = mailbox_problem(user, current)
    if problem:
        return {"problem": problem, "status": 409}
    from ..exchange.factory import mailbox_for

    own = user.email.lower()
    people = [(own, "You")] + [(a, n) for a, n in form.attendees if a != own]
    start, end = span
    day = start.astimezone(zone).date()
    window = day_window(day, zone)
    try:
        answer = mailbox_for(user, current).free_busy([a for a, _ in people[1:]], *window)
    except ExchangeProblem as refused:
        note_refused_password(user, refused)
        return {"problem": refused.message, "status": status_for(refused)}
    grid = build_grid(answer, people, day, zone, span, datetime.now(UTC), meeting_minutes(start, end, form.all_day))
    return {"grid": grid, "status": 200, "day_label": window[0].strftime("%a %d %b %Y")}


@bp.route("/meetings/availability")
@login_required
@limiter.limit("120 per minute")
def availability() -> ResponseReturnValue:
    """See availability: the grid of the user and the attendees over the chosen day, from one free/busy
    request, with the chosen time marked and the next times that suit everyone known."""
    kind = meeting_form.kind_of(request.args.get("kind"))
    form, errors = meeting_form.read_form(request.args, kind)
    context = _availability_context(form)
    if errors and "grid" in context:
        context["ignored"] = errors["attendees"]
    return render_template("meetings/_availability.html", availability=context, statuses=STATUSES,
                           legend=LEGEND), context["status"]


# -- the attendee picker -------------------------------------------------------------------------------------------
def _crm_people(query: str) -> list[dict[str, str]]:
    """CRM Leads and Contacts whose name or address contains `query`."""
    like = contains(query)
    rows = db.session.execute(
        select(CrmRecord.name, CrmRecord.module, CrmAddress.address)
        .join(CrmAddress, CrmAddress.record_id == CrmRecord.id)
        .where(CrmRecord.module.in_(("Leads", "Contacts")),
               or_(CrmRecord.name.ilike(like, escape=LIKE_ESCAPE), CrmAddress.address.ilike(like, escape=LIKE_ESCAPE)))
        .order_by(CrmRecord.name, CrmAddress.address).limit(CRM_PEOPLE)
    ).all()
    return [{"address": address, "name": name, "source": module[:-1]} for name, module, address in rows]


@bp.route("/meetings/people")
@login_required
@limiter.limit("120 per minute")
def people() -> ResponseReturnValue:
    """The attendee picker's options for what was typed: CRM Leads and Contacts, people of the organisation, and
    the typed address itself when it is one."""
    # "q", or the attendee box itself (whose name is add_attendees, for the form without JavaScript).
    typed = request.args.get("q", request.args.get("add_attendees", ""))
    query = " ".join(meeting_form.plain_text(typed).split())[:100]
    options: list[dict[str, str]] = []
    note = None
    if len(query) >= MIN_LOOKUP:
        options = _crm_people(query)
        user = _user()
        current = settings.load()
        if mailbox_problem(user, current) is None:
            from ..exchange.factory import mailbox_for

            try:
                found = mailbox_for(user, current).resolve_people(query)
                options += [{"address": a, "name": n, "source": "Colleague"} for a, n in found]
            except ExchangeProblem as refused:
                note_refused_password(user, refused)
                note = "Your organisation's directory cannot be searched right now."
    as_address = meeting_form.parse_attendee(query) if "@" in query else None
    seen: set[str] = set()
    unique = []
    for option in options:
        if option["address"] not in seen:
            seen.add(option["address"])
            unique.append(option)
    if as_address and as_address[0] not in seen:
        unique.append({"address": as_address[0], "name": as_address[1], "source": "Address"})
    return render_template("meetings/_people.html", options=unique, query=query, note=note,
                           chip_value=meeting_form.chip_value)


# -- a record's Meetings ---------------------------------------------------------------------------------------------
@bp.route("/crm/<module>/<record_id>/meetings")
@login_required
def related_list(module: str, record_id: str) -> ResponseReturnValue:
    """The Meetings related list of a CRM record: the meetings one of whose attendees (or organiser) is the record's,
    the latest first, paged; the user's own, or the whole team's when the administrator made email team-wide (the
    same visibility as the record's Emails)."""
    _module_or_404(module)
    current = settings.load()
    zone = local_time.user_zone(current_user, current)
    result = meetings_for_record(current_user, module, record_id, page=page_number(), per_page=PER_PAGE,
                                          team_wide=current.email_visibility == "team")
    record = result.record
    context = {"module": module, "record_id": record_id, "result": result, "record": record, "zone_name": zone.key,
               "when": lambda moment: local_time.shown(moment, zone),
               # An all-day event is a day of the calendar it was scheduled in, wherever it is read.
               "day_of": lambda item: item.start_at.astimezone(local_time.zone_or_none(item.time_zone) or zone)
               .strftime("%a %d %b %Y"),
               "schedule_address": primary_address(record) if record else ""}
    if targets("meeting-list"):
        return render_template("meetings/_list.html", **context)
    return render_template("meetings/list.html", **context)
