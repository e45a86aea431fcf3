"""A person signs in on the sandbox's identity platform page in Chromium; msal redeems the code with PKCE."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from browser_helpers import CHROMIUM_ARGS, TIMEOUT_MS, chromium_executable
from contoso import make_store
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from graph_client import APP_SECRET, Graph, ca_session, confidential_app, register_app
from graph_schema import watch_graph_schema
from playwright.sync_api import Browser, Playwright, Route, expect

from widget.sandbox import Sandbox
from widget.sandbox.graph.server import GraphFront

REDIRECT_URI = "http://localhost/callback"


@pytest.fixture
def front(tmp_path: Path) -> Iterator[GraphFront]:
    box = Sandbox(make_store()).start()
    graph = box.start_graph(tls_dir=tmp_path / "tls")
    check = watch_graph_schema(graph)
    register_app(box, client_id="crm-web", secret=APP_SECRET, redirect_uris=[REDIRECT_URI],
                 delegated_scopes=["Mail.ReadWrite", "Calendars.ReadWrite"])
    yield graph
    box.stop()
    check()


@pytest.fixture
def trusting_browser(playwright: Playwright, front: GraphFront) -> Iterator[Browser]:
    """Chromium that trusts the sandbox's server certificate (by its public key's hash), and nothing else extra."""
    cert = x509.load_pem_x509_certificate(front.tls.server_cert.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    browser = playwright.chromium.launch(executable_path=chromium_executable(), headless=True,
                                         args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={pin}"])
    yield browser
    browser.close()


def test_a_person_signs_in_and_msal_redeems_the_code(front: GraphFront, trusting_browser: Browser) -> None:
    app = confidential_app(front, "crm-web")
    flow = app.initiate_auth_code_flow(["Mail.ReadWrite"], redirect_uri=REDIRECT_URI)
    page = trusting_browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    arrived: list[str] = []

    def callback(route: Route) -> None:
        arrived.append(route.request.url)
        route.fulfill(status=200, body="Signed in", content_type="text/plain")

    page.route(f"{REDIRECT_URI}**", callback)
    page.goto(flow["auth_uri"])
    expect(page).to_have_title("Sign in to your account")
    page.get_by_label("Email address").fill("alice@contoso.com")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your account or password is incorrect. If you don't remember your password, reset it now.")
    assert arrived == []
    page.get_by_label("Password").fill("Alice-pw-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in")).to_be_visible()
    query = dict(parse_qsl(urlsplit(arrived[0]).query))
    assert query["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == "alice@contoso.com"
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    inbox = Graph(front, result["access_token"], ca_session(front)).ok("GET", "me/mailFolders/inbox")
    assert inbox["displayName"] == "Inbox"
    page.close()


def test_a_form_post_answer_reaches_the_app_in_a_post(front: GraphFront, trusting_browser: Browser) -> None:
    app = confidential_app(front, "crm-web")
    flow = app.initiate_auth_code_flow(["Mail.ReadWrite"], redirect_uri=REDIRECT_URI, response_mode="form_post")
    page = trusting_browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    posted: list[tuple[str, str]] = []

    def callback(route: Route) -> None:
        posted.append((route.request.method, route.request.post_data or ""))
        route.fulfill(status=200, body="Signed in", content_type="text/plain")

    page.route(f"{REDIRECT_URI}**", callback)
    page.goto(flow["auth_uri"])
    page.get_by_label("Email address").fill("bob@contoso.com")
    page.get_by_label("Password").fill("Bob-pw-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Signed in")).to_be_visible()
    method, body = posted[0]
    assert method == "POST"
    result = app.acquire_token_by_auth_code_flow(flow, dict(parse_qsl(body)))
    assert result["id_token_claims"]["preferred_username"] == "bob@contoso.com"
    page.close()
