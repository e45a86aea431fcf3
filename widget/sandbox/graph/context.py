"""One Graph request as the resource handlers see it, and what they answer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from ..store import Folder, Store
from .convert import GraphError, bad_request, graph_id, not_found, parse_body, parse_json, store_id
from .identity import Principal

if TYPE_CHECKING:
    from ..items import Item
    from .server import GraphFront

IMMUTABLE_PREFIX = "AAkALgImm"
_PREFER_PART = re.compile(r'\s*([^=;,\s]+)\s*(?:=\s*("[^"]*"|[^;,]*))?')

# The item elements that Graph shows as messages (meeting messages are eventMessages).
MESSAGE_ELEMENTS = ("Message", "MeetingRequest", "MeetingCancellation", "MeetingResponse")


def parse_prefer(headers: dict[str, str]) -> dict[str, str]:
    """The preferences of a ``Prefer`` header (RFC 7240), e.g. {"odata.maxpagesize": "100", "IdType": "ImmutableId"}."""
    found: dict[str, str] = {}
    for part in re.split(r"[;,]", headers.get("prefer", "")):
        match = _PREFER_PART.match(part)
        if match and match.group(1):
            found[match.group(1)] = (match.group(2) or "").strip().strip('"')
    return found


@dataclass
class GraphReply:
    """A handler's answer: status, JSON data (or raw bytes) and the metadata type its body follows."""

    status: int = 200
    data: Any = None
    # The CSDL type of the body: "message", "Collection(message)", "action:getSchedule" (the action's return type)...
    odata_type: str | None = None
    raw: bytes | None = None
    content_type: str = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class GraphRequest:
    """A request to a mailbox's resources, authenticated and admitted."""

    front: GraphFront
    method: str
    segments: list[str]  # the path after /users/{id}/ (or /me/)
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    principal: Principal
    mailbox: str
    base_url: str
    prefer: dict[str, str]

    @property
    def store(self) -> Store:
        """The sandbox's store (hold store.lock while using it)."""
        return self.front.sandbox.store

    @property
    def immutable_ids(self) -> bool:
        """Whether the client asked for ids that survive moves (Prefer: IdType="ImmutableId")."""
        return self.prefer.get("IdType", "").lower() == "immutableid"

    @property
    def user_url(self) -> str:
        """The absolute URL of the mailbox's user."""
        return f"{self.base_url}/v1.0/users/{quote(self.mailbox)}"

    def json(self) -> dict[str, Any]:
        """The request's JSON body."""
        return parse_json(self.body)

    def action_parameters(self) -> dict[str, Any]:
        """An action's JSON body with its parameter names as Graph documents them: Graph reads them whatever
        their case, and Microsoft's SDKs send the metadata's ("Message", "SaveToSentItems")."""
        return {key[:1].lower() + key[1:]: value for key, value in self.json().items()}

    def link(self, path: str, query: dict[str, str]) -> str:
        """An absolute link below the mailbox's user URL."""
        return f"{self.user_url}/{path}" + (f"?{urlencode(query, safe='$')}" if query else "")

    def context_url(self, fragment: str) -> str:
        """An ``@odata.context`` value."""
        return f"{self.base_url}/v1.0/$metadata#{fragment}"

    # -- ids ---------------------------------------------------------------------------------------------------
    def item_id(self, item: Item) -> str:
        """The id to give the client for an item: its REST id, or its immutable id when asked for."""
        if self.immutable_ids and item.element in MESSAGE_ELEMENTS:
            return self.front.immutable_id(item)
        return graph_id(item.id)

    def find_item(self, given: str, elements: Sequence[str] | None = None) -> Item:
        """An item of this mailbox by its REST or immutable id; 404 ErrorItemNotFound otherwise."""
        store = self.store
        if given.startswith(IMMUTABLE_PREFIX):
            item = self.front.by_immutable_id(given, self.mailbox)
        else:
            item = store.items.get(store_id(given))
        if item is None or store.folder_of(item).mailbox != self.mailbox or (
                elements is not None and item.element not in elements):
            raise not_found()
        return item

    def folder(self, given: str) -> Folder:
        """A mail folder by well-known name or id; 404 otherwise."""
        store = self.store
        folder_id = store.distinguished.get((self.mailbox, given.lower()))
        folder = store.folders.get(folder_id or store_id(given))
        if folder is None or folder.mailbox != self.mailbox:
            raise not_found("The specified folder could not be found in the store.")
        return folder

    # -- query options -----------------------------------------------------------------------------------------
    def select(self) -> set[str] | None:
        """The members asked for with $select, or None for the default set."""
        value = self.query.get("$select")
        return {name.strip() for name in value.split(",") if name.strip()} if value else None

    def int_option(self, name: str, default: int, low: int = 0, high: int = 1000) -> int:
        """A whole-number query option such as $top or $skip."""
        value = self.query.get(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            raise bad_request(f"Invalid value '{value}' for query option '{name}': a whole number from {low} to "
                              f"{high} is expected.", "ErrorInvalidUrlQuery")
        return int(value)


def pick(data: dict[str, Any], select: set[str] | None) -> dict[str, Any]:
    """`data` reduced to the $select members (id and annotations always stay)."""
    if select is None:
        return data
    return {key: value for key, value in data.items() if key in select or key == "id" or key.startswith("@")}


def collection(req: GraphRequest, items: Sequence[Any], render: Callable[[Any], dict[str, Any]], odata_type: str,
               context: str, *, default_top: int = 10) -> GraphReply:
    """A page of a collection ($top, $skip), with an ``@odata.nextLink`` to the next page if there is one."""
    top = req.int_option("$top", default_top, 1, 1000)
    skip = req.int_option("$skip", 0, 0, 10**9)
    page = items[skip:skip + top]
    data: dict[str, Any] = {"@odata.context": req.context_url(context), "value": [render(item) for item in page]}
    if skip + top < len(items):
        query = {**req.query, "$skip": str(skip + top), "$top": str(top)}
        data["@odata.nextLink"] = req.link("/".join(req.segments), query)
    return GraphReply(200, data, f"Collection({odata_type})")


def require(value: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """A member of a request body that must have a given JSON type."""
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,))):
        raise bad_request(f"Property '{name}' has an invalid value.", "ErrorInvalidProperty")
    return value


def writable_props(data: dict[str, Any], writable: set[str], type_name: str) -> dict[str, Any]:
    """The members of a written entity, refusing any the type does not take; annotations (@odata.type, which
    Microsoft's SDKs send) are OData's, not properties, and are left out."""
    unknown = {key for key in data if not key.startswith("@")} - writable
    if unknown:
        raise bad_request(f"Property '{sorted(unknown)[0]}' does not exist on type 'microsoft.graph.{type_name}'. "
                          "Make sure to only use property names that are defined by the type.", "RequestBodyRead")
    return {key: value for key, value in data.items() if not key.startswith("@")}


def shared_props(data: dict[str, Any]) -> dict[str, Any]:
    """The store's properties for the members that messages, events and tasks share (a task has no subject: its
    type refuses one before this is asked)."""
    props: dict[str, Any] = {}
    if "subject" in data:
        props["Subject"] = require(data["subject"] or "", "subject", str)
    if "body" in data:
        props["Body"] = parse_body(data["body"])
    if "importance" in data:
        value = require(data["importance"], "importance", str).lower()
        if value not in ("low", "normal", "high"):
            raise bad_request("'importance' must be low, normal or high.")
        props["Importance"] = value.title()
    if "categories" in data:
        props["Categories"] = [require(c, "categories", str) for c in require(data["categories"], "categories",
                                                                               list)]
    return props


def json_bytes(data: Any) -> bytes:
    """JSON as Graph sends it."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


__all__ = ["GraphError", "GraphReply", "GraphRequest", "collection", "json_bytes", "parse_prefer", "pick"]


def check_if_match(req: GraphRequest, item: Item) -> None:
    """A write with If-Match applies only to the version it names: 412 ErrorIrresolvableConflict otherwise."""
    wanted = req.headers.get("if-match")
    if wanted and wanted.strip() not in ("*", f'W/"{item.change_key}"', f'"{item.change_key}"'):
        raise GraphError(412, "ErrorIrresolvableConflict", "The change key passed in the request does not match the "
                         "current change key of the item.")
