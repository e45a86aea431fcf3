"""Test connection: find out exactly where the way to an Exchange server breaks, one check after the other.

DNS (the host name resolves) → TCP (something listens on the port: refused, unreachable or timed out) → TLS for
https (the handshake, and the certificate: expired, self-signed, unknown authority, another host's name) → HTTP
(a POST of a minimal SOAP request without credentials: an EWS endpoint answers 401 naming NTLM, Negotiate or
Basic, or a SOAP envelope; anything else is "not an EWS endpoint") → sign-in (optional: one exchangelib request
with FailFast, so a wrong password costs one failed attempt, never a lockout).

The network probes use plain `socket`, `ssl` and `requests` with short timeouts. No message ever contains a
password: only host names, addresses, ports, HTTP statuses and content types, and certificate names and dates.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import re
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
import urllib3

TIMEOUT = 5.0  # seconds per network step: a person is waiting for the answer

# Stages, in the order they are checked.
URL, DNS, TCP, TLS, HTTP, SIGN_IN = "url", "dns", "tcp", "tls", "http", "sign_in"
STAGE_NAMES = {URL: "URL", DNS: "DNS", TCP: "Connection", TLS: "TLS", HTTP: "EWS endpoint", SIGN_IN: "Sign-in"}

# A minimal, valid EWS request (GetFolder of the inbox): without credentials an EWS endpoint answers it with 401.
PROBE_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
               xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
  <soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header>
  <soap:Body>
    <m:GetFolder>
      <m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
      <m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds>
    </m:GetFolder>
  </soap:Body>
</soap:Envelope>
"""
_SOAP_ENVELOPE = re.compile(rb"<(?:[A-Za-z0-9_]+:)?Envelope[\s>][^>]*?schemas\.xmlsoap\.org/soap/envelope", re.S)
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S | re.I)

# OpenSSL's verification error codes, in words.
_CERT_PROBLEMS = {
    9: ("not_yet_valid", "is not valid yet"),
    10: ("expired", "has expired"),
    18: ("self_signed", "is self-signed"),
    19: ("self_signed", "comes from a self-signed certificate authority that is not trusted"),
    20: ("unknown_ca", "comes from an unknown certificate authority"),
    21: ("unknown_ca", "comes from an unknown certificate authority (or the server sends an incomplete chain)"),
    23: ("revoked", "has been revoked"),
    62: ("hostname_mismatch", "does not match the host name"),
    64: ("hostname_mismatch", "does not match the IP address"),
}
_CA_HINT = ("If the server uses your organisation's own certificate authority, paste that authority's "
            "certificate under CA certificates.")


@dataclass(frozen=True)
class Check:
    """One step of the diagnosis: its stage, whether it passed, and what was found."""

    stage: str
    ok: bool
    text: str

    @property
    def name(self) -> str:
        """The stage's name for people."""
        return STAGE_NAMES[self.stage]


@dataclass
class Diagnosis:
    """The outcome: ok, or the stage that failed with a `problem` code and a message for people.

    `details` lists every check made, the passed ones first; `version` is the server's version when sign-in was
    tested and succeeded.
    """

    ok: bool
    stage: str
    message: str
    details: list[Check] = field(default_factory=list)
    problem: str = ""
    version: str = ""
    signed_in: bool = False

    @property
    def reached_sign_in(self) -> bool:
        """Whether the checks got as far as sending the credentials."""
        return self.stage == SIGN_IN

    @property
    def stage_name(self) -> str:
        """The failed (or last) stage's name for people."""
        return STAGE_NAMES[self.stage]


class _Failed(Exception):
    def __init__(self, stage: str, problem: str, message: str):
        super().__init__(message)
        self.stage, self.problem, self.message = stage, problem, message


def diagnose(url: str, auth: str = "NTLM", verify_tls: bool = True, ca_bundle_file: str | None = None,
             username: str | None = None, password: str | None = None, *, version: str = "",
             timeout: float = TIMEOUT) -> Diagnosis:
    """Check the way to the EWS endpoint at `url` step by step; with a user name and password, also sign in."""
    checks: list[Check] = []
    try:
        parts = urlsplit(url)
        host, scheme = parts.hostname, parts.scheme
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise _Failed(URL, "url", "The URL's port is not a number.") from None
        if scheme not in ("http", "https") or not host:
            raise _Failed(URL, "url", "Enter an http(s) URL such as https://mail.example.com/EWS/Exchange.asmx, "
                                      "or a host name.")
        addresses = _resolve(host, port, timeout, checks)
        _connect(host, port, addresses, timeout, checks)
        if scheme == "https":
            _handshake(host, port, addresses, verify_tls, ca_bundle_file, timeout, checks)
        schemes = _probe_http(url, auth, verify_tls, ca_bundle_file, timeout, checks)
        if not (username and password):
            note = "the widget did not try to sign in: give a user name and password to test that too"
            return Diagnosis(True, HTTP, f"The server answers as an EWS endpoint ({schemes}); {note}.", checks)
        from .connection import ServerConfig

        server = ServerConfig(url, auth, verify_tls, ca_bundle_file, version)
        found = _sign_in(server, username, password, checks)
        return Diagnosis(True, SIGN_IN, f"Connected: signed in as {username}. The server runs {found}.", checks,
                         version=found, signed_in=True)
    except _Failed as failed:
        checks.append(Check(failed.stage, False, failed.message))
        return Diagnosis(False, failed.stage, failed.message, checks, problem=failed.problem)


# -- DNS ----------------------------------------------------------------------------------------------------------

def _resolve(host: str, port: int, timeout: float, checks: list[Check]) -> list[tuple]:
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    # getaddrinfo has no timeout of its own: it runs in a daemon thread, waited for `timeout` seconds at most.
    future: concurrent.futures.Future = concurrent.futures.Future()

    def look_up() -> None:
        try:
            future.set_result(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as error:  # handed to the waiting thread
            future.set_exception(error)

    threading.Thread(target=look_up, name="test-connection-dns", daemon=True).start()
    try:
        infos = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise _Failed(DNS, "dns", f"DNS: looking up the host name {host} took longer than {_seconds(timeout)}. "
                                  "Check the DNS servers of the machine that runs the widget.") from None
    except socket.gaierror as error:
        if error.errno in (socket.EAI_AGAIN,):
            raise _Failed(DNS, "dns", f"DNS: the name servers did not answer for {host} (a temporary failure). "
                                      "Check the DNS servers of the machine that runs the widget.") from None
        raise _Failed(DNS, "dns", f"DNS: the host name {host} could not be found. Check its spelling, and that "
                                  "it can be resolved from the machine that runs the widget.") from None
    except (UnicodeError, OSError) as error:
        raise _Failed(DNS, "dns", f"DNS: the host name {host} could not be looked up ({_reason(error)}).") from None
    shown = ", ".join(dict.fromkeys(info[4][0] for info in infos))
    checks.append(Check(DNS, True, f"{host} is an IP address." if literal else f"{host} resolves to {shown}."))
    return infos


# -- TCP ----------------------------------------------------------------------------------------------------------

def _open(infos: list[tuple], timeout: float) -> socket.socket:
    """A connected socket to the first address that answers; raises the last address's error."""
    last: OSError | None = None
    for family, kind, proto, _, address in infos[:2]:  # e.g. IPv6 then IPv4; no more, so waits stay short
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            last = error
    raise last or OSError("no address")


def _connect(host: str, port: int, infos: list[tuple], timeout: float, checks: list[Check]) -> None:
    try:
        sock = _open(infos, timeout)
    except ConnectionRefusedError:
        raise _Failed(TCP, "refused", f"Connection refused: nothing accepts connections on port {port} of {host}. "
                                      "Check the port, and that the server (or a firewall) lets the widget in.") \
            from None
    except TimeoutError:
        raise _Failed(TCP, "timeout", f"Timeout: {host} did not accept a connection on port {port} within "
                                      f"{_seconds(timeout)} (a firewall may be dropping it).") from None
    except OSError as error:
        raise _Failed(TCP, "unreachable", f"Cannot connect to {host} on port {port}: {_reason(error)}.") from None
    peer = sock.getpeername()[0]
    sock.close()
    checks.append(Check(TCP, True, f"Port {port} of {host} ({peer}) accepts connections."))


# -- TLS ----------------------------------------------------------------------------------------------------------

def _tls_context(verify_tls: bool, ca_bundle_file: str | None) -> ssl.SSLContext:
    if not verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_bundle_file or None)


def _handshake(host: str, port: int, infos: list[tuple], verify_tls: bool, ca_bundle_file: str | None,
               timeout: float, checks: list[Check]) -> None:
    try:
        context = _tls_context(verify_tls, ca_bundle_file)
    except (ssl.SSLError, OSError):
        raise _Failed(TLS, "tls", "TLS: the CA certificates given are not valid PEM certificates.") from None
    try:
        with _open(infos, timeout) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            protocol = tls.version()
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as error:
        problem, words = _CERT_PROBLEMS.get(error.verify_code, ("tls", ""))
        if not words:
            words = f"could not be verified ({error.verify_message})"
        about = _describe_certificate(host, port, infos, timeout)
        hint = f" {_CA_HINT}" if problem in ("self_signed", "unknown_ca") else ""
        if problem == "hostname_mismatch":
            hint = " Use the host name the certificate was made for, or a certificate that names this host."
        raise _Failed(TLS, problem, f"TLS: the server's certificate {words}{about}.{hint}") from None
    except TimeoutError:
        raise _Failed(TLS, "timeout", f"Timeout: {host} accepted the connection but did not complete a TLS "
                                      f"handshake within {_seconds(timeout)}.") from None
    except ssl.SSLError as error:
        if "WRONG_VERSION_NUMBER" in str(error) or "record layer failure" in str(error) \
                or "packet length too long" in str(error):
            raise _Failed(TLS, "tls", f"TLS: port {port} of {host} does not speak TLS. If the server is plain HTTP, "
                                      "the URL should start with http://.") from None
        raise _Failed(TLS, "tls", f"TLS: the handshake with {host} failed ({error.reason or 'unknown reason'}).") \
            from None
    except OSError as error:
        raise _Failed(TLS, "tls", f"TLS: the connection to {host} broke during the handshake "
                                  f"({_reason(error)}).") from None
    if verify_tls:
        checks.append(Check(TLS, True, f"{protocol}; the certificate is valid for {host}{_summary(der)}."))
    else:
        checks.append(Check(TLS, True, f"{protocol}; the certificate was NOT verified (verification is off)"
                                       f"{_summary(der)}."))


def _describe_certificate(host: str, port: int, infos: list[tuple], timeout: float) -> str:
    """What the certificate says (names, issuer, expiry), read with a second handshake that verifies nothing."""
    context = _tls_context(False, None)
    try:
        with _open(infos, timeout) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            return _summary(tls.getpeercert(binary_form=True))
    except (OSError, ValueError):
        return ""


def _summary(der: bytes | None) -> str:
    if not der:
        return ""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return ""

    def common_name(name: x509.Name) -> str:
        values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(values[0].value) if values else name.rfc4514_string()

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        issued_to = [str(n) for n in names.get_values_for_type(x509.DNSName)]
        issued_to += [str(n) for n in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        issued_to = []
    subject = ", ".join(issued_to[:4]) or common_name(cert.subject)
    until = cert.not_valid_after_utc
    expired = " (expired)" if until < datetime.now(UTC) else ""
    return (f" (issued to {subject} by {common_name(cert.issuer)}, valid until "
            f"{until:%Y-%m-%d}{expired})")


# -- HTTP ---------------------------------------------------------------------------------------------------------

def _probe_http(url: str, auth: str, verify_tls: bool, ca_bundle_file: str | None, timeout: float,
                checks: list[Check]) -> str:
    """POST the minimal SOAP request without credentials; returns the sign-in methods the server names."""
    verify: bool | str = (ca_bundle_file or True) if verify_tls else False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            reply = requests.post(url, data=PROBE_BODY, timeout=(timeout, timeout), verify=verify,
                                  allow_redirects=False, stream=True,
                                  headers={"Content-Type": "text/xml; charset=utf-8", "User-Agent": "ExchangeWidget"})
            with reply:
                body = reply.raw.read(65536, decode_content=True) or b""  # enough to recognise SOAP or a page
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError):
        raise _Failed(HTTP, "timeout", f"Timeout: the server accepted the connection but did not answer the EWS "
                                       f"request within {_seconds(timeout)}.") from None
    except requests.exceptions.SSLError:
        raise _Failed(TLS, "tls", "TLS: the certificate could not be verified when sending the EWS request.") \
            from None
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as error:
        raise _Failed(HTTP, "http", "The server closed the connection without answering the EWS request "
                                    f"({type(error).__name__}).") from None
    content_type = reply.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    what = f"HTTP {reply.status_code} ({content_type})"
    if reply.status_code == 401:
        offered = _auth_schemes(reply.headers.get("WWW-Authenticate", ""))
        supported = [s for s in offered if s in ("NTLM", "Negotiate", "Basic")]
        if not supported:
            named = ", ".join(offered) or "no sign-in method"
            if "Bearer" in offered:
                raise _Failed(HTTP, "auth", f"The server accepts only OAuth tokens (it answered 401 naming {named}); "
                                            "the widget signs in with NTLM or Basic.")
            raise _Failed(HTTP, "not_ews", f"This is not an EWS endpoint: it answered {what} naming {named}.")
        names = ", ".join(supported)
        fits = "Basic" in supported if auth == "Basic" else ("NTLM" in supported or "Negotiate" in supported)
        if not fits:
            choose = "Basic" if "Basic" in supported else "NTLM"
            raise _Failed(HTTP, "auth", f"The server is an EWS endpoint but does not offer {auth} sign-in (it offers "
                                        f"{names}): choose {choose} under Authentication.")
        checks.append(Check(HTTP, True, f"The server answers like an EWS endpoint: 401, asking to sign in with "
                                        f"{names}."))
        return f"it asks to sign in with {names}"
    if reply.status_code in (200, 500) and "xml" in content_type and _SOAP_ENVELOPE.search(body):
        checks.append(Check(HTTP, True, f"The server answers like an EWS endpoint: {what} with a SOAP envelope."))
        return "it answers with SOAP without asking to sign in"
    if 300 <= reply.status_code < 400:
        target = reply.headers.get("Location", "")
        moved = urlsplit(target)
        shown = f"{moved.scheme}://{moved.netloc}{moved.path}" if moved.netloc else moved.path
        raise _Failed(HTTP, "not_ews", f"This is not an EWS endpoint: it answered {what}, a redirect to "
                                       f"{shown or 'nowhere'} (a sign-in page or another address). "
                                       "EWS URLs usually end in /EWS/Exchange.asmx.")
    title = _TITLE.search(body)
    page = ""
    if title:
        text = " ".join(title.group(1).decode("utf-8", "replace").split())[:80]
        page = f", a page titled “{text}”" if text else ""
    raise _Failed(HTTP, "not_ews", f"This is not an EWS endpoint: it answered {what}{page}. "
                                   "EWS URLs usually end in /EWS/Exchange.asmx.")


def _auth_schemes(header: str) -> list[str]:
    """The scheme names of a WWW-Authenticate header (requests joins several headers with commas)."""
    found = []
    for piece in header.split(","):
        word = piece.strip().split(" ", 1)[0].split("=", 1)
        if len(word) == 1 and word[0]:
            canonical = {"ntlm": "NTLM", "negotiate": "Negotiate", "basic": "Basic", "bearer": "Bearer"}
            name = canonical.get(word[0].lower(), word[0])
            if name not in found:
                found.append(name)
    return found


# -- Sign-in ------------------------------------------------------------------------------------------------------

def _sign_in(server, username: str, password: str, checks: list[Check]) -> str:  # noqa: ANN001 - a ServerConfig
    """One FailFast request as `username`; returns the server's version in words."""
    from exchangelib import Credentials
    from exchangelib.errors import ResponseMessageError, UnauthorizedError
    from exchangelib.properties import ENTRY_ID, EWS_ID, AlternateId
    from exchangelib.protocol import BaseProtocol, CachingProtocol
    from exchangelib.services import ConvertId

    from .connection import account_for, explain

    # exchangelib keeps one protocol (with its pool of connections) per endpoint and credentials. The test uses a
    # fresh one, so that it really asks the server and leaves the pools of running syncs alone; afterwards the
    # protocol cached before (if any) is put back, and the HTTP adapter is left as it was (the saved settings
    # may differ from the ones tested).
    key = (server.ews_url, Credentials(username, password))
    cache, lock = CachingProtocol._protocol_cache, CachingProtocol._protocol_cache_lock
    with lock:
        earlier = cache.pop(key, None)
    adapter = BaseProtocol.HTTP_ADAPTER_CLS
    mailbox = username.rsplit("\\", 1)[-1]
    if "@" not in mailbox:
        mailbox = f"{mailbox}@invalid"  # exchangelib wants an address; the requests below name no mailbox
    try:
        account = account_for(server, mailbox, username, password)
        account.protocol.version  # noqa: B018 - asks the server (one ConvertId) unless the version is pinned
        try:
            # One request that always reaches the server, even when the version is pinned.
            for _ in ConvertId(protocol=account.protocol).call(
                    [AlternateId(id="DUMMY", format=EWS_ID, mailbox="DUMMY")], ENTRY_ID):
                pass
        except ResponseMessageError:
            pass  # the dummy id is refused, after the server accepted the credentials: that is all we need
        found = account.protocol.version  # now with the build the server reported in its reply
    except UnauthorizedError as error:
        if "locked out" in str(error):
            raise _Failed(SIGN_IN, "locked", f"The account {username} is locked out after too many failed "
                                             "sign-ins. Ask your IT department to unlock it.") from None
        raise _Failed(SIGN_IN, "unauthorized", f"401: the server refused the user name or password of {username}. "
                                               "Check them, and the domain (DOMAIN\\user) if the server needs one. "
                                               "Each failed test counts as a failed sign-in; too many lock the "
                                               "account.") from None
    except Exception as error:  # exchangelib raises many kinds: each is explained, none shown raw
        raise _Failed(SIGN_IN, explain(error).kind, f"Sign-in as {username}: {explain(error).message}") from None
    finally:
        BaseProtocol.HTTP_ADAPTER_CLS = adapter
        with lock:
            made = cache.pop(key, None)
            if earlier is not None:
                cache[key] = earlier
        if made is not None and not isinstance(made[0], Exception):
            made[0].close()
    words = _version_words(found)
    if server.version:
        words += f" (the widget speaks {server.version} to it, as pinned)"
    checks.append(Check(SIGN_IN, True, f"Signed in as {username}; the server runs {words}."))
    return words


def _version_words(version) -> str:  # noqa: ANN001 - an exchangelib Version
    from exchangelib import Version

    build = version.build
    name = ""
    if build:
        try:
            name = Version(build=build).fullname  # by the build alone: a pinned API version does not rename it
        except ValueError:
            name = ""
    if not name or name == "UNKNOWN":
        name = f"Exchange ({version.api_version})"
    return f"{name}, build {build}" if build else f"{name} (the server did not report its build)"


def _seconds(timeout: float) -> str:
    return f"{timeout:g} second" + ("" if timeout == 1 else "s")


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or type(error).__name__


# -- Impersonation ------------------------------------------------------------------------------------------------

def impersonation_test(server, username: str, password: str, mailbox: str) -> int:  # noqa: ANN001 - a ServerConfig
    """Act for `mailbox` as the service account (FailFast: no retry); returns the number of items in its inbox.

    Raises connection.ExchangeProblem saying what went wrong (not allowed to impersonate, no such mailbox, 401...).
    """
    from .connection import account_for, explain

    try:
        # Reading the inbox (GetFolder of the root, then of the inbox) brings its item count along.
        inbox = account_for(server, mailbox, username, password, impersonate=True).inbox
    except Exception as error:  # each of exchangelib's failures is explained, none shown raw
        problem = explain(error)
        if problem.kind == "credentials":
            problem.message = ("401: Exchange refused the service account's user name or password. Check them, "
                               "and the domain.")
        raise problem from None
    return inbox.total_count or 0
