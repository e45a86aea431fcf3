"""The identity platform's HTTP endpoints: discovery documents, the token endpoint and the sign-in page.

Paths are those of login.microsoftonline.com: ``/{tenant}/v2.0/.well-known/openid-configuration``,
``/{tenant}/oauth2/v2.0/token``, ``/{tenant}/oauth2/v2.0/authorize``, ``/{tenant}/discovery/v2.0/keys`` and
``/common/discovery/instance``, where {tenant} is the tenant's domain, its GUID, ``organizations`` or ``common``.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .identity import App, IdentityPlatform, TokenError

if TYPE_CHECKING:
    from ..server import Reply
    from .server import GraphFront

GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")
WRONG_PASSWORD = "Your account or password is incorrect. If you don't remember your password, reset it now."
LOCKED = "Your account is locked. Contact your support person to unlock it, then try again."


def _json(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    from ..server import Reply

    return Reply(status, json.dumps(data).encode(), headers=[("Cache-Control", "no-store"), *(headers or [])],
                 content_type="application/json; charset=utf-8")


def _form(body: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return {}
    return {key: values[-1] for key, values in parsed.items()}


def handle(front: GraphFront, method: str, route: str, query: dict[str, str], headers: dict[str, str],
           body: bytes, base_url: str) -> Reply | None:
    """Answer an identity platform request, or None if the path is not one."""
    identity = front.identity
    parts = route.strip("/").split("/")
    if parts == ["common", "discovery", "instance"] and method == "GET":
        return _json(200, identity.instance_discovery(base_url, query.get("authorization_endpoint")))
    if len(parts) < 2 or parts[0] == "v1.0":
        return None
    tenant, rest = parts[0], parts[1:]
    known = {("v2.0", ".well-known", "openid-configuration"), ("oauth2", "v2.0", "token"),
             ("oauth2", "v2.0", "authorize"), ("discovery", "v2.0", "keys"), ("discovery", "keys")}
    if tuple(rest) not in known:
        return None
    if not identity.names_tenant(tenant):
        error = TokenError("invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                           "correct tenant ID and are signing into the correct cloud.")
        return _json(400, error.body())
    if rest == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
        return _json(200, identity.openid_configuration(base_url, tenant))
    if rest[0] == "discovery" and method == "GET":
        return _json(200, identity.keys())
    if rest == ["oauth2", "v2.0", "token"]:
        if method != "POST":
            return _json(405, TokenError("invalid_request", 900561, "The endpoint only accepts POST requests.")
                         .body())
        return _token(front, _form(body), f"{base_url}/{tenant}/oauth2/v2.0/token", base_url)
    if rest == ["oauth2", "v2.0", "authorize"] and method in ("GET", "POST"):
        form = _form(body) if method == "POST" else {}
        return _authorize(front, query, form, method)
    return _json(405, {"error": "invalid_request", "error_description": f"{method} is not supported here."})


# -- the token endpoint ---------------------------------------------------------------------------------------------
def _token(front: GraphFront, form: dict[str, str], token_endpoint: str, base_url: str) -> Reply:
    identity: IdentityPlatform = front.identity
    store = front.sandbox.store
    grant = form.get("grant_type", "")
    try:
        if grant not in GRANT_TYPES:
            raise TokenError("unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant}'.")
        with store.lock:
            app = identity.apps.get(form.get("client_id", ""))
            confidential = app is not None and bool(app.secret_hash or app.certificate_pem)
            app = identity.authenticate_client(form, token_endpoint,
                                               confidential=confidential or grant == "client_credentials")
            if grant == "client_credentials":
                reply = identity.client_credentials(app, form.get("scope", ""))
            elif grant == "authorization_code":
                _require_delegated(app)
                reply = identity.redeem_code(base_url, app, form, front.display_name)
            else:
                _require_delegated(app)
                reply = identity.redeem_refresh_token(base_url, app, form, front.display_name,
                                                      lambda email: email in store.users)
            front.count_identity(f"token {grant}")
            if grant != "client_credentials":  # codes and refresh tokens are used up and issued: keep that
                front.sandbox.persist()
    except TokenError as error:
        front.count_identity(f"token {grant or 'missing'} refused")
        return _json(error.status, error.body())
    return _json(200, reply)


def _require_delegated(app: App) -> None:
    if not app.delegated_scopes:
        raise TokenError("unauthorized_client", 700016, f"The application '{app.client_id}' has no delegated "
                         "permissions: it cannot sign users in.")


# -- the sign-in page -------------------------------------------------------------------------------------------------
def _authorize(front: GraphFront, query: dict[str, str], form: dict[str, str], method: str) -> Reply:
    from ..server import Reply

    identity = front.identity
    params = {**query, **{k: v for k, v in form.items() if k not in ("login", "passwd")}}
    app = identity.apps.get(params.get("client_id", ""))
    redirect_uri = params.get("redirect_uri", "")
    if app is None:
        return _page(400, params, f"AADSTS700016: Application with identifier '{params.get('client_id', '')}' was "
                     "not found in the directory.", sign_in=False)
    if redirect_uri not in app.redirect_uris:
        return _page(400, params, "AADSTS50011: The redirect URI specified in the request does not match the "
                     "redirect URIs configured for the application.", sign_in=False)

    def back(values: dict[str, str]) -> Reply:
        if params.get("state") is not None:
            values["state"] = params["state"]
        if params.get("response_mode") == "form_post":
            return _form_post(redirect_uri, values)
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return Reply(302, b"", headers=[("Location", redirect_uri + separator + urlencode(values)),
                                        ("Cache-Control", "no-store")], content_type="text/html")

    if params.get("response_type") != "code":
        return back({"error": "unsupported_response_type", "error_description": "AADSTS700054: response_type "
                     "must be 'code'."})
    method_name = params.get("code_challenge_method")
    if params.get("code_challenge") and method_name not in (None, "S256", "plain"):
        return back({"error": "invalid_request", "error_description": "AADSTS501491: Invalid "
                     "code_challenge_method."})
    try:
        scopes = identity.check_delegated_scopes(app, params.get("scope", ""))
    except TokenError as error:
        return back({"error": error.error, "error_description": f"AADSTS{error.code}: {error.description}"})
    if method == "GET":
        return _page(200, params, "")
    store = front.sandbox.store
    login = form.get("login", "").strip()
    with store.lock:
        user = store.find_user(login)
        checked = front.sandbox.authenticator.check_password(user, form.get("passwd", "")) if user else None
        if checked is None or checked.user is None:
            front.count_identity("sign-in refused")
            front.sandbox.persist()  # the failure counts toward the lockout, as over EWS
            return _page(200, params, LOCKED if user is not None and user.locked else WRONG_PASSWORD, login=login)
        user = checked.user
        code = identity.issue_code(app, user.email, redirect_uri, scopes, params.get("code_challenge") or None,
                                   method_name or ("plain" if params.get("code_challenge") else None),
                                   params.get("nonce"))
        front.count_identity("sign-in")
        front.sandbox.persist()
    return back({"code": code, "session_state": "00000000-0000-0000-0000-000000000000"})


def _form_post(redirect_uri: str, values: dict[str, str]) -> Reply:
    """response_mode=form_post: a page whose script posts the answer to the redirect URI (the code then travels in
    a request body, not in a URL that logs and browser history keep)."""
    from ..server import Reply

    nonce = secrets.token_urlsafe(16)
    fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in values.items())
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Working...</title></head><body>'
            f'<form id="answer" method="post" action="{html.escape(redirect_uri)}">{fields}'
            f'<noscript><button type="submit">Continue</button></noscript></form>'
            f'<script nonce="{nonce}">document.getElementById("answer").submit();</script></body></html>')
    return Reply(200, page.encode(), headers=[
        ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'")],
        content_type="text/html; charset=utf-8")


def _page(status: int, params: dict[str, str], message: str, *, login: str = "", sign_in: bool = True) -> Reply:
    from ..server import Reply

    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in params.items())
    error = f'<p id="error" role="alert">{html.escape(message)}</p>' if message else ""
    form = (f'<form method="post" action="authorize">{hidden}'
            f'<label for="login">Email address</label>'
            f'<input id="login" name="login" type="email" autocomplete="username" value="{html.escape(login)}" '
            f'required><label for="passwd">Password</label>'
            f'<input id="passwd" name="passwd" type="password" autocomplete="current-password" required>'
            f'<button id="idSIButton9" type="submit">Sign in</button></form>') if sign_in else ""
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>'
            f'</head><body><main><h1>Sign in</h1>{error}{form}</main></body></html>')
    return Reply(status, page.encode(), headers=[
        ("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")],
        content_type="text/html; charset=utf-8")
