"""Delta queries: the links that page a round of changes (``$skiptoken``) and end it (``$deltatoken``).

Two kinds of state stand behind a link:

- Mail folders and To Do lists have a change log (store.Folder): a link is a signed point in that log, so it
  costs the sandbox nothing to keep and survives a restart on the same store. A page gives the items changed
  since that point, each once, at its first change (a later change of an item already given shows again on a
  later page: the replay a client must tolerate), and removals as ``@removed``.
- A calendar view's delta depends on a window of computed occurrences, so its state is a snapshot of what the
  client holds (id -> change key), kept in a bounded cache as Exchange Online keeps it: a link whose snapshot
  was evicted, or was issued before a restart, answers 410 Gone, and the client starts over.

A link the sandbox cannot read (forged, for another folder, or after a ``delta_reset`` fault) is also 410 Gone,
with a ``Location`` header holding the delta URL to start over from.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..items import Item
from ..store import Folder
from .context import GraphReply, GraphRequest
from .convert import GraphError, graph_id

DEFAULT_PAGE_SIZE = 10
SNAPSHOT_CACHE_SIZE = 2000


class DeltaGone(GraphError):
    """410 Gone: the delta state is not there (any more); Location says where a new round starts."""

    def __init__(self, restart_url: str):
        super().__init__(410, "SyncStateNotFound", "The sync state generation is not found or has expired. "
                         "Start a new round of delta queries.", headers=[("Location", restart_url)])


def sign_token(secret: bytes, payload: dict[str, Any]) -> str:
    """An opaque, signed link token."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(secret, raw, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac + raw).rstrip(b"=").decode()


def read_token(secret: bytes, token: str) -> dict[str, Any] | None:
    """The payload of a token sign_token() made with `secret`, or None."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    mac, body = raw[:12], raw[12:]
    if len(raw) < 13 or not hmac.compare_digest(mac, hmac.new(secret, body, hashlib.sha256).digest()[:12]):
        return None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def page_size(prefer: dict[str, str], default: int = DEFAULT_PAGE_SIZE) -> int:
    """The page size asked for with ``Prefer: odata.maxpagesize=N``."""
    value = prefer.get("odata.maxpagesize")
    if value is None:
        return default
    try:
        size = int(value)
    except ValueError:
        raise GraphError(400, "ErrorInvalidParameter", f"odata.maxpagesize must be a whole number, not "
                         f"'{value}'.") from None
    if size < 1:
        raise GraphError(400, "ErrorInvalidParameter", "odata.maxpagesize must be at least 1.")
    return size


@dataclass
class LogPage:
    """One page of a change-log round: the (is a removal, id) entries it gives, and where the next page starts."""

    order: list[tuple[bool, str]]
    after: int  # the log point of the last change this page looked at
    complete: bool  # True: the round is over (a deltaLink); False: more pages (a nextLink)


class ChangeIndex:
    """Every change's log point per item and folder, built from the folders' change logs as they grow (under the
    store's lock), so that a round can give each item once: at its first change after the round's start."""

    def __init__(self) -> None:
        self._folders: dict[str, tuple[int, dict[str, list[int]]]] = {}

    def _history(self, folder: Folder) -> dict[str, list[int]]:
        done, history = self._folders.get(folder.id, (0, {}))
        changes = folder.changes
        for seq, item_id in changes[done:]:
            history.setdefault(item_id, []).append(seq)
        self._folders[folder.id] = (len(changes), history)
        return history

    def first_change_after(self, folder: Folder, item_id: str, since: int) -> int | None:
        """The log point of the item's first change after `since`, or None."""
        points = self._history(folder).get(item_id, [])
        index = bisect.bisect_right(points, since)
        return points[index] if index < len(points) else None

    def log_page(self, folder: Folder, since: int, upto: int, after: int, size: int,
                 keep: Callable[[str], bool] | None = None) -> LogPage:
        """The next page of the round that gives the changes of `folder` in (since, upto], from log point `after`.

        Each item changed in that span comes once, where it first changed (its current state: a later change of an
        item already given is given again by the next round, the replay a client must tolerate). An item created
        and deleted within the span is skipped (the client never had it); `keep` filters the items still there (a
        first round's $filter). Changes after `upto` wait for the next round.
        """
        order: list[tuple[bool, str]] = []
        last = after
        changes = folder.changes
        for position in range(bisect.bisect_right(changes, (after, "\uffff")), len(changes)):
            seq, item_id = changes[position]
            if seq > upto:
                break
            if self.first_change_after(folder, item_id, since) != seq:
                continue  # given (or to be given) at its first change in this round
            entry = folder.log[item_id]
            if entry.deleted or item_id not in folder.items:
                if entry.created <= since:
                    if len(order) >= size:
                        return LogPage(order, last, complete=False)
                    order.append((True, item_id))
                last = seq
                continue
            if keep is not None and not keep(item_id):
                last = seq
                continue
            if len(order) >= size:
                return LogPage(order, last, complete=False)
            order.append((False, item_id))
            last = seq
        return LogPage(order, upto, complete=True)


@dataclass
class Snapshot:
    """What a client of a calendar view's delta holds (id -> change key), and a round's pending pages."""

    owner: str  # the mailbox
    window: tuple[str, str]
    held: dict[str, str] = field(default_factory=dict)
    pending: list[tuple[bool, str]] = field(default_factory=list)  # (is a removal, id) still to give this round
    next_held: dict[str, str] = field(default_factory=dict)


class SnapshotCache:
    """The snapshots behind calendar delta links, least recently used evicted first (thread-safe)."""

    def __init__(self, limit: int = SNAPSHOT_CACHE_SIZE):
        self.limit = limit
        self._items: OrderedDict[str, Snapshot] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, snapshot: Snapshot) -> str:
        """Keep a snapshot; returns its key."""
        key = secrets.token_urlsafe(18)
        with self._lock:
            self._items[key] = snapshot
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return key

    def get(self, key: str) -> Snapshot | None:
        """The snapshot under `key` (now the most recently used), or None if it was never kept or was evicted.

        A link stays usable after its successor is issued: a client retrying a page after a lost answer gets the
        same page again."""
        with self._lock:
            snapshot = self._items.get(key)
            if snapshot is not None:
                self._items.move_to_end(key)
            return snapshot

    def clear(self) -> None:
        """Forget every snapshot (the ``delta_reset`` fault's effect on calendar links)."""
        with self._lock:
            self._items.clear()


def diff(held: dict[str, str], current: dict[str, str]) -> list[tuple[bool, str]]:
    """What a client holding `held` must be told to hold `current`: changed or new ids, then removed ids."""
    changes = [(False, key) for key, tag in current.items() if held.get(key) != tag]
    changes += [(True, key) for key in held if key not in current]
    return changes


def log_delta(req: GraphRequest, folder: Folder, path: str, kind: str, odata_type: str,
              render: Callable[[Item, set[str] | None], dict[str, Any]],
              make_filter: Callable[[str | None], Callable[[Item], bool] | None] | None = None) -> GraphReply:
    """A page of a change-log delta (mail folders, To Do lists). A round gives the changes between its start and
    the log's point when it started; its options ($select, a first round's $filter) are kept in the links, as
    Graph encodes them."""
    restart = req.link(path, {})
    secret = req.store.secret
    token = req.query.get("$skiptoken") or req.query.get("$deltatoken")
    if token is not None:
        state = read_token(secret, token)
        points = [state.get(name) for name in ("s", "u", "a")] if state else []
        if (state is None or state.get("k") != kind or state.get("f") != folder.id
                or not all(isinstance(p, int) for p in points) or not points[0] <= points[2] <= points[1]
                or points[1] > folder.seq):
            raise DeltaGone(restart)
        since, upto, after = points
        select, filter_text = state.get("sel"), state.get("flt")
        if "$deltatoken" in req.query:  # a new round: up to where the log is now
            upto, after = folder.seq, since
    else:
        since, upto, after = 0, folder.seq, 0
        select, filter_text = req.query.get("$select"), req.query.get("$filter")
    keep = make_filter(filter_text) if make_filter is not None and filter_text else None
    page = req.front.changes.log_page(folder, since, upto, after, page_size(req.prefer),
                                      None if keep is None else lambda item_id: keep(folder.items[item_id]))
    fields = {part.strip() for part in select.split(",") if part.strip()} if select else None
    # A client that asked for immutable ids holds a removed message by its immutable id.
    gone_id = req.front.immutable_id_of_removed if kind == "mail" and req.immutable_ids else graph_id
    value = [{"id": gone_id(item_id), "@removed": {"reason": "deleted"}} if removed
             else render(folder.items[item_id], fields) for removed, item_id in page.order]
    data: dict[str, Any] = {"@odata.context": req.context_url(f"Collection({odata_type})"), "value": value}
    if page.complete:
        # The next round starts where this one ended; a first round's $filter holds for it alone.
        link = sign_token(secret, {"k": kind, "f": folder.id, "s": upto, "u": upto, "a": upto, "sel": select,
                                   "flt": None})
        data["@odata.deltaLink"] = req.link(path, {"$deltatoken": link})
    else:
        link = sign_token(secret, {"k": kind, "f": folder.id, "s": since, "u": upto, "a": page.after,
                                   "sel": select, "flt": filter_text})
        data["@odata.nextLink"] = req.link(path, {"$skiptoken": link})
    return GraphReply(200, data, f"Collection({odata_type})")
