"""The sandbox's organisation: its users, their mailboxes, folders, items and per-folder change logs.

A change log records, per folder and item, when the item was created, last changed in content, last
changed in its read flag, and whether it is gone. A sync state is a signed point in that log, so that
SyncFolderItems can answer "what changed since" without rescanning the folder, and can tell a state it
issued from a forged one or one issued for another folder.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import os
import pickle
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any, NamedTuple

from .items import Item, Mailbox, new_id
from .soap import ItemError

# (distinguished id, parent, display name, folder class, element)
DISTINGUISHED_FOLDERS = (
    ("root", None, "", None, "Folder"),
    ("msgfolderroot", "root", "Top of Information Store", "IPF.Note", "Folder"),
    ("inbox", "msgfolderroot", "Inbox", "IPF.Note", "Folder"),
    ("sentitems", "msgfolderroot", "Sent Items", "IPF.Note", "Folder"),
    ("drafts", "msgfolderroot", "Drafts", "IPF.Note", "Folder"),
    ("deleteditems", "msgfolderroot", "Deleted Items", "IPF.Note", "Folder"),
    ("calendar", "msgfolderroot", "Calendar", "IPF.Appointment", "CalendarFolder"),
    ("tasks", "msgfolderroot", "Tasks", "IPF.Task", "TasksFolder"),
    ("contacts", "msgfolderroot", "Contacts", "IPF.Contact", "ContactsFolder"),
    ("junkemail", "msgfolderroot", "Junk Email", "IPF.Note", "Folder"),
    ("outbox", "msgfolderroot", "Outbox", "IPF.Note", "Folder"),
    ("recoverableitemsroot", "root", "Recoverable Items", None, "Folder"),
    ("recoverableitemsdeletions", "recoverableitemsroot", "Deletions", None, "Folder"),
)
DEFAULT_DOMAIN = "CONTOSO"


@dataclass
class User:
    """A person (or service account) of the organisation's directory."""

    email: str
    password: str
    display_name: str
    username: str
    domain: str = DEFAULT_DOMAIN
    can_impersonate: bool = False
    failed_logins: int = 0
    locked: bool = False
    # Bumped on every password change, so that connections authenticated with the old one stop working.
    password_version: int = 0
    working_hours: tuple[int, int] = (8 * 60, 17 * 60)
    time_zone: str = "UTC"

    @property
    def mailbox(self) -> Mailbox:
        """This user as an address on an item."""
        return Mailbox(self.email, self.display_name, "Mailbox")


class Sent(NamedTuple):
    """A meeting message the organisation sent: an invitation, an update or a cancellation, to every attendee named
    (people outside the organisation included, who get nothing else from the sandbox), or an attendee's response."""

    kind: str  # "invitation", "update", "cancellation" or "response"
    sender: str
    recipients: tuple[str, ...]
    subject: str
    when: datetime


@dataclass(slots=True)
class LogEntry:
    """What a folder's change log knows of one item."""

    created: int
    content: int
    read: int
    last: int
    deleted: bool = False
    change_key: str = ""


@dataclass(eq=False)
class Folder:
    """A folder of a mailbox with its items and its change log."""

    id: str
    mailbox: str
    distinguished: str | None
    parent_id: str | None
    display_name: str
    folder_class: str | None
    element: str
    change_key: str = ""
    items: dict[str, Item] = field(default_factory=dict)
    log: dict[str, LogEntry] = field(default_factory=dict)
    # (sequence number, item id) for every change, in order; superseded entries are skipped when read.
    changes: list[tuple[int, str]] = field(default_factory=list)
    seq: int = 0

    def record(self, item_id: str, kind: str, change_key: str) -> None:
        """Note a change ("create", "update", "read" or "delete") of an item in the change log."""
        self.seq += 1
        seq = self.seq
        entry = self.log.get(item_id)
        if kind == "create" or entry is None:
            self.log[item_id] = LogEntry(created=seq, content=seq, read=seq, last=seq, change_key=change_key)
        elif kind == "update":
            entry.content = entry.last = seq
        elif kind == "read":
            entry.read = entry.last = seq
        elif kind == "delete":
            entry.deleted = True
            entry.last = seq
        if entry is not None:
            entry.change_key = change_key
        self.changes.append((seq, item_id))

    def changes_since(self, seq: int) -> Iterator[tuple[int, str, LogEntry]]:
        """Items changed after `seq`, each once, at its first change after `seq`: (that point, item id, entry).

        The first change, not the latest: a page that ends at a point of the log must have given every item
        changed up to that point. Placed at its latest change, an old message read while a first sync is under
        way would fall behind the page's end, and the next page, starting after its creation, would report a
        mere read flag change for a message the client never got (Exchange, which remembers what it gave a
        client, sends it as a Create). A later change of an item already given shows again on the next page.

        A generator, so that a page of a sync reads only as far as it goes: a first sync of a large folder
        would otherwise copy the rest of the log once per page.
        """
        changes = self.changes
        placed: set[str] = set()
        for position in range(bisect.bisect_right(changes, (seq, "\uffff")), len(changes)):
            change_seq, item_id = changes[position]
            if item_id not in placed:
                placed.add(item_id)
                yield change_seq, item_id, self.log[item_id]


class Store:
    """All mailboxes of the organisation, with an index of items and folders by id."""

    def __init__(self, *, lockout_threshold: int | None = 5):
        self.users: dict[str, User] = {}
        self.folders: dict[str, Folder] = {}
        self.distinguished: dict[tuple[str, str], str] = {}
        self.items: dict[str, Item] = {}
        self.item_folder: dict[str, str] = {}
        self.lockout_threshold = lockout_threshold
        self.secret = os.urandom(32)
        self._change_counter = count(1)
        self.lock = threading.RLock()
        self.sent: list[Sent] = []  # the delivery log of meeting messages, oldest first
        # The Microsoft identity platform's state (graph.identity.IdentityPlatform), made when Graph is first used.
        self.identity: Any = None

    # -- persistence -------------------------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["lock"]
        state["_change_counter"] = next(self._change_counter)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["_change_counter"] = count(state["_change_counter"])
        state.setdefault("sent", [])  # a store saved before the delivery log existed
        state.setdefault("identity", None)  # ... or before the Graph front existed
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def save(self, path: Path) -> None:
        """Write the whole store to `path` atomically, so that a crash never leaves half a file."""
        with self.lock:
            data = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path) -> Store:
        """Read a store written by save()."""
        with path.open("rb") as handle:
            store = pickle.load(handle)
        if not isinstance(store, Store):
            raise ValueError(f"{path} does not hold a sandbox store")
        return store

    # -- directory ---------------------------------------------------------------------------------------------
    def add_user(
        self,
        email: str,
        password: str,
        display_name: str | None = None,
        *,
        username: str | None = None,
        domain: str = DEFAULT_DOMAIN,
        can_impersonate: bool = False,
    ) -> User:
        """Add a user and create their mailbox with its distinguished folders."""
        email = email.strip().lower()
        if "@" not in email:
            raise ValueError(f"'{email}' is not an e-mail address")
        if email in self.users:
            raise ValueError(f"{email} already exists")
        user = User(
            email=email,
            password=password,
            display_name=display_name or email.split("@")[0].replace(".", " ").title(),
            username=username or email.split("@")[0],
            domain=domain,
            can_impersonate=can_impersonate,
        )
        self.users[email] = user
        ids: dict[str, str] = {}
        for name, parent, display, folder_class, element in DISTINGUISHED_FOLDERS:
            folder = Folder(
                id=new_id(b"\x02"),
                mailbox=email,
                distinguished=name,
                parent_id=ids.get(parent) if parent else None,
                display_name=display,
                folder_class=folder_class,
                element=element,
                change_key=self.next_change_key(),
            )
            ids[name] = folder.id
            self.folders[folder.id] = folder
            self.distinguished[(email, name)] = folder.id
        return user

    def find_user(self, login: str) -> User | None:
        """The user signing in as an e-mail address, user name or DOMAIN\\user name (case-insensitive)."""
        login = login.strip().lower()
        if login.startswith("\\"):
            login = login[1:]
        if login in self.users:
            return self.users[login]
        domain, _, name = login.rpartition("\\")
        for user in self.users.values():
            if user.username.lower() == name and (not domain or domain == user.domain.lower()):
                return user
        return None

    def set_password(self, email: str, password: str) -> User:
        """Change a user's password: requests with the old one get 401 from now on, and Graph refresh tokens issued
        to the user stop working."""
        user = self.users[email.lower()]
        user.password = password
        user.password_version += 1
        user.failed_logins = 0
        user.locked = False
        if self.identity is not None:  # as Entra ID does, a new password ends the user's refresh tokens
            self.identity.revoke_tokens(user=user.email)
        return user

    # -- folders and items -------------------------------------------------------------------------------------
    def next_change_key(self) -> str:
        """A fresh ChangeKey: every update of an item or folder gets a new one."""
        return base64.b64encode(b"CQAAABYAAA" + next(self._change_counter).to_bytes(8, "big")).decode()

    def folder(self, mailbox: str, distinguished: str) -> Folder:
        """A distinguished folder of a mailbox."""
        try:
            return self.folders[self.distinguished[(mailbox, distinguished)]]
        except KeyError:
            raise ItemError("ErrorFolderNotFound", "The specified folder could not be found in the store.") from None

    def child_folders(self, folder: Folder) -> list[Folder]:
        """The folders directly below `folder`."""
        return [f for f in self.folders.values() if f.parent_id == folder.id]

    def add_folder(self, parent: Folder, display_name: str, folder_class: str | None = "IPF.Note") -> Folder:
        """Create a plain folder below `parent`."""
        if any(f.display_name.lower() == display_name.lower() for f in self.child_folders(parent)):
            raise ItemError("ErrorFolderExists", "A folder with the specified name already exists.")
        folder = Folder(
            id=new_id(b"\x02"),
            mailbox=parent.mailbox,
            distinguished=None,
            parent_id=parent.id,
            display_name=display_name,
            folder_class=folder_class,
            element="Folder",
            change_key=self.next_change_key(),
        )
        self.folders[folder.id] = folder
        return folder

    def add_item(self, folder: Folder, element: str, props: dict[str, Any], *, when: datetime | None = None) -> Item:
        """Store a new item in `folder` and log its creation."""
        now = when or datetime.now(UTC)
        item = Item(
            id=new_id(),
            element=element,
            folder_id=folder.id,
            props=props,
            change_key=self.next_change_key(),
            created=now,
            modified=now,
        )
        folder.items[item.id] = item
        self.items[item.id] = item
        folder.record(item.id, "create", item.change_key)
        return item

    def occurrence(self, item_id: str) -> Item | None:
        """An occurrence of a recurring series by its id (computed, not stored; see recurrence.occurrence_by_id)."""
        from .recurrence import occurrence_by_id  # only needed here; a local import leaves the module imports as is

        return occurrence_by_id(self, item_id)

    def folder_of(self, item: Item) -> Folder:
        """The folder holding an item."""
        return self.folders[item.folder_id]

    def touch(self, item: Item, *, read_flag_only: bool = False) -> None:
        """Log an update of an item that was changed in place, with a new ChangeKey."""
        item.change_key = self.next_change_key()
        item.modified = datetime.now(UTC)
        self.folder_of(item).record(item.id, "read" if read_flag_only else "update", item.change_key)

    def remove_item(self, item: Item) -> None:
        """Delete an item for good and log it."""
        folder = self.folder_of(item)
        folder.items.pop(item.id, None)
        self.items.pop(item.id, None)
        folder.record(item.id, "delete", item.change_key)

    def move_item(self, item: Item, destination: Folder) -> Item:
        """Move an item; as in Exchange the moved item gets a new id."""
        props = dict(item.props)
        self.remove_item(item)
        moved = self.add_item(destination, item.element, props, when=item.created)
        return moved

    # -- sync states -------------------------------------------------------------------------------------------
    def sync_state(self, folder: Folder, seq: int) -> str:
        """An opaque, signed sync state for a point in a folder's change log."""
        payload = f"{folder.id}|{seq}".encode()
        mac = hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]
        return base64.b64encode(b"H4sIAAAA" + mac + payload).decode()

    def read_sync_state(self, folder: Folder, state: str) -> int:
        """The change-log point of a sync state issued for `folder`; anything else is ErrorInvalidSyncStateData."""
        invalid = ItemError("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
        try:
            raw = base64.b64decode(state.strip(), validate=True)
        except (ValueError, TypeError):
            raise invalid from None
        if len(raw) < 21 or not raw.startswith(b"H4sIAAAA"):
            raise invalid
        mac, payload = raw[8:20], raw[20:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, payload, hashlib.sha256).digest()[:12]):
            raise invalid
        folder_id, _, seq = payload.decode(errors="replace").rpartition("|")
        if folder_id != folder.id or not seq.isdigit() or int(seq) > folder.seq:
            raise invalid
        return int(seq)
