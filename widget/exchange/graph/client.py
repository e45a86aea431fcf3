"""Tokens and HTTP for Microsoft Graph: app-only access with msal, one request at a time through a bounded session.

One msal ConfidentialClientApplication per deployment (per tenant, app and secret): its in-memory token cache is
shared by every thread, and msal hands out the cached token until five minutes before it expires, so a sync asks the
identity platform for a token once an hour, not once a request. Every Graph request
- carries `Prefer: IdType="ImmutableId"`, so that ids survive moves between folders;
- waits for one of MAILBOX_CONCURRENCY slots of its mailbox (Exchange Online allows four requests in flight per app
  and mailbox; a fifth is answered 429);
- is read within a total deadline and a size cap (the bounded HTTP adapter both adapters use, ../transport.py);
- never sleeps: 429 and 503 become ExchangeProblem("throttled") with the server's Retry-After as back_off, and the
  sync room reschedules the account.
The session ignores the environment (REQUESTS_CA_BUNDLE, proxies): it verifies against the configured CA bundle, or
the system's store.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msal
import requests
import requests.adapters

from ..problems import EditConflict, ExchangeProblem, ItemGone, SyncStateInvalid
from ..transport import bounded, deadline

GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]
MAILBOX_CONCURRENCY = 4  # Exchange Online's limit per app and mailbox
CONNECT_TIMEOUT = 10.0
IMMUTABLE_IDS = 'IdType="ImmutableId"'
# Graph's error codes that mean something to the port, whatever the HTTP status they come with.
_SYNC_STATE_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
_CONFLICT_CODES = frozenset({"errorirresolvableconflict", "conflict"})
_NO_MAILBOX_CODES = frozenset({"errorinvaliduser", "request_resourcenotfound", "mailboxnotenabledforrestapi",
                               "resourcenotfound", "errornonexistentmailbox"})
# Codes of the identity platform (AADSTS...) that name what an administrator must fix.
_TOKEN_PROBLEMS = {
    "AADSTS90002": ("not_configured", "Microsoft does not know the tenant “{tenant}”. Check the tenant's domain or "
                                      "id."),
    "AADSTS700016": ("credentials", "The tenant has no application with the client id {client_id}. Check the "
                                    "application (client) id."),
    "AADSTS7000215": ("credentials", "Microsoft refused the client secret: it is wrong. Enter the secret's value "
                                     "(not its id)."),
    "AADSTS7000222": ("credentials", "The client secret has expired. Create a new one for the application and enter "
                                     "it here."),
    "AADSTS65001": ("access", "An administrator has not given consent to the application's permissions yet."),
}


@dataclass(frozen=True)
class GraphConfig:
    """How to reach Exchange Online: the tenant, the application and its secret, the authority and Graph's URL."""

    tenant: str
    client_id: str
    client_secret: str
    authority_url: str
    base_url: str
    ca_bundle_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, instance_path: str) -> GraphConfig:
        """The configuration of the admin settings; a CA bundle (PEM text) is written beside the database."""
        if not (settings.graph_tenant and settings.graph_client_id and settings.graph_client_secret):
            raise ExchangeProblem("not_configured", "Exchange Online is not set up yet: the administrator needs to "
                                                    "enter the tenant, the application id and its secret.")
        bundle = None
        if settings.graph_ca_bundle.strip():
            path = Path(instance_path) / "graph_ca_bundle.pem"
            if not path.exists() or path.read_text(encoding="utf-8") != settings.graph_ca_bundle:
                partial = path.with_suffix(f".{os.getpid()}.tmp")  # renamed over: no reader sees half a bundle
                partial.write_text(settings.graph_ca_bundle, encoding="utf-8")
                os.replace(partial, path)
            bundle = str(path)
        return cls(settings.graph_tenant.strip(), settings.graph_client_id.strip(), settings.graph_client_secret,
                   settings.graph_authority_url.rstrip("/"), settings.graph_base_url.rstrip("/"), bundle)

    @property
    def authority(self) -> str:
        """The tenant's authority, as msal takes it."""
        return f"{self.authority_url}/{quote(self.tenant, safe='')}"

    @property
    def verify(self) -> str | bool:
        """What requests verifies certificates against."""
        return self.ca_bundle_file or True

    def key(self) -> tuple[str, ...]:
        """What makes two configurations the same deployment (the secret by its digest only)."""
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.authority, self.client_id, digest, self.base_url, str(self.ca_bundle_file))


_BoundedAdapter = bounded(requests.adapters.HTTPAdapter)


def _session(verify: str | bool) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would win over `verify`
    session.verify = verify
    adapter = _BoundedAdapter(pool_maxsize=MAILBOX_CONCURRENCY * 4)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _Deployment:
    """The msal app and the HTTP session of one configuration, shared by every thread."""

    def __init__(self, config: GraphConfig):
        self.config = config
        self.session = _session(config.verify)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def app(self) -> msal.ConfidentialClientApplication:
        with self._lock:
            if self._app is None:
                config = self.config
                # Built lazily (it reads the authority's OpenID configuration); instance discovery would ask
                # login.microsoftonline.com about an authority that is not Microsoft's.
                is_microsoft = config.authority_url.startswith("https://login.microsoftonline.com")
                self._app = msal.ConfidentialClientApplication(
                    config.client_id, client_credential=config.client_secret, authority=config.authority,
                    http_client=_session(config.verify), instance_discovery=is_microsoft)
            return self._app


_DEPLOYMENTS: dict[tuple[str, ...], _Deployment] = {}
_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_REGISTRY_LOCK = threading.Lock()


def deployment(config: GraphConfig) -> _Deployment:
    """The deployment's shared msal app and session (one per configuration; a new secret makes a new one)."""
    with _REGISTRY_LOCK:
        found = _DEPLOYMENTS.get(config.key())
        if found is None:
            found = _DEPLOYMENTS[config.key()] = _Deployment(config)
        return found


@contextmanager
def mailbox_slot(client_id: str, mailbox: str, wait: float) -> Iterator[None]:
    """One of the mailbox's MAILBOX_CONCURRENCY request slots in this process, waited for at most `wait` seconds."""
    with _REGISTRY_LOCK:
        slot = _SLOTS.setdefault((client_id, mailbox), threading.BoundedSemaphore(MAILBOX_CONCURRENCY))
    if not slot.acquire(timeout=wait):
        raise ExchangeProblem("throttled", "Exchange Online is busy with this mailbox right now. Try again in a "
                                           "minute.", back_off=5)
    try:
        yield
    finally:
        slot.release()


def _transport_problem(error: BaseException) -> ExchangeProblem:
    text = str(error)
    if isinstance(error, requests.exceptions.SSLError) or "CERTIFICATE" in text.upper():
        return ExchangeProblem("tls", "Microsoft's certificate could not be verified. Tell your administrator.")
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in text.lower():
        return ExchangeProblem("timeout", "Exchange Online did not answer in time. Try again later.")
    if "larger than the widget accepts" in text:
        return ExchangeProblem("server", "Exchange Online sent an answer larger than the widget accepts. Tell your "
                                         "administrator.")
    return ExchangeProblem("unreachable", "Exchange Online cannot be reached right now. Try again later, or tell "
                                          "your administrator.")


def _retry_after(response: requests.Response) -> float | None:
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _error_of(response: requests.Response) -> tuple[str, str]:
    """Graph's error code and message ({"error": {"code", "message"}}), or empty strings."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def raise_for(response: requests.Response) -> None:
    """Raise what a failed Graph answer means to the port (nothing for a success)."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_of(response)
    lowered = code.lower()
    if status == 410 or lowered in _SYNC_STATE_CODES:
        raise SyncStateInvalid()
    if status == 412 or lowered in _CONFLICT_CODES:
        raise EditConflict()
    if status in (429, 503, 504):
        raise ExchangeProblem("throttled", "Exchange Online is busy right now. Try again in a minute.",
                              back_off=_retry_after(response))
    if status == 401:
        raise ExchangeProblem("credentials", "Microsoft Graph did not accept the application's token. Check the "
                                             "application's secret and its admin consent.")
    if status == 403:
        raise ExchangeProblem("access", "Exchange Online denied the application access to this mailbox (a permission "
                                        "not granted, or the mailbox outside the application's RBAC scope)"
                                        + (f": {message}" if message else "."))
    if status == 404 and lowered in _NO_MAILBOX_CODES:
        raise ExchangeProblem("access", "Exchange Online has no mailbox for this address.")
    if status == 404:
        raise ItemGone()
    if lowered == "errormailboxdataarraytoobig":
        raise ExchangeProblem("too_many", "Exchange shows the availability of at most 100 people at once.")
    if lowered in ("errorinvalidrecipients", "errorinvalidemailaddress"):
        raise ExchangeProblem("recipients", "Exchange refused at least one of the recipients' addresses.")
    raise ExchangeProblem("server", "Exchange Online answered with an error. Try again later, or tell your "
                                    "administrator.")


class GraphClient:
    """Graph requests for one mailbox, with the deployment's app-only token; counts the requests it makes."""

    def __init__(self, config: GraphConfig, mailbox: str):
        self.config = config
        self.mailbox = mailbox.lower()
        self.requests = 0
        self._deployment = deployment(config)

    @property
    def user_url(self) -> str:
        """The mailbox's URL below Graph's base URL."""
        return f"{self.config.base_url}/users/{quote(self.mailbox, safe='@')}"

    def owns(self, link: str) -> bool:
        """Whether a link (a stored delta or next link) points at this deployment's Graph: no token goes elsewhere."""
        return link.startswith(self.config.base_url + "/")

    def token(self) -> str:
        """An app-only access token (msal's cached one while it lasts)."""
        config = self.config
        try:
            result = self._deployment.app().acquire_token_for_client(GRAPH_SCOPE)
        except requests.RequestException as error:
            raise _transport_problem(error) from None
        except ValueError as error:  # msal could not read the authority's configuration: an unknown tenant
            if "authority" in str(error).lower() or "tenant" in str(error).lower():
                raise ExchangeProblem("not_configured", f"Microsoft does not know the tenant “{config.tenant}”. "
                                                        "Check the tenant's domain or id.") from None
            raise
        if "access_token" in result:
            return str(result["access_token"])
        description = str(result.get("error_description") or "")
        for code, (kind, text) in _TOKEN_PROBLEMS.items():
            if description.startswith(code + ":") or f"{code}:" in description[:40]:
                raise ExchangeProblem(kind, text.format(tenant=config.tenant, client_id=config.client_id))
        if result.get("error") == "invalid_client":
            raise ExchangeProblem("credentials", "Microsoft refused the application's credentials. Check the "
                                                 "application id and the client secret.")
        raise ExchangeProblem("server", "Microsoft's sign-in service refused to give the widget a token "
                                        f"({result.get('error') or 'no reason given'}).")

    def send(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None, whole: bool = False, prefer: str = "") -> requests.Response:
        """One Graph request below the mailbox (`path` relative to it), or to an absolute link of this deployment's
        Graph (`whole`), with immutable ids and the `prefer` preferences; raises what a failure means (raise_for)."""
        if whole:
            if not self.owns(path):
                raise SyncStateInvalid()  # a stored link that is not Graph's: start over rather than follow it
            url = path
        else:
            url = f"{self.user_url}/{path}" if path else self.user_url
        all_headers = {"Authorization": f"Bearer {self.token()}",
                       "Prefer": ", ".join(filter(None, (IMMUTABLE_IDS, prefer))), **(headers or {})}
        limit = deadline()
        with mailbox_slot(self.config.client_id, self.mailbox, limit):
            self.requests += 1
            try:
                response = self._deployment.session.request(
                    method, url, json=json, headers=all_headers, params=params, timeout=(CONNECT_TIMEOUT, limit),
                    verify=self.config.verify, allow_redirects=False)
            except requests.RequestException as error:
                raise _transport_problem(error) from None
        raise_for(response)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET; the answer's JSON."""
        return self.send("GET", path, **kwargs).json()
