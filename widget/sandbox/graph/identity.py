"""The Microsoft identity platform of the sandbox: the tenant, its registered applications and the tokens they get.

What msal talks to: the OpenID configuration, the token endpoint (client credentials with a secret or a
certificate's signed assertion, authorization code with PKCE, refresh token), the sign-in page behind
/authorize, the signing keys and instance discovery. Access tokens are RS256 JWTs signed with the tenant's key,
so the Graph front can tell a token it issued from a forged one; refresh tokens and authorization codes are
random strings the platform keeps only as SHA-256 hashes, as it keeps client secrets.

The state lives on the store (``store.identity``), so that registered applications and refresh tokens survive a
restart on the same store file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_RESOURCE = "https://graph.microsoft.com"
DEFAULT_TENANT = "contoso.onmicrosoft.com"
# The fixed GUID that names the sandbox's tenant as well as its domain does.
TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
APPLICATION_PERMISSIONS = frozenset({
    "Mail.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.Read", "Calendars.ReadWrite", "Tasks.Read.All",
    "Tasks.ReadWrite.All", "User.Read.All",
})
DEFAULT_APP_PERMISSIONS = ("Mail.ReadWrite", "Mail.Send", "Calendars.ReadWrite", "Tasks.ReadWrite.All")
DELEGATED_PERMISSIONS = frozenset({
    "User.Read", "Mail.Read", "Mail.ReadWrite", "Mail.Send", "Calendars.Read", "Calendars.ReadWrite", "Tasks.Read",
    "Tasks.ReadWrite",
})
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
DEFAULT_ACCESS_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
AUTH_CODE_LIFETIME = 600


class TokenError(Exception):
    """An OAuth error the token endpoint answers with (RFC 6749 section 5.2, with Entra's AADSTS codes)."""

    def __init__(self, error: str, code: int, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.code, self.description, self.status = error, code, description, status

    def body(self) -> dict[str, Any]:
        """The JSON body Entra sends."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
                                 f"Correlation ID: {correlation} Timestamp: {stamp}",
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class App:
    """An application registered in the tenant (its service principal included)."""

    client_id: str
    display_name: str
    secret_hash: str | None = None
    certificate_pem: str | None = None
    # Application permissions (roles) and whether an administrator consented to them.
    permissions: frozenset[str] = frozenset()
    admin_consent: bool = True
    # RBAC for Applications: the mailboxes the app may reach; None is every mailbox.
    mailboxes: frozenset[str] | None = None
    redirect_uris: tuple[str, ...] = ()
    delegated_scopes: frozenset[str] = frozenset()
    object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Access tokens issued before this moment (seconds since the epoch) are no longer accepted.
    revoked_before: float = 0.0

    def check_secret(self, secret: str) -> bool:
        """Whether `secret` is this app's client secret (compared in constant time)."""
        return self.secret_hash is not None and hmac.compare_digest(self.secret_hash, _hash(secret))

    def thumbprints(self) -> set[str]:
        """The certificate's SHA-1 and SHA-256 thumbprints, base64url, as x5t and x5t#S256 carry them."""
        if self.certificate_pem is None:
            return set()
        cert = x509.load_pem_x509_certificate(self.certificate_pem.encode())
        return {_b64url(cert.fingerprint(hashes.SHA1())), _b64url(cert.fingerprint(hashes.SHA256()))}  # noqa: S303

    def reaches(self, mailbox: str) -> bool:
        """Whether RBAC for Applications lets this app into `mailbox`."""
        return self.mailboxes is None or mailbox.lower() in self.mailboxes

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the control API (never the secret)."""
        return {
            "client_id": self.client_id,
            "display_name": self.display_name,
            "credential": "certificate" if self.certificate_pem else "secret" if self.secret_hash else "none",
            "permissions": sorted(self.permissions),
            "admin_consent": self.admin_consent,
            "mailboxes": None if self.mailboxes is None else sorted(self.mailboxes),
            "redirect_uris": list(self.redirect_uris),
            "delegated_scopes": sorted(self.delegated_scopes),
        }


@dataclass
class AuthCode:
    """An authorization code waiting for its redemption."""

    client_id: str
    user: str
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    expires: float


@dataclass
class RefreshGrant:
    """What a refresh token stands for."""

    client_id: str
    user: str
    scopes: tuple[str, ...]
    expires: float


@dataclass
class Principal:
    """Who a valid access token speaks for."""

    app: App
    user: str | None  # the signed-in user of a delegated token; None for app-only
    permissions: frozenset[str]

    @property
    def delegated(self) -> bool:
        """Whether a user signed in (delegated access)."""
        return self.user is not None


class InvalidToken(Exception):
    """An access token that is missing, malformed, forged, expired or revoked; the message says which."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def split_scopes(scope: str) -> tuple[set[str], set[str]]:
    """(Graph permissions, OpenID scopes) of a scope parameter; Graph's resource prefix is optional."""
    graph, oidc = set(), set()
    for part in scope.split():
        if part in OIDC_SCOPES:
            oidc.add(part)
            continue
        name = part.removeprefix(GRAPH_RESOURCE + "/").removeprefix(GRAPH_RESOURCE.removeprefix("https://") + "/")
        graph.add(name)
    return graph, oidc


class IdentityPlatform:
    """The tenant's directory of applications, its signing key and the grants it has given."""

    def __init__(self, tenant: str = DEFAULT_TENANT):
        self.tenant = tenant
        self.tenant_id = TENANT_ID
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption())
        self.key_id = _b64url(hashlib.sha256(self.signing_key_pem).digest()[:15])
        self.apps: dict[str, App] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.user_object_ids: dict[str, str] = {}
        self.access_token_lifetime = DEFAULT_ACCESS_TOKEN_LIFETIME

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_key", None)  # a key object does not pickle; the PEM does
        return state

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        """The tenant's signing key, loaded once (loading checks the key, which takes milliseconds)."""
        key = self.__dict__.get("_key")
        if key is None:
            key = serialization.load_pem_private_key(self.signing_key_pem, password=None)
            self.__dict__["_key"] = key
        return key

    # -- names ---------------------------------------------------------------------------------------------------
    def names_tenant(self, name: str) -> bool:
        """Whether a path segment names this tenant (its domain, its GUID, or organizations/common)."""
        return name.lower() in (self.tenant.lower(), self.tenant_id, "organizations", "common")

    def user_object_id(self, email: str) -> str:
        """A user's directory object id, stable for the store's life."""
        return self.user_object_ids.setdefault(email.lower(), str(uuid.uuid4()))

    def issuer(self, base_url: str) -> str:
        """The v2.0 issuer of id tokens."""
        return f"{base_url}/{self.tenant_id}/v2.0"

    # -- documents -----------------------------------------------------------------------------------------------
    def openid_configuration(self, base_url: str, tenant_segment: str) -> dict[str, Any]:
        """The OpenID Connect discovery document, with endpoints on the sandbox's own host."""
        root = f"{base_url}/{tenant_segment}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer(base_url),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base_url}/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "preferred_username", "name", "tid",
                                 "ver", "oid"],
            "kerberos_endpoint": f"{root}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }

    def keys(self) -> dict[str, Any]:
        """The JSON Web Key Set that verifies the tenant's tokens."""
        public = self.signing_key.public_key()
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
        jwk.update(kid=self.key_id, use="sig", alg="RS256", issuer=None)
        jwk.pop("issuer")
        return {"keys": [jwk]}

    @staticmethod
    def instance_discovery(base_url: str, authorization_endpoint: str | None) -> dict[str, Any]:
        """The answer of /common/discovery/instance: where the tenant's OpenID configuration lives."""
        # msal names the authority without its port: the tenant is the first segment of the path, whatever the host.
        from urllib.parse import urlsplit

        tenant = urlsplit(authorization_endpoint or "").path.strip("/").split("/", 1)[0] or "common"
        host = base_url.split("://", 1)[1]
        return {
            "tenant_discovery_endpoint": f"{base_url}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    # -- applications --------------------------------------------------------------------------------------------
    def register(self, *, client_id: str | None = None, secret: str | None = None, certificate_pem: str | None = None,
                 permissions: tuple[str, ...] | frozenset[str] = DEFAULT_APP_PERMISSIONS, admin_consent: bool = True,
                 mailboxes: list[str] | None = None, redirect_uris: tuple[str, ...] = (),
                 delegated_scopes: tuple[str, ...] | frozenset[str] = (), display_name: str = "") -> App:
        """Register an application; ValueError says what is wrong with the registration."""
        client_id = client_id or str(uuid.uuid4())
        if client_id in self.apps:
            raise ValueError(f"an application {client_id} is registered already")
        unknown = set(permissions) - APPLICATION_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown application permission(s): {', '.join(sorted(unknown))}")
        unknown = set(delegated_scopes) - DELEGATED_PERMISSIONS
        if unknown:
            raise ValueError(f"unknown delegated permission(s): {', '.join(sorted(unknown))}")
        if certificate_pem is not None:
            try:
                x509.load_pem_x509_certificate(certificate_pem.encode())
            except ValueError:
                raise ValueError("'certificate' must be a PEM certificate") from None
        for uri in redirect_uris:
            if not uri.startswith(("https://", "http://localhost", "http://127.0.0.1")):
                raise ValueError(f"a redirect URI must be https (or http on localhost): {uri}")
        app = App(client_id=client_id, display_name=display_name or f"App {client_id[:8]}",
                  secret_hash=_hash(secret) if secret else None, certificate_pem=certificate_pem,
                  permissions=frozenset(permissions), admin_consent=admin_consent,
                  mailboxes=None if mailboxes is None else frozenset(m.lower() for m in mailboxes),
                  redirect_uris=tuple(redirect_uris), delegated_scopes=frozenset(delegated_scopes))
        self.apps[client_id] = app
        return app

    def revoke_tokens(self, client_id: str | None = None, user: str | None = None) -> None:
        """Revoke the access and refresh tokens of an app (or every app), optionally only for one user."""
        now = time.time()
        for app in self.apps.values():
            # Revoking one user's sessions leaves the app's other tokens alone.
            if (client_id is None or app.client_id == client_id) and user is None:
                app.revoked_before = now
        for token_hash, grant in list(self.refresh_tokens.items()):
            if (client_id is None or grant.client_id == client_id) and (user is None or grant.user == user.lower()):
                del self.refresh_tokens[token_hash]

    # -- tokens ----------------------------------------------------------------------------------------------------
    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": self.key_id})

    def _access_token(self, app: App, user: str | None, permissions: frozenset[str]) -> tuple[str, int]:
        now = int(time.time())
        lifetime = self.access_token_lifetime
        claims: dict[str, Any] = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": app.client_id,
            "tid": self.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if user is None:
            claims.update(oid=app.object_id, sub=app.object_id, idtyp="app", roles=sorted(permissions))
        else:
            claims.update(oid=self.user_object_id(user), sub=self.user_object_id(user), upn=user, idtyp="user",
                          scp=" ".join(sorted(permissions)))
        # iat has whole seconds: a token issued in the second of a revocation must not outlive it.
        claims["iat_ms"] = int(time.time() * 1000)
        return self._sign(claims), lifetime

    def verify_access_token(self, token: str) -> Principal:
        """Who an access token speaks for; InvalidToken when it is not one the platform issued or no longer holds."""
        try:
            claims = jwt.decode(token, self.signing_key.public_key(), algorithms=["RS256"], audience=GRAPH_RESOURCE,
                                options={"require": ["exp", "iat", "appid"]})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.") \
                from None
        except jwt.InvalidTokenError:
            raise InvalidToken("InvalidAuthenticationToken", "IDX14100: JWT is not well formed.") from None
        app = self.apps.get(claims["appid"])
        if app is None or claims.get("iat_ms", 0) / 1000 < app.revoked_before:
            raise InvalidToken("InvalidAuthenticationToken", "Access token validation failure. The token was revoked.")
        user = claims.get("upn") if claims.get("idtyp") == "user" else None
        granted = frozenset(claims.get("roles") or ()) if user is None else frozenset(claims.get("scp", "").split())
        if user is None and not app.admin_consent:
            granted = frozenset()  # consent withdrawn: the token still authenticates, but grants nothing
        return Principal(app=app, user=user, permissions=granted)

    def _id_token(self, base_url: str, app: App, user: str, display_name: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "aud": app.client_id,
            "iss": self.issuer(base_url),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": display_name,
            "oid": self.user_object_id(user),
            "preferred_username": user,
            "sub": _b64url(hashlib.sha256(f"{app.client_id}|{user}".encode()).digest()),
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def _client_info(self, user: str) -> str:
        import json

        return _b64url(json.dumps({"uid": self.user_object_id(user), "utid": self.tenant_id}).encode())

    def authenticate_client(self, form: dict[str, str], token_endpoint: str, *, confidential: bool) -> App:
        """The app a token request comes from, checked by its secret or its signed assertion."""
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise TokenError("unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{self.tenant}'.")
        if "client_assertion" in form:
            self._check_assertion(app, form, token_endpoint)
        elif "client_secret" in form:
            if not app.check_secret(form["client_secret"]):
                raise TokenError("invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                 "client secret value, not the client secret ID, for a secret added to app "
                                 f"'{client_id}'.", status=401)
        elif confidential:
            raise TokenError("invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.", status=401)
        return app

    def _check_assertion(self, app: App, form: dict[str, str], token_endpoint: str) -> None:
        def refuse(why: str) -> TokenError:
            return TokenError("invalid_client", 700027, f"Client assertion failed signature validation. {why}",
                              status=401)

        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise TokenError("invalid_request", 50027, "The client_assertion_type is not supported.")
        if app.certificate_pem is None:
            raise refuse("The application has no certificate.")
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise refuse("The assertion is not a JWT.") from None
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        if thumbprint not in app.thumbprints():
            raise TokenError("invalid_client", 700027,
                             f"Client assertion contains an invalid signature. [Reason - The key was not found., "
                             f"Thumbprint of key used by client: '{thumbprint}']", status=401)
        public = x509.load_pem_x509_certificate(app.certificate_pem.encode()).public_key()
        try:
            claims = jwt.decode(assertion, public, algorithms=["RS256", "PS256"], audience=token_endpoint,
                                options={"require": ["exp", "aud", "iss", "sub", "jti"]})
        except jwt.ExpiredSignatureError:
            raise refuse("The assertion has expired.") from None
        except jwt.InvalidAudienceError:
            raise TokenError("invalid_client", 700021, "Client assertion audience claim does not match Realm "
                             "issuer.", status=401) from None
        except jwt.InvalidTokenError as error:
            raise refuse(str(error)) from None
        if claims["iss"] != app.client_id or claims["sub"] != app.client_id:
            raise TokenError("invalid_client", 700023, "Client assertion issuer and subject must be the client id.",
                             status=401)
        # No single use: msal reuses an assertion for its lifetime (10 minutes), and Entra accepts that.

    def client_credentials(self, app: App, scope: str) -> dict[str, Any]:
        """An app-only token: the app's consented application permissions."""
        if scope.strip() != GRAPH_RESOURCE + "/.default":
            raise TokenError("invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows must "
                             "have a scope value with /.default suffixed to the resource identifier "
                             "(application ID URI).")
        granted = app.permissions if app.admin_consent else frozenset()
        token, lifetime = self._access_token(app, None, granted)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def _delegated_reply(self, base_url: str, app: App, user: str, display_name: str, scopes: tuple[str, ...],
                         nonce: str | None) -> dict[str, Any]:
        graph, oidc = split_scopes(" ".join(scopes))
        token, lifetime = self._access_token(app, user, frozenset(graph))
        reply: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(sorted(f"{GRAPH_RESOURCE}/{name}" for name in graph) + sorted(oidc)),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
            "client_info": self._client_info(user),
        }
        if "openid" in oidc:
            reply["id_token"] = self._id_token(base_url, app, user, display_name, nonce)
        if "offline_access" in oidc:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[_hash(refresh)] = RefreshGrant(app.client_id, user, scopes,
                                                               time.time() + REFRESH_TOKEN_LIFETIME)
            reply["refresh_token"] = refresh
        return reply

    def check_delegated_scopes(self, app: App, scope: str) -> tuple[str, ...]:
        """The scopes of a delegated request, if the app may ask for them; TokenError otherwise."""
        graph, oidc = split_scopes(scope)
        refused = graph - app.delegated_scopes
        if refused:
            raise TokenError("invalid_scope", 65001,
                             f"The user or administrator has not consented to use the application with ID "
                             f"'{app.client_id}' for the permission(s) {', '.join(sorted(refused))}.")
        return tuple(sorted(graph) + sorted(oidc))

    def issue_code(self, app: App, user: str, redirect_uri: str, scopes: tuple[str, ...], code_challenge: str | None,
                   code_challenge_method: str | None, nonce: str | None) -> str:
        """An authorization code for a user who signed in."""
        code = secrets.token_urlsafe(48)
        self.codes[_hash(code)] = AuthCode(app.client_id, user.lower(), redirect_uri, scopes, code_challenge,
                                           code_challenge_method, nonce, time.time() + AUTH_CODE_LIFETIME)
        return code

    def redeem_code(self, base_url: str, app: App, form: dict[str, str], display_name_of: Any) -> dict[str, Any]:
        """Tokens for an authorization code, checked against its redirect URI and PKCE verifier (single use)."""
        grant = self.codes.pop(_hash(form.get("code", "")), None)
        if grant is None or grant.client_id != app.client_id:
            raise TokenError("invalid_grant", 70008,
                             "The provided authorization code or refresh token has expired due to inactivity or has "
                             "been used already. Send a new interactive authorization request for this user and "
                             "resource.")
        if grant.expires < time.time():
            raise TokenError("invalid_grant", 70008, "The provided authorization code has expired.")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise TokenError("invalid_grant", 50148,
                             "The redirect_uri does not match the redirect URI of the authorization request.")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if grant.code_challenge_method == "S256":
                computed = _b64url(hashlib.sha256(verifier.encode()).digest())
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, grant.code_challenge):
                raise TokenError("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge "
                                 "supplied in the authorization request.")
        return self._delegated_reply(base_url, app, grant.user, display_name_of(grant.user), grant.scopes,
                                     grant.nonce)

    def redeem_refresh_token(self, base_url: str, app: App, form: dict[str, str], display_name_of: Any,
                             user_exists: Any) -> dict[str, Any]:
        """New tokens for a refresh token, which is used up (rotation): a second use fails."""
        grant = self.refresh_tokens.pop(_hash(form.get("refresh_token", "")), None)
        if grant is None or grant.client_id != app.client_id or not user_exists(grant.user):
            raise TokenError("invalid_grant", 70000,
                             "The provided value for the 'refresh_token' is not valid: it is unknown, revoked or was "
                             "used already.")
        if grant.expires < time.time():
            raise TokenError("invalid_grant", 700082, "The refresh token has expired due to inactivity.")
        scopes = grant.scopes
        if form.get("scope"):
            asked_graph, _ = split_scopes(form["scope"])
            had_graph, _ = split_scopes(" ".join(grant.scopes))
            if asked_graph - had_graph - app.delegated_scopes:
                raise TokenError("invalid_scope", 65001, "The refresh token does not grant the scopes asked for.")
            scopes = self.check_delegated_scopes(app, form["scope"])
        return self._delegated_reply(base_url, app, grant.user, display_name_of(grant.user), scopes, None)
