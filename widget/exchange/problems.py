"""What goes wrong with a mailbox, as every backend reports it: importable by pages and the sync without loading a
protocol library (those are slow to import and belong to this package's adapters only).

Each adapter turns its protocol's failures into these, so that callers decide on meaning, never on a protocol's
error names: refused credentials, throttled until a time, transient, gone, an edit conflict, a sync state the
server no longer knows.
"""

from __future__ import annotations


class ExchangeProblem(Exception):
    """The mailbox could not be used; `kind` says why for code, `message` for people (no secret in either).

    Kinds: credentials, locked (the password was refused: never retry it), access, not_configured, throttled
    (`back_off` seconds to wait, when the server said), mailbox_moving, recipients, too_many, unreachable, timeout,
    tls, server.
    """

    def __init__(self, kind: str, message: str, *, back_off: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.back_off = back_off  # seconds the server asked to wait, for kind "throttled"

    @property
    def refused_credentials(self) -> bool:
        """The server refused the password (or the account is locked): it must not be tried again."""
        return self.kind in ("credentials", "locked")


class SyncStateInvalid(Exception):
    """The server no longer knows the sync state (or delta link) given: a full pass is needed."""


class EditConflict(Exception):
    """The item changed in the mailbox since the version the widget holds: nothing was written."""


class ItemGone(Exception):
    """The mailbox no longer has the item."""
