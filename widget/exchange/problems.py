"""What goes wrong with Exchange, in words: importable by pages without loading exchangelib (which is slow to import
and belongs to this package's adapters only)."""

from __future__ import annotations


class ExchangeProblem(Exception):
    """Exchange could not be used; `kind` says why for code, `message` for people (no secret in either)."""

    def __init__(self, kind: str, message: str, *, back_off: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.back_off = back_off  # seconds the server asked to wait, for kind "throttled"
