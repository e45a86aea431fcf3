"""Folder operations: GetFolder, FindFolder, CreateFolder."""

from __future__ import annotations

from lxml import etree

from ..soap import EwsFault, ItemError, m, operation_response, response_message, sub, t
from ..store import Folder, Store
from . import Context, operation

# The BaseFolderType sequence, then FolderType's extension.
_BASE_ORDER = (
    "FolderId ParentFolderId FolderClass DisplayName TotalCount ChildFolderCount ExtendedProperty "
    "ManagedFolderInformation EffectiveRights DistinguishedFolderId PolicyTag ArchiveTag ReplicaList"
).split()
_DEFAULT_FIELDS = {"FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount"}
_ALL_FIELDS = {
    "FolderId",
    "ParentFolderId",
    "FolderClass",
    "DisplayName",
    "TotalCount",
    "ChildFolderCount",
    "EffectiveRights",
    "DistinguishedFolderId",
    "UnreadCount",
}


def folder_shape(elem: etree._Element | None) -> set[str]:
    """The folder properties a <m:FolderShape> asks for."""
    if elem is None:
        return {"FolderId"}
    base = elem.findtext(t("BaseShape")) or "IdOnly"
    fields = {"FolderId"} | (
        _DEFAULT_FIELDS if base == "Default" else _ALL_FIELDS if base == "AllProperties" else set()
    )
    extra = elem.find(t("AdditionalProperties"))
    if extra is not None:
        fields |= {uri.get("FieldURI", "").split(":")[-1] for uri in extra if uri.get("FieldURI")}
    return fields


def render_folder(parent: etree._Element, store: Store, folder: Folder, fields: set[str]) -> None:
    """Append a <t:Folder> (or CalendarFolder, ...) with the asked-for properties in schema order."""
    elem = sub(parent, t(folder.element))
    for name in _BASE_ORDER:
        if name not in fields:
            continue
        if name == "FolderId":
            sub(elem, t("FolderId"), Id=folder.id, ChangeKey=folder.change_key)
        elif name == "ParentFolderId" and folder.parent_id:
            parent_folder = store.folders[folder.parent_id]
            sub(elem, t("ParentFolderId"), Id=parent_folder.id, ChangeKey=parent_folder.change_key)
        elif name == "FolderClass" and folder.folder_class:
            sub(elem, t("FolderClass"), folder.folder_class)
        elif name == "DisplayName":
            sub(elem, t("DisplayName"), folder.display_name)
        elif name == "TotalCount":
            sub(elem, t("TotalCount"), str(len(folder.items)))
        elif name == "ChildFolderCount":
            sub(elem, t("ChildFolderCount"), str(len(store.child_folders(folder))))
        elif name == "EffectiveRights":
            rights = sub(elem, t("EffectiveRights"))
            for right in (
                "CreateAssociated",
                "CreateContents",
                "CreateHierarchy",
                "Delete",
                "Modify",
                "Read",
                "ViewPrivateItems",
            ):
                sub(rights, t(right), "true")
        elif name == "DistinguishedFolderId" and folder.distinguished:
            sub(elem, t("DistinguishedFolderId"), folder.distinguished)
    if "UnreadCount" in fields and folder.element in ("Folder", "TasksFolder"):
        unread = sum(1 for item in folder.items.values() if item.props.get("IsRead") is False)
        sub(elem, t("UnreadCount"), str(unread))


@operation("GetFolder")
def get_folder(ctx: Context, op: etree._Element) -> etree._Element:
    """GetFolder: one response message per requested folder id."""
    fields = folder_shape(op.find(m("FolderShape")))
    ids = op.find(m("FolderIds"))
    if ids is None or len(ids) == 0:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: FolderIds is empty.")
    response, messages = operation_response("GetFolder")
    for ref in ids:
        try:
            folder = ctx.resolve_folder(ref)
        except ItemError as error:
            response_message(messages, "GetFolder", error)
            continue
        message = response_message(messages, "GetFolder")
        render_folder(sub(message, m("Folders")), ctx.store, folder, fields)
    return response


def _descendants(store: Store, folder: Folder, deep: bool) -> list[Folder]:
    out: list[Folder] = []
    for child in store.child_folders(folder):
        out.append(child)
        if deep:
            out.extend(_descendants(store, child, deep))
    return out


@operation("FindFolder")
def find_folder(ctx: Context, op: etree._Element) -> etree._Element:
    """FindFolder with Shallow or Deep traversal and optional IndexedPageFolderView paging."""
    traversal = op.get("Traversal", "Shallow")
    if traversal not in ("Shallow", "Deep", "SoftDeleted"):
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: Traversal '{traversal}'.")
    fields = folder_shape(op.find(m("FolderShape")))
    view = op.find(m("IndexedPageFolderView"))
    limit = int(view.get("MaxEntriesReturned", "0")) if view is not None and view.get("MaxEntriesReturned") else None
    offset = int(view.get("Offset", "0")) if view is not None else 0
    response, messages = operation_response("FindFolder")
    parents = op.find(m("ParentFolderIds"))
    for ref in parents if parents is not None else []:
        try:
            parent = ctx.resolve_folder(ref)
        except ItemError as error:
            response_message(messages, "FindFolder", error)
            continue
        found = [] if traversal == "SoftDeleted" else _descendants(ctx.store, parent, traversal == "Deep")
        page = found[offset : offset + limit if limit else None]
        message = response_message(messages, "FindFolder")
        root = sub(
            message,
            m("RootFolder"),
            IndexedPagingOffset=str(offset + len(page)),
            TotalItemsInView=str(len(found)),
            IncludesLastItemInRange="true" if offset + len(page) >= len(found) else "false",
        )
        folders = sub(root, t("Folders"))
        for folder in page:
            render_folder(folders, ctx.store, folder, fields)
    return response


@operation("CreateFolder", mutates=True)
def create_folder(ctx: Context, op: etree._Element) -> etree._Element:
    """CreateFolder below a parent folder."""
    response, messages = operation_response("CreateFolder")
    parent_ref = op.find(m("ParentFolderId"))
    parent = ctx.resolve_folder(parent_ref[0]) if parent_ref is not None and len(parent_ref) else None
    for new in op.find(m("Folders")) if op.find(m("Folders")) is not None else []:
        try:
            if parent is None:
                raise ItemError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
            name = (new.findtext(t("DisplayName")) or "").strip()
            if not name:
                raise ItemError("ErrorInvalidValueForProperty", "A folder needs a DisplayName.")
            folder = ctx.store.add_folder(parent, name, new.findtext(t("FolderClass")) or "IPF.Note")
        except ItemError as error:
            response_message(messages, "CreateFolder", error)
            continue
        message = response_message(messages, "CreateFolder")
        render_folder(sub(message, m("Folders")), ctx.store, folder, {"FolderId"})
    return response
