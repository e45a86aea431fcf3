"""The one module that knows htmx: whether a request comes from htmx (and for which target), which template a view
answers with (a whole page, a popup, or the fragment that swaps itself), and the events the pages listen to.

Every view also works without JavaScript: a plain request gets the whole page.
"""

from __future__ import annotations

from flask import request

# Events sent in HX-Trigger, on which the dashboard's lists refresh themselves.
CALENDAR_CHANGED = "calendar-changed"
TASKS_CHANGED = "tasks-changed"


def is_htmx() -> bool:
    """Whether htmx made this request (htmx-flask's request.htmx reads HX-Request)."""
    return bool(getattr(request, "htmx", False))


def targets(element_id: str) -> bool:
    """Whether htmx made this request to swap the element with this id (HX-Target)."""
    return is_htmx() and request.htmx.target == element_id


def page_popup_or_form(page: str, popup: str, form: str) -> str:
    """The template of a form that opens in a popup: the whole page without JavaScript; the popup when htmx opens
    it (GET); the form alone when htmx submits it, so that it swaps itself inside the open popup."""
    if not is_htmx():
        return page
    return popup if request.method == "GET" else form
