"""The identity platform, driven by msal itself: discovery, client secret, certificate, refresh, expiry, errors."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from graph_client import (
    APP_ID,
    APP_SECRET,
    GRAPH_SCOPE,
    Graph,
    ca_session,
    confidential_app,
    form_post_answer,
    register_app,
    sign_in_without_browser,
)

from widget.sandbox import Sandbox
from widget.sandbox.graph.identity import TENANT_ID
from widget.sandbox.graph.server import GraphFront


def _certificate() -> tuple[str, str, str]:
    """A self-signed certificate as an app registration holds it: (private key PEM, certificate PEM, SHA-1 hex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crm-widget")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert.fingerprint(hashes.SHA1()).hex()


def test_it_serves_the_openid_configuration_on_its_own_https_host(front: GraphFront) -> None:
    session = ca_session(front)
    for tenant in ("contoso.onmicrosoft.com", TENANT_ID):
        config = session.get(f"{front.base_url}/{tenant}/v2.0/.well-known/openid-configuration", timeout=10).json()
        assert config["token_endpoint"] == f"{front.base_url}/{tenant}/oauth2/v2.0/token"
        assert config["authorization_endpoint"] == f"{front.base_url}/{tenant}/oauth2/v2.0/authorize"
        assert config["issuer"] == f"{front.base_url}/{TENANT_ID}/v2.0"
    keys = session.get(config["jwks_uri"], timeout=10).json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["kid"]
    unknown = session.get(f"{front.base_url}/fabrikam.com/v2.0/.well-known/openid-configuration", timeout=10)
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [90002]


def test_it_refuses_clients_that_do_not_trust_its_ca(front: GraphFront) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{front.authority}/v2.0/.well-known/openid-configuration", timeout=10)


def test_msal_gets_an_app_token_with_a_client_secret_and_reads_an_inbox(front: GraphFront) -> None:
    app = confidential_app(front)
    result = app.acquire_token_for_client(GRAPH_SCOPE)
    assert result["token_type"] == "Bearer" and result["expires_in"] > 300
    assert result["token_source"] == "identity_provider"
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send", "Tasks.ReadWrite.All"]
    assert claims["tid"] == TENANT_ID and claims["appid"] == APP_ID
    # msal serves the second call from its cache: the sandbox issued one token.
    assert app.acquire_token_for_client(GRAPH_SCOPE)["token_source"] == "cache"
    assert front.stats.as_dict()["identity"]["token client_credentials"] == 1
    client = Graph(front, result["access_token"], ca_session(front))
    inbox = client.ok("GET", "users/alice@contoso.com/mailFolders/inbox")
    assert inbox["displayName"] == "Inbox"


def test_msal_follows_instance_discovery_to_the_sandbox(front: GraphFront) -> None:
    app = confidential_app(front, instance_discovery=f"{front.base_url}/common/discovery/instance",
                           validate_authority=True)
    assert "access_token" in app.acquire_token_for_client(GRAPH_SCOPE)
    assert front.stats.http_requests >= 3  # discovery, the OpenID configuration, the token


@pytest.mark.parametrize(("client_id", "secret", "scope", "error", "code"), [
    (APP_ID, "not-the-secret", GRAPH_SCOPE, "invalid_client", 7000215),
    ("00000000-0000-0000-0000-000000000000", APP_SECRET, GRAPH_SCOPE, "unauthorized_client", 700016),
    (APP_ID, APP_SECRET, ["https://graph.microsoft.com/Mail.Read"], "invalid_scope", 1002012),
])
def test_a_refused_token_request_says_why(front: GraphFront, client_id: str, secret: str, scope: list[str],
                                          error: str, code: int) -> None:
    result = confidential_app(front, client_id, secret).acquire_token_for_client(scope)
    assert result["error"] == error
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")
    assert "access_token" not in result


def test_msal_gets_an_app_token_with_a_certificate(graph_sandbox: Sandbox, front: GraphFront) -> None:
    key_pem, cert_pem, sha1 = _certificate()
    register_app(graph_sandbox, client_id="cert-app", certificate=cert_pem)
    for credential in ({"private_key": key_pem, "thumbprint": sha1},  # RS256 with x5t
                       {"private_key": key_pem, "public_certificate": cert_pem}):  # PS256 with x5t#S256
        result = confidential_app(front, "cert-app", credential).acquire_token_for_client(GRAPH_SCOPE)
        assert "access_token" in result, result
        client = Graph(front, result["access_token"], ca_session(front))
        folder = client.ok("GET", "users/bob@contoso.com/mailFolders/sentitems")
        assert folder["displayName"] == "Sent Items"
    other_key, _, _ = _certificate()
    forged = confidential_app(front, "cert-app", {"private_key": other_key, "thumbprint": sha1})
    refused = forged.acquire_token_for_client(GRAPH_SCOPE)
    assert refused["error"] == "invalid_client" and refused["error_codes"] == [700027]


def test_an_access_token_expires_and_a_forged_one_is_refused(graph_sandbox: Sandbox, front: GraphFront) -> None:
    requests.post(f"{graph_sandbox.base_url}/sandbox/identity", json={"access_token_lifetime": 3}, timeout=5)
    result = confidential_app(front).acquire_token_for_client(GRAPH_SCOPE)
    assert result["expires_in"] == 3
    client = Graph(front, result["access_token"], ca_session(front))
    assert client.get("users/alice@contoso.com/mailFolders/inbox").status_code == 200
    expires = jwt.decode(result["access_token"], options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires - time.time()) + 0.1)
    expired = client.get("users/alice@contoso.com/mailFolders/inbox")
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "expired" in expired.json()["error"]["message"]
    # The same claims signed with another key: a forgery.
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    claims["exp"] = int(time.time()) + 3600
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = Graph(front, jwt.encode(claims, other, algorithm="RS256"), ca_session(front))
    assert forged.get("users/alice@contoso.com/mailFolders/inbox").status_code == 401
    missing = ca_session(front).get(f"{front.graph_url}/users/alice@contoso.com/mailFolders/inbox", timeout=5)
    assert missing.status_code == 401 and missing.json()["error"]["message"] == "Access token is empty."
    assert "Bearer" in missing.headers["WWW-Authenticate"]


def test_rbac_for_applications_keeps_an_app_to_its_mailboxes(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="scoped", secret="Graph-app-secret-1", mailboxes=["alice@contoso.com"])
    client = Graph.app_only(front, "scoped")
    assert client.get("users/alice@contoso.com/messages").status_code == 200
    denied = client.get("users/bob@contoso.com/messages")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "ErrorAccessDenied"


def test_a_missing_permission_or_consent_answers_403(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="calendar-only", secret=APP_SECRET, permissions=["Calendars.Read"])
    calendar_only = Graph.app_only(front, "calendar-only")
    assert calendar_only.get("users/alice@contoso.com/calendarView", params={
        "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2026-01-02T00:00:00Z"}).status_code == 200
    assert calendar_only.get("users/alice@contoso.com/messages").json()["error"]["code"] == "ErrorAccessDenied"
    register_app(graph_sandbox, client_id="not-consented", secret=APP_SECRET, admin_consent=False)
    result = confidential_app(front, "not-consented").acquire_token_for_client(GRAPH_SCOPE)
    assert "roles" not in jwt.decode(result["access_token"], options={"verify_signature": False}) or not jwt.decode(
        result["access_token"], options={"verify_signature": False})["roles"]
    denied = Graph(front, result["access_token"], ca_session(front)).get("users/alice@contoso.com/mailFolders/inbox")
    assert denied.status_code == 403


def test_the_control_api_refuses_bad_registrations(graph_sandbox: Sandbox) -> None:
    base = f"{graph_sandbox.base_url}/sandbox/apps"
    for body, message in (({"permissions": ["Directory.ReadWrite.All"]}, "unknown application permission"),
                          ({"mailboxes": ["nobody@contoso.com"]}, "no mailbox nobody@contoso.com"),
                          ({"certificate": "not a certificate"}, "PEM certificate"),
                          ({"redirect_uris": ["http://evil.example/callback"]}, "must be https"),
                          ({"colour": "blue"}, "unknown field")):
        response = requests.post(base, json=body, timeout=5)
        assert response.status_code == 400 and message in response.json()["error"], (body, response.text)
    assert requests.post(base, json={"client_id": APP_ID}, timeout=5).status_code == 409
    listed = requests.get(base, timeout=5).json()["apps"]
    assert [app["client_id"] for app in listed] == [APP_ID]
    assert "secret" not in json.dumps(listed).replace('"credential": "secret"', "")


def _b64url_sha256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def test_refresh_tokens_rotate_and_can_be_revoked(graph_sandbox: Sandbox, front: GraphFront) -> None:
    """The auth code (signed in without a browser here; tests/browser drives the page) then refresh with msal."""
    register_app(graph_sandbox, client_id="web-app", secret=APP_SECRET, redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.ReadWrite", "Calendars.ReadWrite"])
    app = confidential_app(front, "web-app")
    flow = app.initiate_auth_code_flow(["Mail.ReadWrite"], redirect_uri="http://localhost/callback")
    session = ca_session(front)
    response = sign_in_without_browser(front, flow["auth_uri"], "alice@contoso.com", "Alice-pw-1")
    result = app.acquire_token_by_auth_code_flow(flow, response)
    assert "access_token" in result, result
    first_refresh = result["refresh_token"]
    claims = result["id_token_claims"]
    assert claims["aud"] == "web-app" and claims["tid"] == TENANT_ID
    assert claims["iss"] == f"{front.base_url}/{TENANT_ID}/v2.0" and claims["oid"]
    assert claims["preferred_username"] == "alice@contoso.com"
    assert claims["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    mine = Graph(front, result["access_token"], session)
    assert mine.ok("GET", "me/mailFolders/inbox")["displayName"] == "Inbox"
    assert mine.get("users/bob@contoso.com/mailFolders/inbox").status_code == 403  # delegated: own mailbox only
    renewed = confidential_app(front, "web-app").acquire_token_by_refresh_token(first_refresh, ["Mail.ReadWrite"])
    assert "access_token" in renewed and renewed["refresh_token"] != first_refresh
    replayed = confidential_app(front, "web-app").acquire_token_by_refresh_token(first_refresh, ["Mail.ReadWrite"])
    assert replayed["error"] == "invalid_grant" and replayed["error_codes"] == [70000]
    requests.post(f"{graph_sandbox.base_url}/sandbox/apps/web-app/revoke", json={"user": "alice@contoso.com"},
                  timeout=5)
    revoked = confidential_app(front, "web-app").acquire_token_by_refresh_token(renewed["refresh_token"],
                                                                                 ["Mail.ReadWrite"])
    assert revoked["error"] == "invalid_grant"
    # msal's silent path: an account from client_info, the cached token served as is.
    account = app.get_accounts()[0]
    assert account["username"] == "alice@contoso.com"
    assert account["home_account_id"] == f"{claims['oid']}.{TENANT_ID}"


def test_an_auth_code_needs_its_pkce_verifier_and_is_used_once(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="spa", redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.Read"])
    app = msal.PublicClientApplication("spa", authority=front.authority, http_client=ca_session(front),
                                       instance_discovery=False)
    flow = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri="http://localhost/callback")
    query = sign_in_without_browser(front, flow["auth_uri"], "bob@contoso.com", "Bob-pw-1")
    assert query["state"] == flow["state"]
    token_url = f"{front.authority}/oauth2/v2.0/token"
    form = {"client_id": "spa", "grant_type": "authorization_code", "code": query["code"],
            "redirect_uri": "http://localhost/callback", "code_verifier": "wrong-verifier-" + "x" * 40,
            "scope": "Mail.Read openid offline_access"}
    wrong = ca_session(front).post(token_url, data=form, timeout=10)
    assert wrong.status_code == 400 and wrong.json()["error_codes"] == [501481]
    # A refused code is gone as Entra's are: the right verifier now gets invalid_grant too.
    form["code_verifier"] = flow["code_verifier"]
    again = ca_session(front).post(token_url, data=form, timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_the_sign_in_page_says_a_password_is_wrong(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="web-app", secret=APP_SECRET, redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.Read"])
    flow = confidential_app(front, "web-app").initiate_auth_code_flow(["Mail.Read"],
                                                                       redirect_uri="http://localhost/callback")
    page = ca_session(front).post(flow["auth_uri"], data={"login": "alice@contoso.com", "passwd": "guess"},
                                  allow_redirects=False, timeout=10)
    assert page.status_code == 200
    assert "Your account or password is incorrect." in page.text
    assert "guess" not in page.text
    elsewhere = ca_session(front).get(flow["auth_uri"].replace("localhost%2Fcallback", "evil.example%2Fcallback"),
                                      allow_redirects=False, timeout=10)
    assert elsewhere.status_code == 400 and "AADSTS50011" in elsewhere.text


def test_the_sign_in_page_locks_an_account_as_ews_does(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="web-app", secret=APP_SECRET, redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.Read"])
    flow = confidential_app(front, "web-app").initiate_auth_code_flow(["Mail.Read"],
                                                                       redirect_uri="http://localhost/callback")
    session = ca_session(front)
    for _ in range(graph_sandbox.store.lockout_threshold or 0):
        session.post(flow["auth_uri"], data={"login": "carol@contoso.com", "passwd": "guess"}, timeout=10)
    locked = session.post(flow["auth_uri"], data={"login": "carol@contoso.com", "passwd": "Carol-pw-1"},
                          allow_redirects=False, timeout=10)
    assert locked.status_code == 200 and "Your account is locked." in locked.text
    assert graph_sandbox.store.users["carol@contoso.com"].locked


def test_a_new_password_ends_the_users_refresh_tokens(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="web-app", secret=APP_SECRET, redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.Read"])
    app = confidential_app(front, "web-app")
    flow = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri="http://localhost/callback")
    result = app.acquire_token_by_auth_code_flow(flow, sign_in_without_browser(front, flow["auth_uri"],
                                                                               "bob@contoso.com", "Bob-pw-1"))
    changed = requests.post(f"{graph_sandbox.base_url}/sandbox/users/bob@contoso.com/password",
                            json={"password": "Bob-pw-2"}, timeout=5)
    assert changed.status_code == 200
    refused = confidential_app(front, "web-app").acquire_token_by_refresh_token(result["refresh_token"], ["Mail.Read"])
    assert refused["error"] == "invalid_grant"


def test_form_post_sends_the_code_in_a_body(graph_sandbox: Sandbox, front: GraphFront) -> None:
    register_app(graph_sandbox, client_id="web-app", secret=APP_SECRET, redirect_uris=["http://localhost/callback"],
                 delegated_scopes=["Mail.Read"])
    app = confidential_app(front, "web-app")
    flow = app.initiate_auth_code_flow(["Mail.Read"], redirect_uri="http://localhost/callback",
                                       response_mode="form_post")
    page = ca_session(front).post(flow["auth_uri"], data={"login": "alice@contoso.com", "passwd": "Alice-pw-1"},
                                  allow_redirects=False, timeout=10)
    assert page.status_code == 200 and "script-src 'nonce-" in page.headers["Content-Security-Policy"]
    action, fields = form_post_answer(page.text)
    assert action == "http://localhost/callback" and fields["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result["id_token_claims"]["preferred_username"] == "alice@contoso.com"
    # Later, msal refreshes silently with the refresh token it keeps in its cache.
    (account,) = app.get_accounts()
    silent = app.acquire_token_silent(["Mail.Read"], account, force_refresh=True)
    assert silent["token_source"] == "identity_provider" and silent["access_token"] != result["access_token"]
    assert Graph(front, silent["access_token"], ca_session(front)).ok("GET", "me/messages")["value"] == []
