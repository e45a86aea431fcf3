"""The EWS operations the sandbox answers, registered by name.

Each operation is a function of the request context and the operation element that returns the
response element (``<m:{Name}Response>``). Item-level failures go into the response messages; a
request-level failure raises EwsFault.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from ..soap import EwsFault, ItemError, SoapRequest, local, t
from ..store import Folder, Store, User

if TYPE_CHECKING:
    from ..server import Sandbox

Operation = Callable[["Context", etree._Element], etree._Element]
OPERATIONS: dict[str, Operation] = {}
# Operations that change the store, after which a persistent sandbox writes its file.
MUTATING: set[str] = set()


def operation(name: str, *, mutates: bool = False) -> Callable[[Operation], Operation]:
    """Register an operation handler under its EWS name."""

    def register(func: Operation) -> Operation:
        OPERATIONS[name] = func
        if mutates:
            MUTATING.add(name)
        return func

    return register


@dataclass
class Context:
    """Who is asking, for which mailbox, and the sandbox answering."""

    sandbox: Sandbox
    user: User
    mailbox: str
    request: SoapRequest

    @property
    def store(self) -> Store:
        """The sandbox's store."""
        return self.sandbox.store

    def resolve_folder(self, elem: etree._Element) -> Folder:
        """A <t:FolderId> or <t:DistinguishedFolderId> (with an optional <t:Mailbox>) of a mailbox this user may use."""
        name = local(elem)
        if name == "DistinguishedFolderId":
            mailbox = self.mailbox
            box = elem.find(t("Mailbox"))
            if box is not None:
                address = (box.findtext(t("EmailAddress")) or "").strip().lower()
                if address and address != self.mailbox:
                    if address not in self.store.users:
                        raise ItemError("ErrorNonExistentMailbox", f"No mailbox with such guid or address: {address}")
                    raise ItemError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return self.store.folder(mailbox, elem.get("Id", ""))
        if name == "FolderId":
            folder = self.store.folders.get(elem.get("Id", ""))
            if folder is None:
                raise ItemError("ErrorFolderNotFound", "The specified folder could not be found in the store.")
            self.check_access(folder.mailbox)
            return folder
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: unexpected element {name}.")

    def check_access(self, mailbox: str) -> None:
        """Only the acting mailbox is reachable: others are ErrorAccessDenied, as without delegate rights."""
        if mailbox != self.mailbox:
            raise ItemError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")


# Import the modules that register operations.
from . import availability, folders, items, lookup, search, sync  # noqa: E402,F401
