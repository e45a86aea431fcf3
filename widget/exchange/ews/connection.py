"""Connections to Exchange through exchangelib: accounts for a user or impersonated by the service account,
credential checks that cannot lock anyone out, and exchangelib's failures turned into words for people.

Credential checks use exchangelib's FailFast policy: one attempt per submit, never a retry with the same
password (a retried wrong password is how integrations lock their users out of Active Directory).
"""

from __future__ import annotations

import functools
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests.adapters
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    Account,
    Build,
    Configuration,
    Credentials,
    FailFast,
    FaultTolerance,
    Version,
)
from exchangelib import errors as ews_errors
from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter

from ..problems import ExchangeProblem
from ..transport import bounded
from .logs import keep_secrets_out_of_exchangelib_logs

# Long enough for a slow server, short enough that a person waiting on a form gets an answer.
REQUEST_TIMEOUT = 20
BaseProtocol.TIMEOUT = REQUEST_TIMEOUT
keep_secrets_out_of_exchangelib_logs()

_AUTH_TYPES = {"NTLM": NTLM, "Basic": BASIC}
_VERSION_BUILDS = {
    "Exchange2010_SP2": Build(14, 2),
    "Exchange2013": Build(15, 0),
    "Exchange2013_SP1": Build(15, 0, 847),
    "Exchange2016": Build(15, 1),
}


class FailFastWithBackOff(FailFast):
    """exchangelib's FailFast that still reports how long the server asked to wait (HTTP 503 Retry-After).

    The widget never sleeps inside a request or a sync: a throttled account is rescheduled after the back-off,
    which exchangelib's ErrorServerBusy.back_off then carries (FailFast alone drops Retry-After).
    """

    def raise_response_errors(self, response: Any) -> None:
        try:
            super().raise_response_errors(response)
        except (ews_errors.ErrorInternalServerTransientError, ews_errors.ErrorServerBusy) as error:
            try:
                retry_after = int(response.headers.get("Retry-After", "0"))
            except ValueError:
                retry_after = 0
            if retry_after > 0:
                raise ews_errors.ErrorServerBusy(str(error), back_off=retry_after) from None
            raise


@dataclass(frozen=True)
class ServerConfig:
    """How to reach the organisation's Exchange server."""

    ews_url: str
    auth: str = "NTLM"
    verify_tls: bool = True
    ca_bundle_file: str | None = None
    version: str = ""

    @classmethod
    def from_settings(cls, settings: Any, instance_path: str) -> ServerConfig:
        """The server of the admin settings; the CA bundle (PEM text) is written beside the database."""
        if not settings.ews_url:
            raise ExchangeProblem("not_configured", "The Exchange server is not set up yet. Ask your administrator.")
        bundle = None
        if settings.ews_ca_bundle.strip():
            path = Path(instance_path) / "ews_ca_bundle.pem"
            if not path.exists() or path.read_text(encoding="utf-8") != settings.ews_ca_bundle:
                # Written beside and renamed over, so that a concurrent reader never sees half a bundle.
                partial = path.with_suffix(f".{os.getpid()}.tmp")
                partial.write_text(settings.ews_ca_bundle, encoding="utf-8")
                os.replace(partial, path)
            bundle = str(path)
        return cls(settings.ews_url, settings.ews_auth, settings.ews_verify_tls, bundle, settings.ews_version)


@functools.lru_cache(maxsize=8)
def _adapter(verify_tls: bool, ca_bundle_file: str | None) -> type[requests.adapters.HTTPAdapter]:
    """The HTTP adapter for a server's TLS settings, every answer read within a deadline and a size cap."""
    if not verify_tls:
        return bounded(NoVerifyHTTPAdapter)
    if ca_bundle_file:
        bundle = ca_bundle_file

        class InternalCAAdapter(requests.adapters.HTTPAdapter):
            """Verifies the server against the organisation's own certificate authority."""

            def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
                super().cert_verify(conn=conn, url=url, verify=bundle, cert=cert)

        return bounded(InternalCAAdapter)
    return bounded(requests.adapters.HTTPAdapter)


def _adapter_for(server: ServerConfig) -> type[requests.adapters.HTTPAdapter]:
    return _adapter(server.verify_tls, server.ca_bundle_file)


def configure_tls(server: ServerConfig) -> None:
    """Point exchangelib's HTTP adapter at the server's TLS settings (one Exchange server per deployment)."""
    adapter = _adapter_for(server)
    if BaseProtocol.HTTP_ADAPTER_CLS is not adapter:
        BaseProtocol.HTTP_ADAPTER_CLS = adapter


def account_for(server: ServerConfig, mailbox: str, username: str, password: str, *, impersonate: bool = False,
                fail_fast: bool = True) -> Account:
    """An exchangelib Account for `mailbox`: the user's own credentials, or the service account's impersonating."""
    configure_tls(server)
    version = None
    if server.version:
        version = Version(build=_VERSION_BUILDS[server.version], api_version=server.version)
    config = Configuration(
        service_endpoint=server.ews_url,
        credentials=Credentials(username, password),
        auth_type=_AUTH_TYPES.get(server.auth, NTLM),
        version=version,
        retry_policy=FailFastWithBackOff() if fail_fast else FaultTolerance(max_wait=60),
    )
    return Account(mailbox, config=config, autodiscover=False, access_type=IMPERSONATION if impersonate else DELEGATE)


def explain(error: BaseException) -> ExchangeProblem:
    """Turn what exchangelib raised into a problem people can act on."""
    text = str(error)
    if isinstance(error, ews_errors.UnauthorizedError):
        if "locked out" in text:
            return ExchangeProblem("locked", "Your Exchange account is locked after too many failed sign-ins. "
                                             "Ask your IT department to unlock it, then try again.")
        return ExchangeProblem("credentials", "Exchange did not accept this email and password. "
                                              "Check them (and the domain, if your company uses one).")
    if isinstance(error, ews_errors.ErrorImpersonateUserDenied):
        return ExchangeProblem("access", "The service account is not allowed to impersonate this mailbox "
                                         "(it needs the ApplicationImpersonation role).")
    if isinstance(error, ews_errors.ErrorNonExistentMailbox):
        return ExchangeProblem("access", "Exchange has no mailbox for this address.")
    if isinstance(error, ews_errors.ErrorAccessDenied):
        return ExchangeProblem("access", "Exchange denied access to this mailbox.")
    if isinstance(error, ews_errors.ErrorServerBusy):
        return ExchangeProblem("throttled", "Exchange is busy right now. Try again in a minute.",
                               back_off=error.back_off)
    if isinstance(error, ews_errors.RateLimitError):
        return ExchangeProblem("throttled", "Exchange is busy right now. Try again in a minute.",
                               back_off=error.wait)
    if isinstance(error, ews_errors.ErrorMailboxMoveInProgress):
        return ExchangeProblem("mailbox_moving", "Your mailbox is being moved by Exchange; try again later.")
    if isinstance(error, ews_errors.ErrorInvalidRecipients):
        return ExchangeProblem("recipients", "Exchange refused at least one of the recipients' addresses.")
    if "larger than the widget accepts" in text:
        return ExchangeProblem("server", "The Exchange server sent an answer larger than the widget accepts. Tell "
                                         "your administrator.")
    if "Failed to establish a new connection" in text or "Connection refused" in text:
        return ExchangeProblem("unreachable", "The Exchange server cannot be reached right now. "
                                              "Try again later, or tell your administrator.")
    if "timed out" in text.lower():
        return ExchangeProblem("timeout", "The Exchange server did not answer in time. Try again later.")
    if isinstance(error, (ssl.SSLError, requests.exceptions.SSLError)) or "SSL" in text or "certificate" in text:
        return ExchangeProblem("tls", "The Exchange server's certificate could not be verified. "
                                      "Tell your administrator.")
    if isinstance(error, (ews_errors.TransportError, ews_errors.ErrorTimeoutExpired,
                          requests.exceptions.ConnectionError, OSError)):
        return ExchangeProblem("unreachable", "The Exchange server cannot be reached right now. "
                                              "Try again later, or tell your administrator.")
    return ExchangeProblem("server", "Exchange answered with an error. Try again later, or tell your administrator.")


def verify_user(server: ServerConfig, email: str, username: str, password: str) -> None:
    """Check a user's credentials live, with one attempt; raises ExchangeProblem saying what went wrong."""
    try:
        account = account_for(server, email, username, password)
        account.inbox.total_count  # noqa: B018 - one GetFolder proves the password and the access to the mailbox
    except ExchangeProblem:
        raise
    except Exception as error:  # exchangelib raises many kinds; each is explained, none is let through raw
        raise explain(error) from None
