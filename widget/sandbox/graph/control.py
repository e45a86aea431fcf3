"""The control API's identity platform endpoints (/sandbox/apps, /sandbox/identity): registering applications
as an administrator would in Entra ID, with their permissions, consent and RBAC for Applications scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .identity import DEFAULT_APP_PERMISSIONS

if TYPE_CHECKING:
    from ..server import Sandbox


class _Refused(ValueError):
    pass


def _strings(data: dict[str, Any], name: str, default: Any = None) -> Any:
    value = data.get(name, default)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Refused(f"'{name}' must be a list of non-empty strings")
    return [v.strip() for v in value]


def _optional_string(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _Refused(f"'{name}' must be a non-empty string")
    return value.strip() if value else None


def register_from_json(sandbox: Sandbox, data: dict[str, Any]) -> dict[str, Any]:
    """Register an application described as the control API takes it; returns its JSON form."""
    from .server import identity_of

    allowed = {"client_id", "secret", "certificate", "permissions", "admin_consent", "mailboxes", "redirect_uris",
               "delegated_scopes", "display_name"}
    unknown = set(data) - allowed
    if unknown:
        raise _Refused(f"unknown field(s): {', '.join(sorted(unknown))}")
    consent = data.get("admin_consent", True)
    if not isinstance(consent, bool):
        raise _Refused("'admin_consent' must be true or false")
    mailboxes = _strings(data, "mailboxes")
    store = sandbox.store
    with store.lock:
        if mailboxes is not None:
            missing = [m for m in mailboxes if m.lower() not in store.users]
            if missing:
                raise _Refused(f"no mailbox {', '.join(missing)} in this organisation")
        try:
            app = identity_of(store).register(
                client_id=_optional_string(data, "client_id"), secret=_optional_string(data, "secret"),
                certificate_pem=_optional_string(data, "certificate"),
                permissions=tuple(_strings(data, "permissions", list(DEFAULT_APP_PERMISSIONS))),
                admin_consent=consent, mailboxes=mailboxes,
                redirect_uris=tuple(_strings(data, "redirect_uris", []) or ()),
                delegated_scopes=tuple(_strings(data, "delegated_scopes", []) or ()),
                display_name=_optional_string(data, "display_name") or "")
        except ValueError as error:
            raise _Refused(str(error)) from None
        sandbox.persist()
    return app.as_dict()


def handle_identity(sandbox: Sandbox, method: str, parts: list[str], data: dict[str, Any]) -> tuple[int, Any] | None:
    """Answer /sandbox/apps and /sandbox/identity requests: (status, JSON), or None for an unknown path."""
    from .server import identity_of

    identity = identity_of(sandbox.store)
    try:
        if parts == ["apps"] and method == "GET":
            with sandbox.store.lock:
                return 200, {"apps": [app.as_dict() for app in identity.apps.values()]}
        if parts == ["apps"] and method == "POST":
            with sandbox.store.lock:
                if _optional_string(data, "client_id") in identity.apps:
                    return 409, {"error": f"an application {data['client_id']} is registered already"}
            return 201, register_from_json(sandbox, data)
        if len(parts) == 3 and parts[0] == "apps" and parts[2] == "revoke" and method == "POST":
            with sandbox.store.lock:
                if parts[1] not in identity.apps:
                    return 404, {"error": f"no application {parts[1]}"}
                identity.revoke_tokens(parts[1], _optional_string(data, "user"))
                sandbox.persist()
            return 200, {"client_id": parts[1], "revoked": True}
        if parts == ["identity"] and method == "POST":
            lifetime = data.get("access_token_lifetime")
            if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 1 <= lifetime <= 86400:
                raise _Refused("'access_token_lifetime' must be a whole number of seconds from 1 to 86400")
            with sandbox.store.lock:
                identity.access_token_lifetime = lifetime
                sandbox.persist()
            return 200, {"access_token_lifetime": lifetime}
    except _Refused as error:
        return 400, {"error": str(error)}
    return None
