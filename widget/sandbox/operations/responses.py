"""Response objects in CreateItem: an attendee's AcceptItem, TentativelyAcceptItem or DeclineItem, and the
organiser's CancelCalendarItem (how Outlook and exchangelib's CalendarItem.cancel() cancel a meeting).

Each refers to its item by ReferenceItemId: an attendee answers from their copy of the meeting (a whole series or one
occurrence of it) or from the meeting request in their inbox; the organiser cancels from their own item (a whole
meeting or one occurrence of a series).
"""

from __future__ import annotations

from lxml import etree

from .. import delivery, recurrence
from ..items import Body, Item
from ..soap import ItemError, local, m
from ..store import Folder
from . import Context
from . import items as item_operations

# Response object element: (the MyResponseType it gives, which also ends its ErrorCalendarIs...For... codes, and its
# invalid-item error code).
ATTENDEE_RESPONSES = {
    "AcceptItem": ("Accept", "ErrorInvalidItemForOperationAcceptItem"),
    "TentativelyAcceptItem": ("Tentative", "ErrorInvalidItemForOperationTentative"),
    "DeclineItem": ("Decline", "ErrorInvalidItemForOperationDeclineItem"),
}
RESPONSE_OBJECTS = frozenset(ATTENDEE_RESPONSES) | {"CancelCalendarItem"}


def _referenced(ctx: Context, elem: etree._Element, invalid_item: str) -> Item:
    ref = elem.find("{*}ReferenceItemId")
    if ref is None:
        raise ItemError("ErrorInvalidReferenceItem", f"{local(elem)} needs a ReferenceItemId.")
    item = item_operations.find_item(ctx, ref)
    if item.element not in ("CalendarItem", "MeetingRequest"):
        raise ItemError(invalid_item, f"A {local(elem)} can only refer to a meeting or a meeting request.")
    return item


def _body(elem: etree._Element, name: str) -> Body | None:
    """The text a response object carries in `name` (Body, or a cancellation's NewBodyContent), a BodyType."""
    holder = elem.find("{*}" + name)
    return Body(holder.get("BodyType", "Text"), holder.text or "") if holder is not None else None


def _saved_copy_folder(ctx: Context, op: etree._Element, disposition: str) -> Folder | None:
    if disposition != "SendAndSaveCopy":
        return None
    holder = op.find(m("SavedItemFolderId"))
    if holder is not None and len(holder):
        return ctx.resolve_folder(holder[0])
    return ctx.store.folder(ctx.mailbox, "sentitems")


def _disposition(op: etree._Element, element: str) -> str:
    disposition = op.get("MessageDisposition")
    if disposition is None:
        raise ItemError("ErrorMessageDispositionRequired", "MessageDisposition is required for a response object.")
    if disposition == "SaveOnly":
        # Exchange keeps such a response as a draft to send later; the sandbox only sends responses.
        raise ItemError("ErrorInvalidOperation",
                        f"The sandbox sends a {element} at once: use SendOnly or SendAndSaveCopy.")
    return disposition


def create_response(ctx: Context, op: etree._Element, elem: etree._Element) -> None:
    """Carry out one response object of a CreateItem; Exchange answers it with no item."""
    element = local(elem)
    disposition = _disposition(op, element)
    if element == "CancelCalendarItem":
        _cancel(ctx, op, elem, disposition)
        return
    response, invalid_item = ATTENDEE_RESPONSES[element]
    item = _referenced(ctx, elem, invalid_item)
    copy = item if item.element == "CalendarItem" else delivery.attendee_copy(ctx.store, ctx.mailbox, item)
    if copy is None:
        raise ItemError("ErrorItemNotFound", "The meeting this request is for is no longer in the calendar.")
    if copy.props.get("IsOrganizer", True):
        raise ItemError(f"ErrorCalendarIsOrganizerFor{response}", "The organizer of a meeting cannot answer it.")
    if copy.props.get("IsCancelled"):
        raise ItemError(f"ErrorCalendarIsCancelledFor{response}", "The meeting has been cancelled.")
    body, saved = _body(elem, "Body"), _saved_copy_folder(ctx, op, disposition)
    if copy.id in ctx.store.items:
        delivery.respond_to_meeting(ctx.store, copy, response, body=body, saved_copy_folder=saved)
        return
    master = ctx.store.items[recurrence.master_id_of(copy.id) or ""]  # one occurrence of a series
    delivery.respond_to_occurrence(ctx.store, master, copy, response, body=body, saved_copy_folder=saved)


def _cancel(ctx: Context, op: etree._Element, elem: etree._Element, disposition: str) -> None:
    """The organiser cancels a meeting, or one occurrence of a series, with their NewBodyContent as its text."""
    item = _referenced(ctx, elem, "ErrorInvalidItemForOperationCancelItem")
    if item.element != "CalendarItem" or not item.props.get("IsOrganizer", True):
        raise ItemError("ErrorCalendarIsNotOrganizer", "Only the organizer of a meeting can cancel it.")
    delivery.cancel_as_organizer(ctx.store, item, body=_body(elem, "NewBodyContent"),
                                 saved_copy_folder=_saved_copy_folder(ctx, op, disposition))
