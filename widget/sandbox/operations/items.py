"""Item operations: GetItem, CreateItem, UpdateItem, DeleteItem, MoveItem, SendItem."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from .. import delivery, recurrence
from ..items import Item, Shape, item_id_element, parse_properties, parse_property, render_item
from ..soap import EwsFault, ItemError, local, m, operation_response, response_message, sub, t
from ..store import Folder
from . import Context, operation, responses

_ITEM_ELEMENTS = {"Message", "CalendarItem", "Task"}
_SEND_INVITATIONS = {"SendToNone", "SendOnlyToAll", "SendToAllAndSaveCopy"}
_SEND_UPDATES = _SEND_INVITATIONS | {"SendOnlyToChanged", "SendToChangedAndSaveCopy"}
_DISPOSITIONS = {"SaveOnly", "SendOnly", "SendAndSaveCopy"}
_CONFLICT_RESOLUTIONS = {"NeverOverwrite", "AutoResolve", "AlwaysOverwrite"}
_DELETE_TYPES = {"HardDelete", "SoftDelete", "MoveToDeletedItems"}


def _lookup(ctx: Context, item_id: str) -> Item:
    try:
        if not base64.b64decode(item_id, validate=True).startswith(b"AAMk"):
            raise ValueError
    except (binascii.Error, ValueError):
        raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    item = ctx.store.items.get(item_id) or ctx.store.occurrence(item_id)
    if item is None:
        raise ItemError("ErrorItemNotFound", "The specified object was not found in the store.")
    ctx.check_access(ctx.store.folder_of(item).mailbox)
    return item


def find_item(ctx: Context, elem: etree._Element) -> Item:
    """The item an <t:ItemId>, <t:OccurrenceItemId> or <t:RecurringMasterItemId> names, if this user may reach it."""
    kind = local(elem)
    if kind == "OccurrenceItemId":
        master = _lookup(ctx, elem.get("RecurringMasterId", ""))
        try:
            index = int(elem.get("InstanceIndex", ""))
        except ValueError:
            raise ItemError("ErrorInvalidIdMalformed", "InstanceIndex is not a number.") from None
        occurrence = recurrence.nth_occurrence(master, index)
        if occurrence is None:
            raise ItemError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                            "The occurrence index is out of recurrence range.")
        return occurrence
    if kind == "RecurringMasterItemId":
        occurrence_id = elem.get("OccurrenceId", "")
        master_id = recurrence.master_id_of(occurrence_id)
        if master_id is None:
            _lookup(ctx, occurrence_id)  # a plain item's id: malformed or not found, answered as for any id
            raise ItemError("ErrorItemNotFound", "The specified object was not found in the store.")
        return _lookup(ctx, master_id)
    return _lookup(ctx, elem.get("Id", ""))


def _stored(ctx: Context, item: Item, action: str) -> Item:
    """The stored item to change; a computed occurrence of a series can only be deleted (see delete_item)."""
    if item.id not in ctx.store.items:
        raise ItemError("ErrorInvalidOperation",
                        f"The sandbox cannot {action} a single occurrence of a series; change the series instead.")
    return item


def _item_info(
    messages: etree._Element, name: str, item: Item | None = None, error: ItemError | None = None
) -> etree._Element:
    """An item-info response message: Exchange writes <m:Items> even when it is empty or the item failed."""
    message = response_message(messages, name, error)
    holder = sub(message, m("Items"))
    if item is not None:
        item_id_element(holder, item)
    return message


def _folder_or_default(ctx: Context, op: etree._Element, tag: str, default: str) -> Folder:
    holder = op.find(m(tag))
    if holder is not None and len(holder):
        return ctx.resolve_folder(holder[0])
    return ctx.store.folder(ctx.mailbox, default)


def _enum(op: etree._Element, name: str, allowed: set[str], default: str | None = None) -> str | None:
    value = op.get(name, default)
    if value is not None and value not in allowed:
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {name} '{value}'.")
    return value


@operation("GetItem")
def get_item(ctx: Context, op: etree._Element) -> etree._Element:
    """GetItem: one response message per id, with the properties of the shape."""
    shape = Shape.from_xml(op.find(m("ItemShape")))
    ids = op.find(m("ItemIds"))
    if ids is None or len(ids) == 0:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: ItemIds is empty.")
    response, messages = operation_response("GetItem")
    for ref in ids:
        try:
            item = find_item(ctx, ref)
        except ItemError as error:
            _item_info(messages, "GetItem", error=error)
            continue
        message = response_message(messages, "GetItem")
        folder = ctx.store.folder_of(item)
        render_item(sub(message, m("Items")), item, shape, (folder.id, folder.change_key))
    return response


def _task_defaults(props: dict[str, Any]) -> None:
    props.setdefault("Status", "NotStarted")
    if props.get("PercentComplete") == 100:
        props["Status"] = "Completed"
    if props["Status"] == "Completed":
        props["PercentComplete"] = 100
        props.setdefault("CompleteDate", datetime.now(UTC))
    else:
        props.setdefault("PercentComplete", 0)


def _validate_calendar(props: dict[str, Any]) -> None:
    start, end = props.get("Start"), props.get("End")
    if start is None or end is None:
        raise ItemError("ErrorMissingInformation", "A calendar item needs a Start and an End.")
    if end < start:
        raise ItemError("ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate.")


def _create_one(ctx: Context, op: etree._Element, elem: etree._Element) -> Item | None:
    element = local(elem)
    if element in responses.RESPONSE_OBJECTS:
        responses.create_response(ctx, op, elem)
        return None
    if element not in _ITEM_ELEMENTS:
        raise ItemError("ErrorInvalidItemForOperationCreateItem", f"{element} items cannot be created here.")
    props = parse_properties(elem)
    store = ctx.store
    owner = store.users[ctx.mailbox]
    now = datetime.now(UTC)
    if element == "Message":
        disposition = _enum(op, "MessageDisposition", _DISPOSITIONS, "SaveOnly")
        delivery.message_defaults(props, owner.mailbox, now)
        if disposition != "SaveOnly":
            if not delivery.recipients_of(props):
                raise ItemError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
            delivery.deliver_message(store, props, now)
            if disposition == "SendAndSaveCopy":
                sent = _folder_or_default(ctx, op, "SavedItemFolderId", "sentitems")
                store.add_item(sent, "Message", {**props, "IsRead": True, "IsDraft": False, "IsFromMe": True})
            return None
        folder = _folder_or_default(ctx, op, "SavedItemFolderId", "drafts")
        props.update(IsDraft=True, IsRead=props.get("IsRead", True))
        return store.add_item(folder, "Message", props)
    if element == "CalendarItem":
        send = _enum(op, "SendMeetingInvitations", _SEND_INVITATIONS, "SendToNone")
        _validate_calendar(props)
        delivery.calendar_defaults(props, owner)
        item = store.add_item(_folder_or_default(ctx, op, "SavedItemFolderId", "calendar"), "CalendarItem", props)
        if send != "SendToNone" and (props.get("RequiredAttendees") or props.get("OptionalAttendees")):
            delivery.send_invitations(store, item)
        return item
    _task_defaults(props)
    return store.add_item(_folder_or_default(ctx, op, "SavedItemFolderId", "tasks"), "Task", props)


@operation("CreateItem", mutates=True)
def create_item(ctx: Context, op: etree._Element) -> etree._Element:
    """CreateItem: messages (SaveOnly/SendOnly/SendAndSaveCopy), calendar items (with or without invitations),
    tasks, and the response objects of meetings (accept, tentatively accept, decline, cancel)."""
    items = op.find(m("Items"))
    response, messages = operation_response("CreateItem")
    for elem in items if items is not None else []:
        try:
            item = _create_one(ctx, op, elem)
        except ItemError as error:
            _item_info(messages, "CreateItem", error=error)
            continue
        _item_info(messages, "CreateItem", item)
    return response


def _apply_updates(item: Item, updates: etree._Element) -> set[str]:
    changed: set[str] = set()
    for update in updates:
        kind = local(update)
        uri = update[0] if len(update) else None
        if uri is None or local(uri) != "FieldURI":
            # Indexed and extended properties are not stored by the sandbox; accept and ignore them.
            continue
        name = uri.get("FieldURI", "").split(":")[-1]
        if kind == "DeleteItemField":
            item.props.pop(name, None)
            changed.add(name)
            continue
        holder = update[1] if len(update) > 1 else None
        if holder is None or len(holder) == 0:
            raise ItemError("ErrorInvalidPropertySet", f"No value was given for {name}.")
        value_elem = holder[0]
        value = parse_property(value_elem)
        name = local(value_elem)
        if kind == "AppendToItemField" and isinstance(value, list):
            item.props[name] = list(item.props.get(name) or []) + value
        elif kind == "AppendToItemField" and name == "Body" and name in item.props:
            item.props[name] = type(value)(value.body_type, item.props[name].text + value.text)
        else:
            item.props[name] = value
        changed.add(name)
    return changed


@operation("UpdateItem", mutates=True)
def update_item(ctx: Context, op: etree._Element) -> etree._Element:
    """UpdateItem: set, append and delete fields; ChangeKey conflicts; meeting updates sent on request."""
    resolution = _enum(op, "ConflictResolution", _CONFLICT_RESOLUTIONS, "AutoResolve")
    send_updates = _enum(op, "SendMeetingInvitationsOrCancellations", _SEND_UPDATES)
    disposition = _enum(op, "MessageDisposition", _DISPOSITIONS)
    response, messages = operation_response("UpdateItem")
    changes = op.find(m("ItemChanges"))
    store = ctx.store
    for change in changes if changes is not None else []:
        try:
            ref = change[0]
            item = find_item(ctx, ref)
            if resolution == "NeverOverwrite" and ref.get("ChangeKey") and ref.get("ChangeKey") != item.change_key:
                raise ItemError(
                    "ErrorIrresolvableConflict",
                    "The send or update operation could not be performed because the change key passed "
                    "in the request does not match the current change key for the item.",
                )
            if item.id not in store.items:
                item = _update_occurrence(ctx, item, change.find(t("Updates")), send_updates)
                message = _item_info(messages, "UpdateItem", item)
                sub(sub(message, m("ConflictResults")), t("Count"), "0")
                continue
            before = {name: item.props.get(name) for name in ("RequiredAttendees", "OptionalAttendees")}
            changed = _apply_updates(item, change.find(t("Updates")))
            if recurrence.is_recurring_master(item) and changed & recurrence.SERIES_SHAPING:
                item.props.pop(recurrence.EXCEPTIONS, None)  # new occurrences: the old ones' changes go
            if item.element == "Task" and changed & {"Status", "PercentComplete"}:
                if "PercentComplete" in changed and item.props.get("PercentComplete") == 100:
                    item.props["Status"] = "Completed"
                if item.props.get("Status") == "Completed":
                    item.props["PercentComplete"] = 100
                    item.props.setdefault("CompleteDate", datetime.now(UTC))
            if item.element == "CalendarItem":
                _validate_calendar(item.props)
            store.touch(item, read_flag_only=bool(changed) and changed <= {"IsRead"})
            if item.element == "CalendarItem" and send_updates not in (None, "SendToNone"):
                _send_meeting_updates(ctx, item, before)
            if item.element == "Message" and disposition in ("SendOnly", "SendAndSaveCopy"):
                item = _send_draft(ctx, item, disposition == "SendAndSaveCopy")
        except ItemError as error:
            _item_info(messages, "UpdateItem", error=error)
            continue
        message = _item_info(messages, "UpdateItem", item)
        sub(sub(message, m("ConflictResults")), t("Count"), "0")
    return response


def _update_occurrence(ctx: Context, occurrence: Item, updates: etree._Element, send_updates: str | None) -> Item:
    """Change one occurrence of a series: it becomes an exception the master keeps (attendees' copies too, when the
    organiser sends the update). Returns the exception as it now reads."""
    store = ctx.store
    master = store.items[recurrence.master_id_of(occurrence.id) or ""]
    changed = _apply_updates(occurrence, updates)
    _validate_calendar(occurrence.props)
    original = occurrence.props["OriginalStart"]
    changes = {name: occurrence.props.get(name) for name in changed - recurrence.SERIES_SHAPING}
    changes.update(Start=occurrence.props["Start"], End=occurrence.props["End"])
    recurrence.set_exception(master, original, changes)
    store.touch(master)
    if send_updates not in (None, "SendToNone") and master.props.get("IsOrganizer", True):
        delivery.update_occurrence_for_attendees(store, master, original, changes)
    return store.occurrence(occurrence.id) or occurrence


def _send_meeting_updates(ctx: Context, item: Item, before: dict[str, Any]) -> None:
    old = {a.mailbox.email for name in before for a in before[name] or []}
    new = {a.mailbox.email for name in ("RequiredAttendees", "OptionalAttendees") for a in item.props.get(name) or []}
    if old - new:
        delivery.cancel_meeting(ctx.store, item, only=old - new)
    if new:
        delivery.send_invitations(ctx.store, item, kind="update")


def _send_draft(ctx: Context, item: Item, save_copy: bool) -> Item | None:
    store = ctx.store
    if not delivery.recipients_of(item.props):
        raise ItemError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
    store.remove_item(item)
    delivery.send_message(store, ctx.mailbox, item.props, save_copy=save_copy)
    return None


@operation("SendItem", mutates=True)
def send_item(ctx: Context, op: etree._Element) -> etree._Element:
    """SendItem: send saved drafts, optionally saving a copy in Sent Items."""
    save_copy = op.get("SaveItemToFolder", "true") in ("true", "1")
    response, messages = operation_response("SendItem")
    ids = op.find(m("ItemIds"))
    for ref in ids if ids is not None else []:
        try:
            item = _stored(ctx, find_item(ctx, ref), "send")
            if item.element != "Message":
                raise ItemError("ErrorInvalidItemForOperationSendItem", "Only messages can be sent.")
            _send_draft(ctx, item, save_copy)
        except ItemError as error:
            response_message(messages, "SendItem", error)
            continue
        response_message(messages, "SendItem")
    return response


@operation("DeleteItem", mutates=True)
def delete_item(ctx: Context, op: etree._Element) -> etree._Element:
    """DeleteItem: hard, soft or to Deleted Items; a meeting's organizer may cancel it for the attendees."""
    delete_type = _enum(op, "DeleteType", _DELETE_TYPES)
    cancellations = _enum(op, "SendMeetingCancellations", _SEND_INVITATIONS)
    if delete_type is None:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: DeleteType is required.")
    response, messages = operation_response("DeleteItem")
    ids = op.find(m("ItemIds"))
    store = ctx.store
    for ref in ids if ids is not None else []:
        try:
            item = find_item(ctx, ref)
            if item.id not in store.items:
                _delete_occurrence(ctx, item, notify=cancellations not in (None, "SendToNone"))
                if cancellations == "SendToAllAndSaveCopy" and item.props.get("IsOrganizer", True):
                    delivery.save_cancellation(store, item, store.folder(ctx.mailbox, "sentitems"))
                response_message(messages, "DeleteItem")
                continue
            folder = store.folder_of(item)
            if (
                item.element == "CalendarItem"
                and cancellations not in (None, "SendToNone")
                and item.props.get("IsOrganizer", True)
            ):
                delivery.cancel_meeting(store, item)
                if cancellations == "SendToAllAndSaveCopy":
                    delivery.save_cancellation(store, item, store.folder(ctx.mailbox, "sentitems"))
            deleted_items = store.folder(folder.mailbox, "deleteditems")
            dumpster = store.folder(folder.mailbox, "recoverableitemsdeletions")
            if delete_type == "MoveToDeletedItems" and folder is not deleted_items:
                store.move_item(item, deleted_items)
            elif delete_type == "SoftDelete" and folder is not dumpster:
                # Soft-deleted items stay recoverable, in the Recoverable Items folder, as in Exchange.
                store.move_item(item, dumpster)
            else:
                store.remove_item(item)
        except ItemError as error:
            response_message(messages, "DeleteItem", error)
            continue
        response_message(messages, "DeleteItem")
    return response


def _delete_occurrence(ctx: Context, occurrence: Item, *, notify: bool = False) -> None:
    """Delete one occurrence of a series: the master remembers it among its DeletedOccurrences, as in Exchange (by
    its original start, an exception's too); with `notify` the organiser cancels it for the attendees."""
    master = ctx.store.items[recurrence.master_id_of(occurrence.id) or ""]
    original = occurrence.props.get("OriginalStart") or occurrence.props["Start"]
    delivery.delete_occurrence(master, original)
    ctx.store.touch(master)
    if notify and master.props.get("IsOrganizer", True):
        delivery.cancel_occurrence_for_attendees(ctx.store, master, occurrence)


@operation("MoveItem", mutates=True)
def move_item(ctx: Context, op: etree._Element) -> etree._Element:
    """MoveItem: the moved items get new ids, as in Exchange."""
    response, messages = operation_response("MoveItem")
    target = op.find(m("ToFolderId"))
    if target is None or len(target) == 0:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: ToFolderId is required.")
    destination = ctx.resolve_folder(target[0])
    ids = op.find(m("ItemIds"))
    for ref in ids if ids is not None else []:
        try:
            moved = ctx.store.move_item(_stored(ctx, find_item(ctx, ref), "move"), destination)
        except ItemError as error:
            _item_info(messages, "MoveItem", error=error)
            continue
        _item_info(messages, "MoveItem", moved)
    return response
