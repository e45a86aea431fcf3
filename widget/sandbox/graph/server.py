"""The Graph front of the sandbox: Microsoft Graph v1.0 and the identity platform over HTTPS, on the store that
the EWS front serves, so that a change through one is seen through the other.

Every request to ``/v1.0/`` carries a Bearer token that the identity platform issued: 401 otherwise. The
token's permissions and the app's mailbox scope (RBAC for Applications) decide 403s; then, as Exchange Online
does, at most 4 requests per app and mailbox run at once (the fifth gets 429 with Retry-After) and scripted
faults (``"protocol": "graph"``) strike. Stats count requests per endpoint and mailbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .. import control
from ..faults import Fault
from ..server import Reply, _Handler, _is_loopback, serve_in_background, shut_down, url_authority
from . import routes, signin
from .context import GraphReply, GraphRequest, json_bytes, parse_prefer
from .convert import GraphError, bad_request
from .delta import ChangeIndex, SnapshotCache
from .identity import DEFAULT_TENANT, IdentityPlatform, InvalidToken, Principal
from .tls import TlsFiles, prepare_tls

if TYPE_CHECKING:
    from ..items import Item
    from ..server import Sandbox
    from ..store import Store

log = logging.getLogger(__name__)
MAILBOX_CONCURRENCY = 4
MAX_BATCH = 20
# An observer sees every JSON body: ("request" | "refused request" | "response", the metadata type or "error", the
# endpoint, the body). A refused request (answered 4xx) may break the metadata; that is why it was refused.
GraphObserver = Callable[[str, str, str, Any], None]


def derive_immutable_id(item_id: str) -> str:
    """The immutable id a message gets when first asked for with Prefer: IdType="ImmutableId"."""
    from .context import IMMUTABLE_PREFIX

    return IMMUTABLE_PREFIX + hashlib.sha256(item_id.encode()).hexdigest()[:40]


def identity_of(store: Store, tenant: str = DEFAULT_TENANT) -> IdentityPlatform:
    """The store's identity platform, created on first use (it is saved with the store)."""
    identity = getattr(store, "identity", None)
    if identity is None:
        identity = IdentityPlatform(tenant)
        store.identity = identity
    return identity


class GraphStats:
    """Counts of Graph requests per endpoint and mailbox, and of the identity platform's answers."""

    def __init__(self) -> None:
        self.by_mailbox_endpoint: Counter[tuple[str, str]] = Counter()
        self.identity: Counter[str] = Counter()
        self.http_requests = 0
        self.unauthorized = 0
        self.throttled = 0
        self.lock = threading.Lock()

    def as_dict(self) -> dict[str, Any]:
        """JSON form for GET /sandbox/stats."""
        with self.lock:
            endpoints: Counter[str] = Counter()
            mailboxes: dict[str, dict[str, int]] = {}
            for (mailbox, endpoint), number in self.by_mailbox_endpoint.items():
                endpoints[endpoint] += number
                mailboxes.setdefault(mailbox, {})[endpoint] = number
            return {"http_requests": self.http_requests, "endpoints": dict(endpoints), "mailboxes": mailboxes,
                    "unauthorized": self.unauthorized, "throttled": self.throttled,
                    "identity": dict(self.identity)}


class GraphFront:
    """Microsoft Graph and the identity platform over HTTPS for a sandbox."""

    def __init__(self, sandbox: Sandbox, *, tenant: str = DEFAULT_TENANT, tls_dir: Path | None = None):
        self.sandbox = sandbox
        self.identity = identity_of(sandbox.store, tenant)
        self.identity.tenant = tenant
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if tls_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="graph-sandbox-tls-")
            tls_dir = Path(self._temporary.name)
        self.tls: TlsFiles = prepare_tls(tls_dir)
        self.snapshots = SnapshotCache()
        self.changes = ChangeIndex()
        self.stats = GraphStats()
        self.observers: list[GraphObserver] = []
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._flight_lock = threading.Lock()
        self._immutable: dict[str, str] = {}  # immutable id -> the message's id now
        self._immutable_of: dict[str, str] = {}  # a message's id (now or before a move) -> its immutable id
        self._server: _GraphHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """https://127.0.0.1:PORT"""
        if self._server is None:
            raise RuntimeError("the Graph front is not serving")
        return f"https://{url_authority(self._server)}"

    @property
    def graph_url(self) -> str:
        """Microsoft Graph's root: https://127.0.0.1:PORT/v1.0"""
        return f"{self.base_url}/v1.0"

    @property
    def authority(self) -> str:
        """The sign-in authority msal takes: https://127.0.0.1:PORT/<tenant>"""
        return f"{self.base_url}/{self.identity.tenant}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients must trust."""
        return self.tls.ca_file

    def start(self, host: str = "127.0.0.1", port: int = 0) -> GraphFront:
        """Serve HTTPS in a background thread (port 0 picks a free port)."""
        self._server = _GraphHTTPServer((host, port), self, self.tls.server_context())
        self._thread = serve_in_background(self._server, "graph-sandbox")
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            shut_down(self._server)
            self._server = None
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    # -- helpers for the handlers ---------------------------------------------------------------------------------
    def display_name(self, email: str) -> str:
        """A user's display name."""
        user = self.sandbox.store.users.get(email)
        return user.display_name if user else email

    def count_identity(self, what: str) -> None:
        """Count one answer of the identity platform."""
        with self.stats.lock:
            self.stats.identity[what] += 1

    def immutable_id(self, item: Item) -> str:
        """The immutable id of a message: kept in its properties (a move, which copies them, keeps it), and derived
        from its id until first given, so that one given and not yet saved is the same after a restart."""
        value = item.props.get("_ImmutableId") or derive_immutable_id(item.id)
        item.props["_ImmutableId"] = value
        self._immutable[value] = item.id
        self._immutable_of[item.id] = value
        return value

    def immutable_id_of_removed(self, item_id: str) -> str:
        """The immutable id a client holds for a message that is gone from a folder (deleted or moved)."""
        return self._immutable_of.get(item_id) or derive_immutable_id(item_id)

    def by_immutable_id(self, value: str, mailbox: str) -> Item | None:
        """The message an immutable id names now, wherever it was moved."""
        store = self.sandbox.store
        item = store.items.get(self._immutable.get(value, ""))
        if item is not None and item.props.get("_ImmutableId") == value:
            return item
        for folder in store.folders.values():
            if folder.mailbox != mailbox:
                continue
            for candidate in folder.items.values():
                if (candidate.props.get("_ImmutableId") or derive_immutable_id(candidate.id)) == value:
                    self.immutable_id(candidate)  # remembered, for the next look-up
                    return candidate
        return None

    # -- requests ----------------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, connection: Any,
               client_host: str) -> Reply:
        """Answer one HTTP request (the HTTP handler's entry point)."""
        with self.stats.lock:
            self.stats.http_requests += 1
        split = urlsplit(path)
        route, query = unquote(split.path), dict(parse_qsl(split.query, keep_blank_values=True))
        base_url = self._base_url(headers)
        if route.startswith("/sandbox/") or route == "/sandbox":
            if not _is_loopback(client_host):
                return Reply(403, b'{"error": "the control API answers loopback clients only"}',
                             content_type="application/json")
            return control.handle(self.sandbox, method, route, body)
        if route == "/v1.0" or route.startswith("/v1.0/"):
            return self.graph(method, route, query, headers, body, base_url)
        reply = signin.handle(self, method, route, query, headers, body, base_url)
        if reply is not None:
            return reply
        return self._error_reply(GraphError(404, "BadRequest", f"Resource not found for the segment '{route}'."),
                                 headers)

    def _base_url(self, headers: dict[str, str]) -> str:
        # Links name the host the client used, when it is one the certificate covers.
        port = self._server.server_address[1] if self._server else 0
        host = headers.get("host", "")
        if host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
            return f"https://{host}"
        return self.base_url

    def graph(self, method: str, route: str, query: dict[str, str], headers: dict[str, str], body: bytes,
              base_url: str) -> Reply:
        """Answer a request to /v1.0/..."""
        try:
            principal = self._authenticate(headers)
            # OData calls a function with parentheses ("messages/delta()", as Microsoft's SDKs write it) or without.
            segments = [part.removesuffix("()") for part in route.removeprefix("/v1.0").split("/") if part]
            if segments == ["$batch"] and method == "POST":
                return self._batch(principal, headers, body, base_url)
            if segments == ["users"] and method == "GET":
                return self._reply(self._users(principal, query, base_url), headers, "GET users")
            return self._mailbox_request(principal, method, segments, query, headers, body, base_url)
        except GraphError as error:
            if error.status == 401:
                with self.stats.lock:
                    self.stats.unauthorized += 1
            return self._error_reply(error, headers)

    def _authenticate(self, headers: dict[str, str]) -> Principal:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            with self.sandbox.store.lock:
                return self.identity.verify_access_token(token.strip())
        except InvalidToken as error:
            raise GraphError(401, error.code, str(error)) from None

    def _resolve_mailbox(self, principal: Principal, segments: list[str]) -> tuple[str, list[str]]:
        store = self.sandbox.store
        if segments[:1] == ["me"]:
            if principal.user is None:
                raise bad_request("/me request is only valid with delegated authentication flow.", "BadRequest")
            return principal.user, segments[1:]
        if segments[:1] != ["users"] or len(segments) < 2:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{'/'.join(segments[:1])}'.")
        given = segments[1].strip().lower()
        if given not in store.users:
            by_oid = {oid: email for email, oid in self.identity.user_object_ids.items()}
            given = by_oid.get(given, given)
        if given not in store.users:
            if len(segments) == 2:
                raise GraphError(404, "Request_ResourceNotFound", f"Resource '{segments[1]}' does not exist or one "
                                 "of its queried reference-property objects are not present.")
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{segments[1]}' is invalid.")
        return given, segments[2:]

    def _mailbox_request(self, principal: Principal, method: str, segments: list[str], query: dict[str, str],
                         headers: dict[str, str], body: bytes, base_url: str) -> Reply:
        mailbox, rest = self._resolve_mailbox(principal, segments)
        if not rest and method != "GET":
            raise GraphError(405, "Request_BadRequest", f"The {method} method is not allowed on a user here.")
        found = routes.find_route(method, rest) if rest else None
        if rest and found is None:
            if routes.allowed_methods(rest):
                raise GraphError(405, "Request_BadRequest", f"The {method} method is not allowed here.")
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[-1]}'.")
        route, ids = found if found else (None, [])
        endpoint = route.name if route else "GET users/{id}"
        access = route.access if route else "user"
        self._authorize(principal, mailbox, access)
        key = (principal.app.client_id, mailbox)
        with self._flight_lock:
            if self._in_flight[key] >= MAILBOX_CONCURRENCY:
                with self.stats.lock:
                    self.stats.throttled += 1
                raise GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                                 headers=[("Retry-After", "1")])
            self._in_flight[key] += 1
        try:
            with self.stats.lock:
                self.stats.by_mailbox_endpoint[(mailbox, endpoint)] += 1
            fault = self.sandbox.faults.take(endpoint, mailbox, protocol="graph")
            if fault is not None:
                reply = self._scripted(fault, principal, mailbox, endpoint, query, base_url, segments, headers)
                if reply is not None:
                    return reply
            if route is None:
                return self._reply(self._user_json(mailbox, base_url), headers, endpoint)
            request = GraphRequest(self, method, rest, query, headers, body, principal, mailbox, base_url,
                                   parse_prefer(headers))
            sent = request.json() if route.body_type and body else None
            try:
                with self.sandbox.store.lock:
                    answer = routes.run(route, request, ids)
                    if method != "GET":
                        self.sandbox.persist()
            except GraphError:
                if sent is not None:  # a body the sandbox refused may break the metadata: that is why
                    self._observe("refused request", route.body_type or "", endpoint, sent)
                raise
            if sent is not None:  # a body the sandbox took must be one Graph takes
                self._observe("request", route.body_type or "", endpoint, sent)
            return self._reply(answer, headers, endpoint)
        except GraphError as error:
            return self._error_reply(error, headers, endpoint)
        except Exception:
            log.exception("Graph sandbox failed on %s", endpoint)
            return self._error_reply(GraphError(500, "InternalServerError", "An internal server error occurred."),
                                     headers, endpoint)
        finally:
            with self._flight_lock:
                self._in_flight[key] -= 1

    def _authorize(self, principal: Principal, mailbox: str, access: str) -> None:
        if not principal.permissions & routes.PERMISSIONS[access]:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if principal.user is not None:
            if principal.user != mailbox:
                raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        elif not principal.app.reaches(mailbox):
            raise GraphError(403, "ErrorAccessDenied", "Access to OData is disabled: the application's "
                             "management scope does not include this mailbox.")

    def _users(self, principal: Principal, query: dict[str, str], base_url: str) -> GraphReply:
        """GET users: the directory's users, with a $filter of startswith terms on displayName, mail or
        userPrincipalName joined by 'or' (what a people picker asks); User.Read.All (or a delegated user) needed."""
        if principal.user is None and not principal.permissions & {"User.Read.All", "User.ReadBasic.All"}:
            raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        text = query.get("$filter", "").strip()
        terms = [re.fullmatch(r"startswith\((displayName|mail|userPrincipalName),\s*'((?:[^']|'')*)'\)", part.strip())
                 for part in re.split(r"\s+or\s+", text)] if text else []
        if any(term is None for term in terms):
            raise bad_request(f"Unsupported or invalid query filter clause specified: '{text}'.",
                              "Request_UnsupportedQuery")
        wanted = [(term.group(1), term.group(2).replace("''", "'").lower()) for term in terms if term]
        top = query.get("$top", "100")
        if not top.isdigit() or not 1 <= int(top) <= 999:
            raise bad_request("'$top' must be a whole number from 1 to 999.", "Request_BadRequest")
        found = []
        with self.sandbox.store.lock:
            for email in sorted(self.sandbox.store.users):
                user = self.sandbox.store.users[email]
                values = {"displayName": user.display_name.lower(), "mail": email, "userPrincipalName": email}
                if not wanted or any(values[name].startswith(prefix) for name, prefix in wanted):
                    found.append(self._user_json(email, base_url).data)
        select = {name.strip() for name in query["$select"].split(",")} if query.get("$select") else None
        value = [{k: v for k, v in entry.items() if k != "@odata.context" and (select is None or k in select
                                                                             or k == "id")}
                 for entry in found[:int(top)]]
        return GraphReply(200, {"@odata.context": f"{base_url}/v1.0/$metadata#users", "value": value},
                          "Collection(user)")

    def _user_json(self, mailbox: str, base_url: str) -> GraphReply:
        user = self.sandbox.store.users[mailbox]
        first, _, last = user.display_name.partition(" ")
        return GraphReply(200, {
            "@odata.context": f"{base_url}/v1.0/$metadata#users/$entity",
            "id": self.identity.user_object_id(mailbox), "displayName": user.display_name, "givenName": first,
            "surname": last or None, "mail": user.email, "userPrincipalName": user.email, "businessPhones": [],
            "jobTitle": None, "officeLocation": None, "preferredLanguage": "en-US", "mobilePhone": None,
        }, "user")

    def _scripted(self, fault: Fault, principal: Principal, mailbox: str, endpoint: str, query: dict[str, str],
                  base_url: str, segments: list[str], headers: dict[str, str]) -> Reply | None:
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.params["seconds"])
            return None
        if kind == "drop":
            return Reply(0, drop=True)
        if kind == "http_429":
            return self._error_reply(GraphError(429, "TooManyRequests", "Please retry again later.", headers=[
                ("Retry-After", str(fault.params["retry_after"]))]), headers, endpoint)
        if kind == "http_503":
            return self._error_reply(GraphError(503, "ServiceUnavailable", "Service Unavailable", headers=[
                ("Retry-After", str(fault.params["retry_after"]))]), headers, endpoint)
        if kind == "delta_reset":
            if not endpoint.endswith("/delta") or not ({"$skiptoken", "$deltatoken"} & set(query)):
                self.sandbox.faults.add(Fault(kind, fault.operation, fault.mailbox, times=1, protocol="graph"))
                return None
            self.snapshots.clear()
            path = "/".join(quote(part) for part in segments)
            from .delta import DeltaGone

            return self._error_reply(DeltaGone(f"{base_url}/v1.0/{path}"), headers, endpoint)
        with self.sandbox.store.lock:
            if kind == "token_revoked":
                self.identity.revoke_tokens(principal.app.client_id)
                error = GraphError(401, "InvalidAuthenticationToken",
                                   "Access token validation failure. The token was revoked.")
            else:  # consent_revoked
                principal.app.admin_consent = False
                if principal.user is not None:
                    principal.app.delegated_scopes = frozenset()
                    self.identity.revoke_tokens(principal.app.client_id)
                error = GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            self.sandbox.persist()
        if error.status == 401:
            with self.stats.lock:
                self.stats.unauthorized += 1
        return self._error_reply(error, headers, endpoint)

    # -- $batch --------------------------------------------------------------------------------------------------------
    def _batch(self, principal: Principal, headers: dict[str, str], body: bytes, base_url: str) -> Reply:
        from .convert import parse_json

        data = parse_json(body)
        requests = data.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("A batch needs a non-empty 'requests' list.", "BadRequest")
        if len(requests) > MAX_BATCH:
            raise bad_request(f"The number of batch requests ({len(requests)}) exceeds the maximum of "
                              f"{MAX_BATCH}.", "BadRequest")
        ids = [entry.get("id") if isinstance(entry, dict) else None for entry in requests]
        if any(not isinstance(i, str) or not i for i in ids) or len(set(ids)) != len(ids):
            raise bad_request("Every batch request needs a unique string 'id'.", "BadRequest")
        statuses: dict[str, int] = {}
        responses = []
        self._observe("request", "batch", "POST $batch", data)
        for entry in requests:
            responses.append(self._batch_step(principal, entry, headers, base_url, statuses))
        return self._reply(GraphReply(200, {"responses": responses}, "batch"), headers, "POST $batch")

    def _batch_step(self, principal: Principal, entry: dict[str, Any], headers: dict[str, str], base_url: str,
                    statuses: dict[str, int]) -> dict[str, Any]:
        step_id = entry["id"]
        depends = entry.get("dependsOn") or []
        method, url = str(entry.get("method", "")).upper(), entry.get("url")
        step_headers, inner_body = entry.get("headers") or {}, entry.get("body")
        if (not isinstance(url, str) or method not in ("GET", "POST", "PATCH", "DELETE")
                or not isinstance(depends, list) or not all(isinstance(d, str) for d in depends)
                or not isinstance(step_headers, dict) or not (inner_body is None or isinstance(inner_body, dict))
                or urlsplit("/" + url.lstrip("/")).path.rstrip("/") == "/$batch"):
            error = bad_request("A batch request needs 'method' (GET, POST, PATCH, DELETE), a relative 'url' (not "
                                "another $batch), and optional 'headers' and 'body' objects and a 'dependsOn' list.",
                                "BadRequest")
            statuses[step_id] = 400
            return {"id": step_id, "status": 400, "body": error.body()}
        if any(statuses.get(d, 424) >= 400 for d in depends):
            statuses[step_id] = 424
            error = GraphError(424, "FailedDependency", "A request this one depends on failed.")
            return {"id": step_id, "status": 424, "body": error.body()}
        inner_headers = {"authorization": headers.get("authorization", ""), **{
            str(k).lower(): str(v) for k, v in step_headers.items() if str(k).lower() != "authorization"}}
        raw = json_bytes(inner_body) if inner_body is not None else b""
        split = urlsplit("/" + url.lstrip("/"))
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        reply = self.graph(method, "/v1.0" + unquote(split.path), query, inner_headers, raw, base_url)
        statuses[step_id] = reply.status
        result: dict[str, Any] = {"id": step_id, "status": reply.status,
                                  "headers": {k: v for k, v in reply.headers if k.lower() != "content-length"}}
        result["headers"]["Content-Type"] = reply.content_type
        if reply.body:
            if reply.content_type.startswith("application/json"):
                result["body"] = json.loads(reply.body)
            else:
                import base64

                result["body"] = base64.b64encode(reply.body).decode()
        return result

    # -- replies -------------------------------------------------------------------------------------------------------
    def _observe(self, direction: str, odata_type: str, endpoint: str, data: Any) -> None:
        for observer in list(self.observers):
            observer(direction, odata_type, endpoint, data)

    def _common_headers(self, headers: dict[str, str]) -> list[tuple[str, str]]:
        request_id = str(uuid.uuid4())
        return [("request-id", request_id), ("client-request-id", headers.get("client-request-id", request_id)),
                ("OData-Version", "4.0"), ("Cache-Control", "no-cache")]

    def _reply(self, answer: GraphReply, headers: dict[str, str], endpoint: str) -> Reply:
        common = self._common_headers(headers) + answer.headers
        if answer.raw is not None:
            return Reply(answer.status, answer.raw, headers=common, content_type=answer.content_type)
        if answer.data is None:
            return Reply(answer.status, b"", headers=common, content_type="text/plain")
        if answer.odata_type:
            self._observe("response", answer.odata_type, endpoint, answer.data)
        return Reply(answer.status, json_bytes(answer.data), headers=common, content_type=answer.content_type)

    def _error_reply(self, error: GraphError, headers: dict[str, str], endpoint: str = "") -> Reply:
        body = error.body(headers.get("client-request-id"))
        self._observe("response", "error", endpoint, body)
        extra = list(error.headers)
        if error.status == 401:
            extra.append(("WWW-Authenticate", 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                          'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"'))
        return Reply(error.status, json_bytes(body), headers=self._common_headers(headers) + extra,
                     content_type="application/json")


class _GraphHTTPServer(ThreadingHTTPServer):
    """A threading HTTPS server whose handler answers through the Graph front."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], front: GraphFront, context: ssl.SSLContext):
        self.sandbox = front  # the shared handler calls server.sandbox.handle(...)
        self.tls_context = context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _GraphHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up during the TLS handshake (or does not trust the CA) is no server error.
        log.debug("Graph sandbox connection from %s ended with an error", client_address, exc_info=True)


class _GraphHandler(_Handler):
    """The EWS front's keep-alive handler, over TLS, with Graph's PATCH and PUT."""

    def setup(self) -> None:
        # The handshake runs here, in the connection's own thread, so a slow or broken client holds up nobody.
        raw = self.request
        raw.settimeout(30)
        self.request = self.server.tls_context.wrap_socket(raw, server_side=True)
        super().setup()

    def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
        self._serve("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def finish(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            super().finish()
