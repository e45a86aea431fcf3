"""How the tests talk to the sandbox's Graph front: msal for tokens and requests for Graph, both trusting the
sandbox's CA explicitly (the environment's REQUESTS_CA_BUNDLE would otherwise win over a session's `verify`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msal
import requests

from widget.sandbox import Sandbox
from widget.sandbox.graph.server import GraphFront

APP_ID = "5f0c2f5e-6c1b-4a8e-9a57-2c1f0e7d1a01"
APP_SECRET = "Graph-app-secret-1"  # listed in contoso.EXTRA_SECRETS: no log may show it
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]


def ca_session(front: GraphFront) -> requests.Session:
    """A requests session that trusts the sandbox's CA and nothing from the environment."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(front.ca_file)
    return session


def register_app(sandbox: Sandbox, **fields: Any) -> dict[str, Any]:
    """Register an application through the control API (POST /sandbox/apps)."""
    response = requests.post(f"{sandbox.base_url}/sandbox/apps", json=fields, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def confidential_app(front: GraphFront, client_id: str = APP_ID, credential: Any = APP_SECRET,
                     **options: Any) -> msal.ConfidentialClientApplication:
    """A fresh msal app on the sandbox's authority (fresh: msal caches discovery and throttles failed requests).

    Instance discovery is off, as a deployment on its own authority has it (msal would otherwise ask
    login.microsoftonline.com); test_graph_identity points it at the sandbox's own discovery endpoint."""
    options.setdefault("instance_discovery", False)
    return msal.ConfidentialClientApplication(client_id, client_credential=credential, authority=front.authority,
                                              http_client=ca_session(front), **options)


def adapter_config(front: GraphFront, client_id: str = APP_ID, secret: str = APP_SECRET) -> Any:
    """The Graph adapter's configuration for the sandbox: its authority, its Graph URL and its CA."""
    from widget.exchange.graph.client import GraphConfig

    authority, _, tenant = front.authority.rpartition("/")
    return GraphConfig(tenant=tenant, client_id=client_id, client_secret=secret, authority_url=authority,
                       base_url=front.graph_url, ca_bundle_file=str(front.ca_file))


def use_graph(app: Any, front: GraphFront, **more: Any) -> None:
    """Point a widget deployment at the sandbox's Exchange Online (the default application, app-only access)."""
    from widget import settings

    authority, _, tenant = front.authority.rpartition("/")
    with app.app_context():
        settings.save({"exchange_kind": "graph", "graph_tenant": tenant, "graph_client_id": APP_ID,
                       "graph_client_secret": APP_SECRET, "graph_authority_url": authority,
                       "graph_base_url": front.graph_url, "graph_ca_bundle": front.ca_file.read_text(encoding="utf-8"),
                       **more})


def app_token(front: GraphFront, client_id: str = APP_ID, credential: Any = APP_SECRET) -> str:
    """An app-only access token, obtained by msal."""
    result = confidential_app(front, client_id, credential).acquire_token_for_client(GRAPH_SCOPE)
    assert "access_token" in result, result
    return result["access_token"]


@dataclass
class Graph:
    """A small Graph client for the tests: absolute links are followed as given, relative paths below /v1.0."""

    front: GraphFront
    token: str
    session: requests.Session

    @classmethod
    def app_only(cls, front: GraphFront, client_id: str = APP_ID, credential: Any = APP_SECRET) -> Graph:
        """A client with an app-only token from msal."""
        return cls(front, app_token(front, client_id, credential), ca_session(front))

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
                ) -> requests.Response:
        """Send one request with the Bearer token."""
        url = path if path.startswith("https://") else f"{self.front.graph_url}/{path.lstrip('/')}"
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.session.request(method, url, headers=all_headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        """POST a JSON body."""
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        """PATCH a JSON body."""
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE."""
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200, **kwargs: Any) -> Any:
        """A request that must succeed with `status`; its JSON (or None for an empty body)."""
        response = self.request(method, path, json=body, **kwargs) if body is not None else self.request(
            method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def rounds(self, link: str, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """The pages of one delta round from `link`, the last one holding the deltaLink."""
        headers = {"Prefer": f"odata.maxpagesize={page_size}"} if page_size else {}
        while True:
            page = self.ok("GET", link, headers=headers)
            yield page
            if "@odata.deltaLink" in page:
                return
            link = page["@odata.nextLink"]

    def delta_round(self, link: str, page_size: int | None = None) -> tuple[list[dict[str, Any]], str, int]:
        """Every entry of one delta round, the deltaLink that ends it and the number of pages."""
        entries: list[dict[str, Any]] = []
        pages = 0
        delta_link = ""
        for page in self.rounds(link, page_size):
            pages += 1
            entries += page["value"]
            delta_link = page.get("@odata.deltaLink", "")
        return entries, delta_link, pages


def port_round(read: Any, state: str | None = None) -> tuple[list[Any], list[str], str]:
    """Every page of one round of a port's folder from `state` (`read(state)` gives the next page): the changed
    and deleted entries and the state that ends the round."""
    changed: list[Any] = []
    deleted: list[str] = []
    while True:
        page = read(state)
        changed += page.changed
        deleted += page.deleted
        state = page.sync_state
        if page.done:
            return changed, deleted, state


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    """Poll `condition` until it is true (for effects of other threads)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def sign_in_without_browser(front: GraphFront, auth_uri: str, email: str, password: str) -> dict[str, str]:
    """Post the sign-in page's form as a browser would; the redirect's query (code, state) as msal takes it."""
    response = ca_session(front).post(auth_uri, data={"login": email, "passwd": password}, allow_redirects=False,
                                      timeout=10)
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))


class _HiddenFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values.get("name") or ""] = values.get("value") or ""


def form_post_answer(page: str) -> tuple[str, dict[str, str]]:
    """The action and the hidden fields of a response_mode=form_post page."""
    parser = _HiddenFields()
    parser.feed(page)
    return parser.action, parser.fields
