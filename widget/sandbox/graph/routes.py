"""Which handler answers which Graph URL below a mailbox (``/v1.0/users/{id}/...`` or ``/v1.0/me/...``), with the
permissions it needs and the metadata type of the body it takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import calendar, mail, todo
from .context import GraphReply, GraphRequest

# Application permissions (roles) and delegated permissions (scp) that grant each kind of access.
PERMISSIONS: dict[str, frozenset[str]] = {
    "mail.read": frozenset({"Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic", "Mail.ReadBasic.All"}),
    "mail.write": frozenset({"Mail.ReadWrite"}),
    "mail.send": frozenset({"Mail.Send"}),
    "calendar.read": frozenset({"Calendars.Read", "Calendars.ReadWrite"}),
    "calendar.write": frozenset({"Calendars.ReadWrite"}),
    "tasks.read": frozenset({"Tasks.Read.All", "Tasks.ReadWrite.All", "Tasks.Read", "Tasks.ReadWrite"}),
    "tasks.write": frozenset({"Tasks.ReadWrite.All", "Tasks.ReadWrite"}),
}
PERMISSIONS["user"] = frozenset().union(*PERMISSIONS.values()) | {"User.Read", "User.Read.All"}

Handler = Callable[..., GraphReply]


@dataclass(frozen=True)
class Route:
    """One URL pattern ('{}' is one path segment, passed to the handler) and what answers it."""

    method: str
    pattern: str
    handler: Handler
    access: str
    body_type: str | None = None

    @property
    def name(self) -> str:
        """The endpoint's name in stats and fault scripts, e.g. "GET mailFolders/{id}/messages/delta"."""
        return f"{self.method} {self.pattern.replace('{}', '{id}')}".rstrip()

    def match(self, method: str, segments: list[str]) -> list[str] | None:
        """The '{}' segments of a matching path, or None."""
        parts = self.pattern.split("/") if self.pattern else []
        if method != self.method or len(parts) != len(segments):
            return None
        found = []
        for part, segment in zip(parts, segments, strict=True):
            if part == "{}":
                found.append(segment)
            elif part.lower() != segment.lower():
                return None
        return found


def _r(method: str, pattern: str, handler: Handler, access: str, body_type: str | None = None) -> Route:
    return Route(method, pattern, handler, access, body_type)


ROUTES: tuple[Route, ...] = (
    # mail
    _r("GET", "mailFolders", lambda req: mail.list_folders(req), "mail.read"),
    _r("GET", "mailFolders/{}", mail.get_folder, "mail.read"),
    _r("GET", "mailFolders/{}/childFolders", lambda req, f: mail.list_folders(req, req.folder(f)), "mail.read"),
    _r("POST", "mailFolders/{}/childFolders", mail.create_child_folder, "mail.write", "mailFolder"),
    _r("GET", "mailFolders/{}/messages", lambda req, f: mail.list_messages(req, req.folder(f)), "mail.read"),
    _r("POST", "mailFolders/{}/messages", mail.create_draft, "mail.write", "message"),
    _r("GET", "mailFolders/{}/messages/delta", mail.messages_delta, "mail.read"),
    _r("GET", "messages", lambda req: mail.list_messages(req, None), "mail.read"),
    _r("POST", "messages", mail.create_draft, "mail.write", "message"),
    _r("GET", "messages/{}", mail.get_message, "mail.read"),
    _r("GET", "mailFolders/{}/messages/{}", lambda req, f, m: mail.get_message(req, m), "mail.read"),
    _r("PATCH", "messages/{}", mail.update_message, "mail.write", "message"),
    _r("DELETE", "messages/{}", mail.delete_message, "mail.write"),
    _r("GET", "messages/{}/$value", mail.message_mime, "mail.read"),
    _r("POST", "messages/{}/move", mail.move_message, "mail.write", "action:move"),
    _r("GET", "messages/{}/attachments", mail.list_attachments, "mail.read"),
    _r("POST", "messages/{}/attachments", mail.add_attachment, "mail.write", "attachment"),
    _r("GET", "messages/{}/attachments/{}", mail.get_attachment, "mail.read"),
    _r("GET", "messages/{}/attachments/{}/$value", mail.attachment_value, "mail.read"),
    _r("POST", "messages/{}/send", mail.send_draft, "mail.send"),
    _r("POST", "messages/{}/createReply", lambda req, m: mail.create_response(req, m, "createReply"), "mail.write",
       "action:createReply"),
    _r("POST", "messages/{}/createReplyAll", lambda req, m: mail.create_response(req, m, "createReplyAll"),
       "mail.write", "action:createReplyAll"),
    _r("POST", "messages/{}/createForward", lambda req, m: mail.create_response(req, m, "createForward"),
       "mail.write", "action:createForward"),
    _r("POST", "sendMail", mail.send_mail, "mail.send", "action:sendMail"),
    # calendar
    _r("GET", "events", calendar.list_events, "calendar.read"),
    _r("GET", "calendar/events", calendar.list_events, "calendar.read"),
    _r("POST", "events", calendar.create_event, "calendar.write", "event"),
    _r("POST", "calendar/events", calendar.create_event, "calendar.write", "event"),
    _r("GET", "events/{}", calendar.get_event, "calendar.read"),
    _r("PATCH", "events/{}", calendar.update_event, "calendar.write", "event"),
    _r("DELETE", "events/{}", calendar.delete_event, "calendar.write"),
    _r("GET", "events/{}/instances", calendar.instances, "calendar.read"),
    *(_r("POST", f"events/{{}}/{action}", lambda req, e, action=action: calendar.respond_to_event(req, e, action),
         "calendar.write", f"action:{action}") for action in calendar.RESPONSE_ACTIONS),
    _r("POST", "events/{}/cancel", calendar.cancel_event, "calendar.write", "action:cancel"),
    _r("GET", "calendarView", calendar.calendar_view, "calendar.read"),
    _r("GET", "calendar/calendarView", calendar.calendar_view, "calendar.read"),
    _r("GET", "calendarView/delta", calendar.calendar_view_delta, "calendar.read"),
    _r("GET", "calendar/calendarView/delta", calendar.calendar_view_delta, "calendar.read"),
    _r("POST", "calendar/getSchedule", calendar.get_schedule, "calendar.read", "action:getSchedule"),
    # To Do
    _r("GET", "todo/lists", todo.get_lists, "tasks.read"),
    _r("POST", "todo/lists", todo.create_list, "tasks.write", "todoTaskList"),
    _r("GET", "todo/lists/{}", todo.get_list, "tasks.read"),
    _r("GET", "todo/lists/{}/tasks", todo.list_tasks, "tasks.read"),
    _r("POST", "todo/lists/{}/tasks", todo.create_task, "tasks.write", "todoTask"),
    _r("GET", "todo/lists/{}/tasks/delta", todo.tasks_delta, "tasks.read"),
    _r("GET", "todo/lists/{}/tasks/{}", todo.get_task, "tasks.read"),
    _r("PATCH", "todo/lists/{}/tasks/{}", todo.update_task, "tasks.write", "todoTask"),
    _r("DELETE", "todo/lists/{}/tasks/{}", todo.delete_task, "tasks.write"),
)


def find_route(method: str, segments: list[str]) -> tuple[Route, list[str]] | None:
    """The route for a request below a mailbox and its id segments; None if nothing matches."""
    for route in ROUTES:
        found = route.match(method, segments)
        if found is not None:
            return route, found
    return None


def allowed_methods(segments: list[str]) -> list[str]:
    """The methods some route takes for this path (to tell 405 from 404)."""
    return sorted({route.method for route in ROUTES for method in ("GET", "POST", "PATCH", "DELETE")
                   if route.method == method and route.match(method, segments) is not None})


def run(route: Route, req: GraphRequest, found: list[str]) -> GraphReply:
    """Call the route's handler."""
    return route.handler(req, *found)
