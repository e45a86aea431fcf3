"""The sandbox as a server: EWS over HTTP/1.1 with keep-alive, plus the JSON control API.

HTTP/1.1 keep-alive matters: NTLM authenticates a connection, so the server must hold connections open
and keep per-connection state, which WSGI servers hide. Python's http.server does this with one handler
object per connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxml import etree

from . import control
from .auth import Authenticator, ConnectionAuth
from .faults import Fault, FaultScript
from .operations import MUTATING, OPERATIONS, Context
from .soap import (
    SUPPORTED_VERSIONS,
    EwsFault,
    ItemError,
    envelope,
    fault_element,
    m,
    operation_response,
    parse_request,
    response_message,
    sub,
    to_bytes,
)
from .store import Store

if TYPE_CHECKING:
    from .graph.server import GraphFront
    from .schema import SchemaValidator

log = logging.getLogger(__name__)
EWS_PATH = "/EWS/Exchange.asmx"
# An observer sees every SOAP document: ("request" | "response", the parsed envelope).
Observer = Callable[[str, etree._Element], None]
# Operations whose response messages hold <m:Items> even when they fail (the schema requires it).
ITEM_INFO_OPERATIONS = frozenset({"GetItem", "CreateItem", "UpdateItem", "MoveItem", "CopyItem"})


def failed_response(name: str, error: ItemError) -> etree._Element:
    """An operation's response whose single response message carries `error`."""
    response, messages = operation_response(name)
    message = response_message(messages, name, error)
    if name in ITEM_INFO_OPERATIONS:
        sub(message, m("Items"))
    return response


@dataclass
class Reply:
    """What to send back on the wire (or, with drop=True, to hang up instead)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "text/xml; charset=utf-8"
    drop: bool = False


@dataclass
class Stats:
    """Request counts for the control API and the tests."""

    operations: Counter[str] = field(default_factory=Counter)
    mailboxes: Counter[str] = field(default_factory=Counter)
    by_mailbox_operation: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Requests as they arrive, before any scripted fault (a delay, say) holds them: what is in flight shows here
    # before it shows in the counts of operations performed.
    received: Counter[tuple[str, str]] = field(default_factory=Counter)
    http_requests: int = 0
    unauthorized: int = 0

    def count(self, operation: str, mailbox: str) -> None:
        """Count one operation performed for a mailbox."""
        self.operations[operation] += 1
        self.mailboxes[mailbox] += 1
        self.by_mailbox_operation[(mailbox, operation)] += 1

    def as_dict(self, store: Store) -> dict[str, Any]:
        """JSON form of the counts, with failed logins per account."""
        per_mailbox: dict[str, dict[str, int]] = {}
        for (mailbox, name), number in self.by_mailbox_operation.items():
            per_mailbox.setdefault(mailbox, {})[name] = number
        received: dict[str, dict[str, int]] = {}
        for (mailbox, name), number in self.received.items():
            received.setdefault(mailbox, {})[name] = number
        return {
            "operations": dict(self.operations),
            "mailboxes": dict(self.mailboxes),
            "mailbox_operations": per_mailbox,
            "mailbox_requests_received": received,
            "http_requests": self.http_requests,
            "unauthorized": self.unauthorized,
            "failed_logins": {u.email: u.failed_logins for u in store.users.values() if u.failed_logins},
            "locked": sorted(u.email for u in store.users.values() if u.locked),
            "sent": [{"kind": sent.kind, "from": sent.sender, "to": list(sent.recipients), "subject": sent.subject,
                      "when": sent.when.isoformat()} for sent in store.sent],
        }


class Sandbox:
    """A local Exchange server: a store, its directory's authentication, scripted faults and request stats."""

    def __init__(
        self,
        store: Store | None = None,
        *,
        auth_schemes: tuple[str, ...] = ("NTLM", "Basic"),
        store_path: Path | None = None,
    ):
        self.store = store or Store()
        self.store_path = store_path
        self.authenticator = Authenticator(self.store, auth_schemes)
        self.faults = FaultScript()
        self.stats = Stats()
        self.observers: list[Observer] = []
        self.schema_validator: SchemaValidator | None = None
        self.graph: GraphFront | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The EWS endpoint URL."""
        if self._server is None:
            raise RuntimeError("the sandbox is not serving")
        return f"http://{url_authority(self._server)}{EWS_PATH}"

    @property
    def base_url(self) -> str:
        """The server's root URL (the control API lives under /sandbox/)."""
        return self.url.removesuffix(EWS_PATH)

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Sandbox:
        """Serve in a background thread (port 0 picks a free port)."""
        self._server = _SandboxHTTPServer((host, port), self)
        self._thread = serve_in_background(self._server, "ews-sandbox")
        return self

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in this thread until interrupted."""
        self._server = _SandboxHTTPServer((host, port), self)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start_graph(self, host: str = "127.0.0.1", port: int = 0, *, tenant: str | None = None,
                    tls_dir: Path | None = None) -> GraphFront:
        """Serve Microsoft Graph and the identity platform over HTTPS too, on this sandbox's store (port 0 picks a
        free port); the CA certificate is written to `tls_dir` (a temporary folder if None)."""
        from .graph.identity import DEFAULT_TENANT
        from .graph.server import GraphFront

        if self.graph is not None:
            raise RuntimeError("the Graph front is serving already")
        self.graph = GraphFront(self, tenant=tenant or DEFAULT_TENANT, tls_dir=tls_dir)
        try:
            self.graph.start(host, port)
        except OSError:
            self.graph.stop()
            self.graph = None
            raise
        return self.graph

    def stop(self) -> None:
        """Stop serving and clean up."""
        if self.graph is not None:
            self.graph.stop()
            self.graph = None
        if self._server is not None:
            shut_down(self._server)
            self._server = None
        self.authenticator.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def validate_against(self, schema_folder: Path) -> SchemaValidator:
        """Check every SOAP document received and sent against the EWS schema in `schema_folder`."""
        from .schema import SchemaValidator, load_schema

        self.schema_validator = SchemaValidator(load_schema(schema_folder))
        self.observers.append(self.schema_validator)
        return self.schema_validator

    # -- faults from Python ------------------------------------------------------------------------------------
    def add_fault(self, kind: str, *, operation: str = "*", mailbox: str = "*", times: int = 1, **params: Any) -> Fault:
        """Script a fault (see faults.py for the kinds)."""
        from .faults import fault_from_dict

        return self.faults.add(
            fault_from_dict({"kind": kind, "operation": operation, "mailbox": mailbox, "times": times, **params})
        )

    def persist(self) -> None:
        """Write the store to its file, if the sandbox has one."""
        if self.store_path is not None:
            self.store.save(self.store_path)

    # -- requests ----------------------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, connection: ConnectionAuth, client_host: str
    ) -> Reply:
        """Answer one HTTP request."""
        self.stats.http_requests += 1
        route = path.split("?", 1)[0]
        if route.lower() == EWS_PATH.lower():
            if method != "POST":
                return Reply(405, b"EWS accepts POST only.", content_type="text/plain; charset=utf-8")
            return self._ews(headers, body, connection)
        if route.startswith("/sandbox/") or route == "/sandbox":
            if not _is_loopback(client_host):
                return Reply(
                    403, b'{"error": "the control API answers loopback clients only"}', content_type="application/json"
                )
            return control.handle(self, method, route, body)
        return Reply(404, b"Not found.", content_type="text/plain; charset=utf-8")

    def _unauthorized(self, body: str = "") -> Reply:
        self.stats.unauthorized += 1
        headers = [("WWW-Authenticate", value) for value in self.authenticator.www_authenticate()]
        text = body or "401 - Unauthorized: Access is denied due to invalid credentials."
        return Reply(401, text.encode(), headers=headers, content_type="text/html")

    def _ews(self, headers: dict[str, str], body: bytes, connection: ConnectionAuth) -> Reply:
        with self.store.lock:
            result = self.authenticator.check(headers.get("authorization"), connection)
        if result.challenge:
            return Reply(401, b"", headers=[("WWW-Authenticate", result.challenge)], content_type="text/html")
        if result.user is None:
            return self._unauthorized(result.body)
        user = result.user
        try:
            request = parse_request(body)
        except EwsFault as error:
            return self._fault_reply(error)
        self._observe("request", request.operation.getroottree().getroot())
        name = request.name
        if request.requested_version is not None and request.requested_version not in SUPPORTED_VERSIONS:
            return self._fault_reply(EwsFault("ErrorInvalidServerVersion", "The specified server version is invalid."))
        mailbox = user.email
        if request.impersonated:
            if not user.can_impersonate:
                return self._fault_reply(
                    EwsFault(
                        "ErrorImpersonateUserDenied",
                        "The account does not have permission to impersonate the requested user.",
                    )
                )
            if request.impersonated not in self.store.users:
                return self._fault_reply(
                    EwsFault(
                        "ErrorNonExistentMailbox",
                        f"The SMTP address has no mailbox associated with it: {request.impersonated}",
                    )
                )
            mailbox = request.impersonated
        with self.store.lock:
            self.stats.received[(mailbox, name)] += 1
        fault = self.faults.take(name, mailbox)
        if fault is not None:
            reply = self._scripted(fault, name, user.email)
            if reply is not None:
                return reply
        handler = OPERATIONS.get(name)
        if handler is None:
            return self._fault_reply(
                EwsFault("ErrorInvalidRequest", f"The request is invalid: {name} is not supported.")
            )
        context = Context(sandbox=self, user=user, mailbox=mailbox, request=request)
        try:
            with self.store.lock:
                self.stats.count(name, mailbox)
                response = handler(context, request.operation)
                if name in MUTATING:
                    self.persist()
        except EwsFault as error:
            return self._fault_reply(error)
        except ItemError as error:
            # An item-level error outside any per-item loop: answer it as the operation's single response message.
            response = failed_response(name, error)
        except Exception:
            log.exception("sandbox failed on %s", name)
            return self._fault_reply(EwsFault("ErrorInternalServerError", "An internal server error occurred."))
        root = envelope(response)
        self._observe("response", root)
        return Reply(200, to_bytes(root))

    def _scripted(self, fault: Fault, name: str, owner: str) -> Reply | None:
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.params["seconds"])
            return None
        if kind == "drop":
            return Reply(0, drop=True)
        if kind == "server_busy":
            return self._fault_reply(
                EwsFault(
                    "ErrorServerBusy",
                    "The server cannot service this request right now. Try again later.",
                    values={"BackOffMilliseconds": str(fault.params["back_off_ms"])},
                )
            )
        if kind == "http_503":
            return Reply(
                503,
                b"Service Unavailable",
                headers=[("Retry-After", str(fault.params["retry_after"]))],
                content_type="text/html",
            )
        if kind == "http_500":
            return self._fault_reply(EwsFault("ErrorInternalServerError", "An internal server error occurred."))
        if kind == "password_change":
            with self.store.lock:
                self.store.set_password(fault.mailbox if fault.mailbox != "*" else owner, fault.params["password"])
                self.persist()
            return self._unauthorized()
        codes = {
            "invalid_sync_state": (
                "ErrorInvalidSyncStateData",
                "Synchronization state data is corrupt or otherwise invalid.",
            ),
            "mailbox_move": ("ErrorMailboxMoveInProgress", "The mailbox is being moved. Try again later."),
        }
        code, text = codes[kind]
        root = envelope(failed_response(name, ItemError(code, text)))
        self._observe("response", root)
        return Reply(200, to_bytes(root))

    def _fault_reply(self, error: EwsFault) -> Reply:
        root = envelope(None, fault=fault_element(error))
        self._observe("response", root)
        return Reply(500, to_bytes(root))

    def _observe(self, direction: str, root: etree._Element) -> None:
        for observer in list(self.observers):
            observer(direction, root)


def url_authority(server: ThreadingHTTPServer) -> str:
    """HOST:PORT of a listening server, for a URL (an IPv6 address in brackets)."""
    host, port = server.server_address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve_in_background(server: ThreadingHTTPServer, name: str) -> threading.Thread:
    """Run `server` in a daemon thread."""
    # A short poll keeps stopping quick (the default half second is paid by every test that stops a sandbox).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()
    return thread


def shut_down(server: ThreadingHTTPServer) -> None:
    """Stop a server started by serve_in_background() and close its socket."""
    server.shutdown()
    server.server_close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox):
        self.sandbox = sandbox
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as IIS sets it: a reply goes out as two writes (headers, then body), and with Nagle's algorithm
    # the body waited for the client's delayed ACK of the headers, about 40 ms per reply on loopback.
    disable_nagle_algorithm = True
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    server: _SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection_auth = ConnectionAuth()

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(Reply(400, b"Bad Content-Length.", content_type="text/plain"))
            return
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            reply = self.server.sandbox.handle(
                method, self.path, headers, body, self.connection_auth, self.client_address[0]
            )
        except Exception:
            log.exception("sandbox failed on %s %s", method, self.path)
            reply = Reply(500, b"Internal server error.", content_type="text/plain; charset=utf-8")
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s " + format, self.client_address[0], *args)


def json_reply(status: int, data: Any) -> Reply:
    """A JSON reply for the control API."""
    return Reply(status, json.dumps(data, default=str).encode(), content_type="application/json")
