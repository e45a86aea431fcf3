"""Scripted faults: what the sandbox does instead of answering, per operation and mailbox, for the next N calls.

Tests and the control API script a fault; the server asks `take()` before each EWS operation and acts
on what it gets. A fault with ``after`` lets that many matching calls through first, so that it strikes in
the middle of a client's work (the third page of a sync, say). Kinds and their parameters:

- ``server_busy`` (``back_off_ms``): SOAP fault ErrorServerBusy with BackOffMilliseconds.
- ``http_503`` (``retry_after``): HTTP 503 with a Retry-After header, in seconds.
- ``http_500``: HTTP 500 with a SOAP fault ErrorInternalServerError.
- ``delay`` (``seconds``): the reply comes late, then normally.
- ``drop``: the connection is closed without a reply.
- ``invalid_sync_state``: the operation's response message carries ErrorInvalidSyncStateData.
- ``mailbox_move``: the operation's response message carries ErrorMailboxMoveInProgress.
- ``password_change`` (``password``): the mailbox owner's password changes now; this and every later
  request with the old password gets 401.

With ``"protocol": "graph"`` a fault strikes the Graph front instead (``operation`` is then an endpoint as
``GET /sandbox/stats`` names it, e.g. ``GET mailFolders/{id}/messages/delta``, with or without the method, or
``*``). Its kinds:

- ``http_429`` (``retry_after``): 429 TooManyRequests with Retry-After, in seconds.
- ``http_503`` (``retry_after``): 503 ServiceUnavailable with Retry-After.
- ``delay`` (``seconds``) and ``drop``: as above.
- ``delta_reset``: the next delta request that carries a link answers 410 Gone (SyncStateNotFound) with a
  Location to start over from.
- ``token_revoked``: the app's access and refresh tokens are revoked now; this request and every later one with
  them gets 401 InvalidAuthenticationToken.
- ``consent_revoked``: the administrator withdraws the app's consent; this request and every later one get 403
  ErrorAccessDenied, and new tokens carry no permission.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS: dict[str, dict[str, type]] = {
    "server_busy": {"back_off_ms": int},
    "http_503": {"retry_after": int},
    "http_500": {},
    "delay": {"seconds": float},
    "drop": {},
    "invalid_sync_state": {},
    "mailbox_move": {},
    "password_change": {"password": str},
}
GRAPH_FAULT_KINDS: dict[str, dict[str, type]] = {
    "http_429": {"retry_after": int},
    "http_503": {"retry_after": int},
    "delay": {"seconds": float},
    "drop": {},
    "delta_reset": {},
    "token_revoked": {},
    "consent_revoked": {},
}
KINDS_BY_PROTOCOL = {"ews": FAULT_KINDS, "graph": GRAPH_FAULT_KINDS}
DEFAULTS: dict[str, Any] = {"back_off_ms": 30000, "retry_after": 30, "seconds": 1.0}


class FaultSpecError(ValueError):
    """A fault description that cannot be scripted; its message says why."""


@dataclass
class Fault:
    """One scripted fault and how many more times it fires."""

    kind: str
    operation: str = "*"
    mailbox: str = "*"
    times: int = 1
    after: int = 0  # matching calls still to let through before it fires
    params: dict[str, Any] = field(default_factory=dict)
    protocol: str = "ews"

    def matches(self, operation: str, mailbox: str | None, protocol: str = "ews") -> bool:
        """Whether this fault applies to a call of `operation` for `mailbox` over `protocol`."""
        if protocol != self.protocol:
            return False
        # A Graph endpoint may be named with its method ("GET messages/{id}") or without it ("messages/{id}").
        names = ("*", operation, operation.partition(" ")[2]) if protocol == "graph" else ("*", operation)
        return self.operation in names and (self.mailbox == "*" or self.mailbox == (mailbox or ""))

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "kind": self.kind,
            "operation": self.operation,
            "mailbox": self.mailbox,
            "times": self.times,
            "after": self.after,
            **({"protocol": self.protocol} if self.protocol != "ews" else {}),
            **self.params,
        }


def fault_from_dict(data: Any) -> Fault:
    """Validate a fault description (from JSON or Python) and build the Fault; FaultSpecError says what is wrong."""
    if not isinstance(data, dict):
        raise FaultSpecError("a fault is a JSON object with at least 'kind'")
    protocol = data.get("protocol", "ews")
    if protocol not in KINDS_BY_PROTOCOL:
        raise FaultSpecError("'protocol' must be 'ews' or 'graph'")
    kinds = KINDS_BY_PROTOCOL[protocol]
    kind = data.get("kind")
    if kind not in kinds:
        raise FaultSpecError(f"'kind' must be one of: {', '.join(kinds)} (protocol {protocol})")
    allowed = {"kind", "protocol", "operation", "mailbox", "times", "after", *kinds[kind]}
    unknown = set(data) - allowed
    if unknown:
        raise FaultSpecError(f"unknown field(s) for kind {kind}: {', '.join(sorted(unknown))}")
    times = data.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise FaultSpecError("'times' must be a positive whole number")
    after = data.get("after", 0)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise FaultSpecError("'after' must be a whole number, 0 or more")
    for name in ("operation", "mailbox"):
        if name in data and not isinstance(data[name], str):
            raise FaultSpecError(f"'{name}' must be a string")
    params: dict[str, Any] = {}
    for name, kind_type in kinds[kind].items():
        value = data.get(name, DEFAULTS.get(name))
        if name == "password" and value is None:
            value = secrets.token_urlsafe(12)
        if kind_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind_type) or isinstance(value, bool):
            raise FaultSpecError(f"'{name}' must be a {kind_type.__name__}")
        if kind_type in (int, float) and value < 0:
            raise FaultSpecError(f"'{name}' must not be negative")
        params[name] = value
    return Fault(
        kind=kind,
        operation=data.get("operation", "*"),
        mailbox=data.get("mailbox", "*").lower(),
        times=times,
        after=after,
        params=params,
        protocol=protocol,
    )


class FaultScript:
    """The faults waiting to fire, thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: dict[str, int] = {}

    def add(self, fault: Fault) -> Fault:
        """Script a fault."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every scripted fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """The faults still to fire."""
        with self._lock:
            return list(self._faults)

    def take(self, operation: str, mailbox: str | None, protocol: str = "ews") -> Fault | None:
        """The first fault matching this call and ready to fire, counted down (and removed when used up).

        Every matching fault still waiting (``after``) counts this call, whichever fault fires, so that
        ``after=N`` always means "from the (N+1)th matching call on".
        """
        chosen = None
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(operation, mailbox, protocol):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                elif chosen is None:
                    chosen = fault
            if chosen is not None:
                chosen.times -= 1
                if chosen.times <= 0:
                    self._faults.remove(chosen)
                self.fired[chosen.kind] = self.fired.get(chosen.kind, 0) + 1
        return chosen
