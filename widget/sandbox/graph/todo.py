"""Graph's To Do resources on the store: todo/lists (the Tasks folder and task folders below it) and their tasks,
with tasks/delta on the folder's change log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..items import Body, Item
from ..store import Folder
from .context import (
    GraphReply,
    GraphRequest,
    check_if_match,
    collection,
    require,
    shared_props,
    writable_props,
)
from .convert import (
    GraphError,
    bad_request,
    body_json,
    date_time_time_zone,
    format_datetime,
    graph_id,
    lower_first,
    not_found,
    parse_date_time_time_zone,
    store_id,
    upper_first,
)
from .delta import log_delta

STATUSES = ("notStarted", "inProgress", "completed", "waitingOnOthers", "deferred")
TASK_WRITABLE = {"title", "status", "importance", "body", "dueDateTime", "reminderDateTime", "isReminderOn",
                 "categories", "completedDateTime", "startDateTime"}


def _lists(req: GraphRequest) -> list[Folder]:
    store = req.store
    default = store.folder(req.mailbox, "tasks")
    return [default, *(f for f in store.child_folders(default) if f.folder_class == "IPF.Task")]


def list_json(req: GraphRequest, folder: Folder) -> dict[str, Any]:
    """A todoTaskList."""
    default = folder.distinguished == "tasks"
    return {"@odata.etag": f'W/"{folder.change_key}"', "id": graph_id(folder.id), "displayName": folder.display_name,
            "isOwner": True, "isShared": False, "wellknownListName": "defaultList" if default else "none"}


def task_json(req: GraphRequest, item: Item, select: set[str] | None = None) -> dict[str, Any]:
    """A todoTask."""
    props = item.props
    status = lower_first(str(props.get("Status") or "NotStarted"))
    data: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": graph_id(item.id),
        "title": props.get("Subject") or "",
        "status": status if status in STATUSES else "notStarted",
        "importance": str(props.get("Importance") or "Normal").lower(),
        "isReminderOn": bool(props.get("ReminderIsSet", False)),
        "createdDateTime": format_datetime(item.created),
        "lastModifiedDateTime": format_datetime(item.modified),
        "bodyLastModifiedDateTime": format_datetime(item.modified),
        "hasAttachments": bool(props.get("Attachments")),
        "categories": list(props.get("Categories") or []),
        "body": body_json(props.get("Body")),
    }
    for name, field in (("dueDateTime", "DueDate"), ("reminderDateTime", "ReminderDueBy"),
                        ("completedDateTime", "CompleteDate"), ("startDateTime", "StartDate")):
        if isinstance(props.get(field), datetime):
            data[name] = date_time_time_zone(props[field])
    if select is not None:
        return {key: value for key, value in data.items() if key in select or key == "id" or key.startswith("@")}
    return data


def task_props(data: dict[str, Any]) -> dict[str, Any]:
    """The store's properties for a task a client writes."""
    data = writable_props(data, TASK_WRITABLE, "todoTask")
    props = shared_props(data)
    if "title" in data:
        props["Subject"] = require(data["title"] or "", "title", str)
    if "status" in data:
        if data["status"] not in STATUSES:
            raise bad_request(f"'status' must be one of: {', '.join(STATUSES)}.")
        props["Status"] = upper_first(data["status"])
        props["PercentComplete"] = 100 if data["status"] == "completed" else 0
        if data["status"] == "completed":
            props.setdefault("CompleteDate", datetime.now(UTC))
        else:
            props["CompleteDate"] = None
    for name, field in (("dueDateTime", "DueDate"), ("reminderDateTime", "ReminderDueBy"),
                        ("completedDateTime", "CompleteDate"), ("startDateTime", "StartDate")):
        if name in data:
            props[field] = None if data[name] is None else parse_date_time_time_zone(data[name], name)
    if "isReminderOn" in data:
        props["ReminderIsSet"] = require(data["isReminderOn"], "isReminderOn", bool)
    return props


def find_list(req: GraphRequest, list_id: str) -> Folder:
    """A To Do list of this mailbox; 404 otherwise."""
    for folder in _lists(req):
        if folder.id == store_id(list_id):
            return folder
    raise not_found("The specified list could not be found.")


def find_task(req: GraphRequest, folder: Folder, task_id: str) -> Item:
    """A task of a list; 404 otherwise."""
    item = folder.items.get(store_id(task_id))
    if item is None or item.element != "Task":
        raise not_found()
    return item


def get_lists(req: GraphRequest) -> GraphReply:
    """GET todo/lists."""
    return collection(req, _lists(req), lambda folder: list_json(req, folder), "todoTaskList",
                      f"users('{req.mailbox}')/todo/lists", default_top=100)


def get_list(req: GraphRequest, list_id: str) -> GraphReply:
    """GET todo/lists/{id}."""
    return GraphReply(200, list_json(req, find_list(req, list_id)), "todoTaskList")


def create_list(req: GraphRequest) -> GraphReply:
    """POST todo/lists {displayName}."""
    name = req.json().get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("'displayName' is required.", "invalidRequest")
    parent = req.store.folder(req.mailbox, "tasks")
    if any(f.display_name.lower() == name.strip().lower() for f in _lists(req)):
        raise GraphError(409, "nameAlreadyExists", "A list with this name exists already.")
    folder = req.store.add_folder(parent, name.strip(), "IPF.Task")
    return GraphReply(201, list_json(req, folder), "todoTaskList")


def list_tasks(req: GraphRequest, list_id: str) -> GraphReply:
    """GET todo/lists/{id}/tasks."""
    folder = find_list(req, list_id)
    items = sorted((i for i in folder.items.values() if i.element == "Task"), key=lambda i: i.created)
    select = req.select()
    return collection(req, items, lambda item: task_json(req, item, select), "todoTask",
                      f"users('{req.mailbox}')/todo/lists('{list_id}')/tasks")


def get_task(req: GraphRequest, list_id: str, task_id: str) -> GraphReply:
    """GET todo/lists/{id}/tasks/{id}."""
    return GraphReply(200, task_json(req, find_task(req, find_list(req, list_id), task_id), req.select()),
                      "todoTask")


def create_task(req: GraphRequest, list_id: str) -> GraphReply:
    """POST todo/lists/{id}/tasks: 201."""
    folder = find_list(req, list_id)
    props = task_props(req.json())
    if not props.get("Subject"):
        raise bad_request("A task needs a 'title'.", "invalidRequest")
    props.setdefault("Status", "NotStarted")
    props.setdefault("Importance", "Normal")
    props.setdefault("Body", Body("Text", ""))
    props = {name: value for name, value in props.items() if value is not None}
    item = req.store.add_item(folder, "Task", props)
    return GraphReply(201, task_json(req, item), "todoTask")


def update_task(req: GraphRequest, list_id: str, task_id: str) -> GraphReply:
    """PATCH todo/lists/{id}/tasks/{id}."""
    item = find_task(req, find_list(req, list_id), task_id)
    check_if_match(req, item)
    for name, value in task_props(req.json()).items():
        if value is None:
            item.props.pop(name, None)
        else:
            item.props[name] = value
    req.store.touch(item)
    return GraphReply(200, task_json(req, item), "todoTask")


def delete_task(req: GraphRequest, list_id: str, task_id: str) -> GraphReply:
    """DELETE todo/lists/{id}/tasks/{id}: 204."""
    req.store.remove_item(find_task(req, find_list(req, list_id), task_id))
    return GraphReply(204)


def tasks_delta(req: GraphRequest, list_id: str) -> GraphReply:
    """GET todo/lists/{id}/tasks/delta."""
    folder = find_list(req, list_id)
    return log_delta(req, folder, f"todo/lists/{list_id}/tasks/delta", "tasks", "todoTask",
                     lambda item, fields: task_json(req, item, fields))
