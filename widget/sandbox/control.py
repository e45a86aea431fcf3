"""The sandbox's JSON control API under /sandbox/, for tests and scripts (loopback clients only).

GET    /sandbox/stats                     request counts per operation and mailbox, failed logins
GET    /sandbox/faults                    the faults still to fire
POST   /sandbox/faults                    script one fault (an object) or several (a list)
DELETE /sandbox/faults                    remove every scripted fault
POST   /sandbox/users                     add a user: email, password, display_name, username, domain
POST   /sandbox/users/<email>/password    change a user's password: password
POST   /sandbox/deliver                   mail arriving from the internet: from, to, cc, subject,
                                          text or html, received (ISO 8601)
GET    /sandbox/apps                      the applications registered with the identity platform
POST   /sandbox/apps                      register one: client_id, secret or certificate (PEM), permissions,
                                          admin_consent, mailboxes (RBAC scope), redirect_uris, delegated_scopes
POST   /sandbox/apps/<id>/revoke          revoke the app's access and refresh tokens (optionally for one user)
POST   /sandbox/identity                  settings of the identity platform: access_token_lifetime (seconds)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .delivery import deliver_message, message_defaults
from .faults import FaultSpecError, fault_from_dict
from .items import Body, Mailbox

if TYPE_CHECKING:
    from .server import Reply, Sandbox


class BadRequest(ValueError):
    """A request the control API refuses; the message says what is wrong."""


def _reply(status: int, data: Any) -> Reply:
    from .server import json_reply

    return json_reply(status, data)


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _object(body: bytes) -> dict[str, Any]:
    data = _json_body(body)
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{name}' must be a non-empty string")
    return value.strip()


def parse_address(value: Any, field: str) -> Mailbox:
    """An address given as "Name <email>", "email" or {"email": ..., "name": ...}."""
    if isinstance(value, dict):
        email, name = value.get("email"), value.get("name") or ""
    elif isinstance(value, str):
        name, email = parseaddr(value)
    else:
        raise BadRequest(f"'{field}' must hold addresses as strings or objects with 'email'")
    if not isinstance(email, str) or "@" not in email or not isinstance(name, str):
        raise BadRequest(f"'{field}' holds an invalid address: {value!r}")
    return Mailbox(email.strip().lower(), name.strip())


def _addresses(data: dict[str, Any], field: str) -> list[Mailbox]:
    value = data.get(field) or []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise BadRequest(f"'{field}' must be an address or a list of addresses")
    return [parse_address(v, field) for v in value]


def deliver_from_json(sandbox: Sandbox, data: dict[str, Any]) -> list[str]:
    """Deliver one message described as the control API takes it; returns the mailboxes it reached."""
    sender = parse_address(data.get("from"), "from")
    to, cc = _addresses(data, "to"), _addresses(data, "cc")
    if not to and not cc:
        raise BadRequest("give at least one recipient in 'to' or 'cc'")
    subject = data.get("subject", "")
    if not isinstance(subject, str):
        raise BadRequest("'subject' must be a string")
    html, text = data.get("html"), data.get("text")
    if html is not None and not isinstance(html, str) or text is not None and not isinstance(text, str):
        raise BadRequest("'html' and 'text' must be strings")
    received = datetime.now(UTC)
    if data.get("received") is not None:
        try:
            received = datetime.fromisoformat(str(data["received"]).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest("'received' must be an ISO 8601 date and time") from None
        received = (received if received.tzinfo else received.replace(tzinfo=UTC)).astimezone(UTC)
    props: dict[str, Any] = {
        "Subject": subject,
        "ToRecipients": to,
        "CcRecipients": cc,
        "Body": Body("HTML", html) if html is not None else Body("Text", text or ""),
    }
    message_defaults(props, sender, received)
    if not any(box.email in sandbox.store.users for box in to + cc):
        raise BadRequest("none of the recipients has a mailbox in this organisation")
    with sandbox.store.lock:
        delivered = deliver_message(sandbox.store, props, received)
        sandbox.persist()
    return [sandbox.store.folder_of(item).mailbox for item in delivered]


def handle(sandbox: Sandbox, method: str, route: str, body: bytes) -> Reply:
    """Answer one control API request."""
    try:
        return _route(sandbox, method, route, body)
    except BadRequest as error:
        return _reply(400, {"error": str(error)})
    except FaultSpecError as error:
        return _reply(400, {"error": str(error)})


def _route(sandbox: Sandbox, method: str, route: str, body: bytes) -> Reply:
    parts = [unquote(p) for p in route.strip("/").split("/")][1:]
    store = sandbox.store
    if parts == ["stats"] and method == "GET":
        with store.lock:
            stats = sandbox.stats.as_dict(store)
        validator = sandbox.schema_validator
        if validator is not None:
            stats["schema"] = {"checked": validator.checked, "invalid": validator.failures[:50],
                               "invalid_count": len(validator.failures)}
        if sandbox.graph is not None:
            stats["graph"] = sandbox.graph.stats.as_dict()
        return _reply(200, stats)
    if parts == ["faults"]:
        if method == "GET":
            return _reply(200, {"faults": [f.as_dict() for f in sandbox.faults.pending()]})
        if method == "DELETE":
            sandbox.faults.clear()
            return _reply(200, {"faults": []})
        if method == "POST":
            data = _json_body(body)
            specs = data if isinstance(data, list) else [data]
            faults = [fault_from_dict(spec) for spec in specs]
            for fault in faults:
                sandbox.faults.add(fault)
            return _reply(201, {"faults": [f.as_dict() for f in faults]})
    if parts == ["users"] and method == "POST":
        data = _object(body)
        email, password = _string(data, "email"), _string(data, "password")
        with store.lock:
            if email.lower() in store.users:
                return _reply(409, {"error": f"{email} already exists"})
            try:
                user = store.add_user(
                    email,
                    password,
                    _string(data, "display_name", required=False),
                    username=_string(data, "username", required=False),
                    domain=_string(data, "domain", required=False) or "CONTOSO",
                )
            except ValueError as error:
                raise BadRequest(str(error)) from None
            sandbox.persist()
        return _reply(
            201,
            {"email": user.email, "username": user.username, "domain": user.domain, "display_name": user.display_name},
        )
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "password" and method == "POST":
        data = _object(body)
        password = _string(data, "password")
        with store.lock:
            if parts[1].lower() not in store.users:
                return _reply(404, {"error": f"no user {parts[1]}"})
            store.set_password(parts[1], password)
            sandbox.persist()
        return _reply(200, {"email": parts[1].lower(), "password_changed": True})
    if parts == ["deliver"] and method == "POST":
        return _reply(201, {"delivered": deliver_from_json(sandbox, _object(body))})
    if parts[:1] in (["apps"], ["identity"]):
        from .graph.control import handle_identity

        reply = handle_identity(sandbox, method, parts, _object(body) if body else {})
        if reply is not None:
            status, data = reply
            return _reply(status, data)
    return _reply(404, {"error": f"no such control endpoint: {method} {route}"})
