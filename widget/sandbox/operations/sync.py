"""SyncFolderItems over a folder's change log.

Exchange coalesces changes: between two sync states an item shows up once, as what it amounts to —
created (it did not exist at the old state), updated, read flag changed only, or deleted (it existed at
the old state). An item created and deleted in between never shows. A page ends after
MaxChangesReturned changes; its sync state is the log point reached, so the next page goes on from there.
"""

from __future__ import annotations

from lxml import etree

from ..items import Shape, render_item
from ..soap import EwsFault, ItemError, m, operation_response, response_message, sub, t
from ..store import LogEntry
from . import Context, operation

MAX_CHANGES = 512


def _classify(entry: LogEntry, since: int) -> str | None:
    if entry.deleted:
        return "Delete" if entry.created <= since else None
    if entry.created > since:
        return "Create"
    if entry.content > since:
        return "Update"
    return "ReadFlagChange"


@operation("SyncFolderItems")
def sync_folder_items(ctx: Context, op: etree._Element) -> etree._Element:
    """SyncFolderItems: the next page of changes since the given sync state."""
    shape = Shape.from_xml(op.find(m("ItemShape")))
    try:
        max_changes = int(op.findtext(m("MaxChangesReturned")) or "")
    except ValueError:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: MaxChangesReturned.") from None
    if not 1 <= max_changes <= MAX_CHANGES:
        raise EwsFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: MaxChangesReturned must be between 1 and {MAX_CHANGES}.",
        )
    response, messages = operation_response("SyncFolderItems")
    target = op.find(m("SyncFolderId"))
    try:
        if target is None or len(target) == 0:
            raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: SyncFolderId is missing.")
        folder = ctx.resolve_folder(target[0])
        state_text = (op.findtext(m("SyncState")) or "").strip()
        since = ctx.store.read_sync_state(folder, state_text) if state_text else 0
    except ItemError as error:
        response_message(messages, "SyncFolderItems", error)
        return response
    ignore_elem = op.find(m("Ignore"))
    ignored = {i.get("Id") for i in ignore_elem} if ignore_elem is not None else set()

    changes: list[tuple[str, str, LogEntry]] = []
    reached = since
    pending = folder.changes_since(since)
    done = True
    for position, item_id, entry in pending:
        kind = _classify(entry, since)
        if kind is not None and item_id not in ignored:
            if len(changes) == max_changes:
                done = False
                break
            changes.append((kind, item_id, entry))
        reached = position
    if done:
        reached = folder.seq

    message = response_message(messages, "SyncFolderItems")
    sub(message, m("SyncState"), ctx.store.sync_state(folder, reached))
    sub(message, m("IncludesLastItemInRange"), "true" if done else "false")
    container = sub(message, m("Changes"))
    parent_ids = (folder.id, folder.change_key)
    for kind, item_id, entry in changes:
        change = sub(container, t(kind))
        if kind in ("Create", "Update"):
            render_item(change, folder.items[item_id], shape, parent_ids)
        elif kind == "Delete":
            sub(change, t("ItemId"), Id=item_id, ChangeKey=entry.change_key)
        else:
            item = folder.items[item_id]
            sub(change, t("ItemId"), Id=item.id, ChangeKey=item.change_key)
            sub(change, t("IsRead"), "true" if item.props.get("IsRead") else "false")
    return response
