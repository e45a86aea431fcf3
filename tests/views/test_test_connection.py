"""Test connection and the impersonation test, against real servers on loopback: the sandbox, a port where nothing
listens, a server that accepts and never answers, HTTPS servers with bad certificates, and web servers that are
not EWS. Each failure must be named: DNS, refused, timeout, TLS (and which certificate problem), not EWS, 401."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
from contoso import PASSWORDS, make_store
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from loopback_http import loopback_servers
from web_helpers import post

from widget import settings
from widget.sandbox import Sandbox

HTMX = {"HX-Request": "true"}


def _test(client, data: dict, htmx: bool = True):  # noqa: ANN001, ANN202 - a test client; its reply
    form = {"ews_auth": "NTLM", "ews_verify_tls": "on", "ews_version": "", "ews_ca_bundle": "", **data}
    return post(client, "/admin/server/test", form, token_from="/admin/server", headers=HTMX if htmx else {})


def _result(reply) -> str:  # noqa: ANN001 - a test response
    """The result's text as a person reads it (tags dropped, spaces collapsed)."""
    text = re.sub(r"<[^>]+>", " ", reply.get_data(as_text=True))
    return " ".join(text.replace("&#39;", "'").replace("&amp;", "&").replace("&#34;", '"').split())


def _stage(reply) -> str:  # noqa: ANN001
    match = re.search(r'data-stage="([^"]*)" data-problem="([^"]*)"', reply.get_data(as_text=True))
    assert match, reply.get_data(as_text=True)
    return f"{match.group(1)}/{match.group(2)}"


# -- Servers on loopback ------------------------------------------------------------------------------------------

@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound (so nobody else takes it) but not listening: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def web_server() -> Iterator[Callable[[int, str, str, dict[str, str]], str]]:
    """Start plain HTTP servers that answer every request the same way; returns each one's EWS-like URL."""

    def start(status: int, content_type: str, body: str, headers: dict[str, str] | None = None) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = body.encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

            def log_message(self, *args: object) -> None:
                pass

        return serve(Handler)

    with loopback_servers() as serve:
        yield start


class Certificates:
    """A private certificate authority and certificates made with it, or self-signed, as PEM files."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Test Root CA")])
        now = datetime.now(UTC)
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(self.ca_name).issuer_name(self.ca_name)
            .public_key(self.ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> str:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM).decode()

    def make(self, name: str, *, self_signed: bool = False, expired: bool = False, host: str = "127.0.0.1") \
            -> tuple[str, str]:
        """(certificate file, key file) for `host` (an IP address or a DNS name)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        try:
            alt = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alt = x509.DNSName(host)
        now = datetime.now(UTC)
        start, end = (now - timedelta(days=60), now - timedelta(days=30)) if expired else (now - timedelta(days=1),
                                                                                            now + timedelta(days=30))
        builder = (
            x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject if self_signed else self.ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        )
        cert = builder.sign(key if self_signed else self.ca_key, hashes.SHA256())
        cert_file, key_file = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return str(cert_file), str(key_file)


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    folder = tmp_path / "certs"
    folder.mkdir()
    return Certificates(folder)


@pytest.fixture
def tls_server() -> Iterator[Callable[[tuple[str, str]], str]]:
    """Start HTTPS servers with a given certificate that answer every request with a 404 HTML page."""
    stops = []

    def start(cert_and_key: tuple[str, str]) -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*cert_and_key)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        stop = threading.Event()

        def answer(conn: socket.socket) -> None:
            conn.settimeout(3)
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                head, _, body = request.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                while length and len(body) < int(length.group(1)):
                    chunk = tls.recv(4096)  # read the whole request: closing on unread data resets the connection
                    if not chunk:
                        return
                    body += chunk
                page = b"<html><head><title>Not Found</title></head><body>Nothing here</body></html>"
                tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nConnection: close\r\n"
                            b"Content-Length: " + str(len(page)).encode() + b"\r\n\r\n" + page)

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        stops.append((stop, listener))
        return f"https://127.0.0.1:{listener.getsockname()[1]}/EWS/Exchange.asmx"

    yield start
    for stop, listener in stops:
        stop.set()
        listener.close()


@pytest.fixture
def quick(app):  # noqa: ANN001, ANN201 - the app
    """Test connection gives up after one second per step instead of five."""
    app.config["WIDGET_TEST_CONNECTION_TIMEOUT"] = 1.0
    return app


# -- Test connection ----------------------------------------------------------------------------------------------

def test_it_signs_in_to_the_sandbox_and_shows_the_server_version(admin_client, sandbox):
    reply = _test(admin_client, {"ews_url": sandbox.url, "test_username": "alice@contoso.com",
                                 "test_password": PASSWORDS["alice@contoso.com"]})
    assert reply.status_code == 200
    text = _result(reply)
    assert "Connection works." in text
    assert "Server version: Microsoft Exchange Server 2016, build 15.1.2507.39" in text
    assert "DNS passed" in text and "Connection passed" in text and "EWS endpoint passed" in text
    assert "asking to sign in with NTLM, Basic" in text
    assert PASSWORDS["alice@contoso.com"] not in reply.get_data(as_text=True)
    assert "<html" not in reply.get_data(as_text=True)  # an htmx fragment, not a page


def test_it_reports_an_ews_endpoint_without_signing_in_when_no_credentials_are_given(admin_client, sandbox):
    reply = _test(admin_client, {"ews_url": sandbox.url})
    assert _stage(reply) == "http/"
    text = _result(reply)
    assert "The server answers as an EWS endpoint." in text and "did not try to sign in" in text
    assert sandbox.stats.operations.total() == 0


def test_it_tests_with_the_service_account_when_impersonation_is_configured(app, admin_client, sandbox):
    with app.test_request_context():
        settings.save({"impersonation": True, "service_username": "svc-crm", "service_domain": "CONTOSO",
                       "service_password": PASSWORDS["svc-crm@contoso.com"]})
    page = admin_client.get("/admin/server").get_data(as_text=True)
    assert "Leave these blank to test with the service account (CONTOSO\\svc-crm)" in page
    reply = _test(admin_client, {"ews_url": sandbox.url})
    text = _result(reply)
    assert "Connection works." in text and "Signed in as the service account" in text
    assert "Sign-in passed : Signed in as CONTOSO\\svc-crm" in text


def test_it_names_a_wrong_password_as_401_at_the_cost_of_one_failed_attempt(admin_client, sandbox):
    reply = _test(admin_client, {"ews_url": sandbox.url, "test_username": "bob@contoso.com",
                                 "test_password": "not-bobs-password"})
    assert _stage(reply) == "sign_in/unauthorized"
    text = _result(reply)
    assert "Failed at: Sign-in." in text
    assert "401: the server refused the user name or password of bob@contoso.com" in text
    assert "not-bobs-password" not in reply.get_data(as_text=True)
    assert sandbox.store.users["bob@contoso.com"].failed_logins == 1


def test_it_names_a_locked_out_account(admin_client, sandbox):
    sandbox.store.users["bob@contoso.com"].locked = True
    reply = _test(admin_client, {"ews_url": sandbox.url, "test_username": "bob@contoso.com",
                                 "test_password": PASSWORDS["bob@contoso.com"]})
    assert _stage(reply) == "sign_in/locked"
    assert "is locked out" in _result(reply)


def test_it_names_a_host_that_dns_does_not_know(admin_client):
    reply = _test(admin_client, {"ews_url": "no-such-host.invalid"})
    assert _stage(reply) == "dns/dns"
    text = _result(reply)
    assert "Failed at: DNS." in text
    assert "the host name no-such-host.invalid could not be found" in text


def test_it_names_a_refused_connection(admin_client, closed_port):
    reply = _test(admin_client, {"ews_url": f"http://127.0.0.1:{closed_port}/EWS/Exchange.asmx"})
    assert _stage(reply) == "tcp/refused"
    text = _result(reply)
    assert "Failed at: Connection." in text
    assert f"Connection refused: nothing accepts connections on port {closed_port} of 127.0.0.1" in text
    assert "DNS passed" in text


def test_it_names_a_server_that_accepts_and_never_answers_as_a_timeout(quick, admin_client, silent_port):
    started = time.monotonic()
    reply = _test(admin_client, {"ews_url": f"http://127.0.0.1:{silent_port}/EWS/Exchange.asmx"})
    assert time.monotonic() - started < 4
    assert _stage(reply) == "http/timeout"
    text = _result(reply)
    assert "Timeout: the server accepted the connection but did not answer the EWS request within 1 second" in text
    assert "Connection passed" in text


def test_it_names_a_tls_handshake_that_never_comes_as_a_timeout(quick, admin_client, silent_port):
    reply = _test(admin_client, {"ews_url": f"https://127.0.0.1:{silent_port}/EWS/Exchange.asmx"})
    assert _stage(reply) == "tls/timeout"
    assert "did not complete a TLS handshake within 1 second" in _result(reply)


def test_it_names_a_self_signed_certificate(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("self", self_signed=True))
    reply = _test(admin_client, {"ews_url": url})
    assert _stage(reply) == "tls/self_signed"
    text = _result(reply)
    assert "Failed at: TLS." in text
    assert "the server's certificate is self-signed (issued to 127.0.0.1 by 127.0.0.1" in text
    assert "paste that authority's certificate under CA certificates" in text


def test_it_names_a_certificate_from_an_unknown_authority(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("internal"))
    reply = _test(admin_client, {"ews_url": url})
    assert _stage(reply) == "tls/unknown_ca"
    text = _result(reply)
    assert "the server's certificate comes from an unknown certificate authority" in text
    assert "(issued to 127.0.0.1 by Contoso Test Root CA, valid until" in text


def test_it_trusts_the_ca_bundle_given_and_then_finds_no_ews_endpoint(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("internal"))
    reply = _test(admin_client, {"ews_url": url, "ews_ca_bundle": certificates.ca_pem})
    assert _stage(reply) == "http/not_ews"
    text = _result(reply)
    assert "TLS passed" in text and "the certificate is valid for 127.0.0.1" in text
    assert "This is not an EWS endpoint: it answered HTTP 404 (text/html), a page titled “Not Found”" in text


def test_it_names_an_expired_certificate(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("old", expired=True))
    reply = _test(admin_client, {"ews_url": url, "ews_ca_bundle": certificates.ca_pem})
    assert _stage(reply) == "tls/expired"
    assert "the server's certificate has expired" in _result(reply)
    assert "(expired)" in _result(reply)


def test_it_names_a_certificate_made_for_another_host(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("other", host="mail.example.com"))
    reply = _test(admin_client, {"ews_url": url, "ews_ca_bundle": certificates.ca_pem})
    assert _stage(reply) == "tls/hostname_mismatch"
    text = _result(reply)
    assert "the server's certificate does not match the IP address (issued to mail.example.com" in text


def test_it_skips_certificate_checks_when_verification_is_off(admin_client, certificates, tls_server):
    url = tls_server(certificates.make("self", self_signed=True))
    reply = _test(admin_client, {"ews_url": url, "ews_verify_tls": ""})
    assert _stage(reply) == "http/not_ews"
    assert "the certificate was NOT verified (verification is off)" in _result(reply)


def test_it_names_plain_http_on_an_https_url(admin_client, sandbox):
    reply = _test(admin_client, {"ews_url": sandbox.url.replace("http://", "https://")})
    assert _stage(reply) == "tls/tls"
    assert "does not speak TLS" in _result(reply)


@pytest.mark.parametrize(
    ("status", "content_type", "body", "headers", "expected"),
    [
        (404, "text/html", "<html><head><title>Widget - Not found</title></head></html>", {},
         "it answered HTTP 404 (text/html), a page titled “Widget - Not found”"),
        (200, "text/html", "<html><head><title>Sign in</title></head><body>form</body></html>", {},
         "it answered HTTP 200 (text/html), a page titled “Sign in”"),
        (200, "application/json", '{"status": "ok"}', {}, "it answered HTTP 200 (application/json)"),
        (302, "text/html", "", {"Location": "https://login.example.com/adfs/ls?client=secret-looking"},
         "it answered HTTP 302 (text/html), a redirect to https://login.example.com/adfs/ls"),
    ],
    ids=["404-html", "200-html", "200-json", "redirect-to-login"],
)
def test_it_says_what_answered_when_the_url_is_not_an_ews_endpoint(admin_client, web_server, status, content_type,
                                                                  body, headers, expected):
    reply = _test(admin_client, {"ews_url": web_server(status, content_type, body, headers)})
    assert _stage(reply) == "http/not_ews"
    text = _result(reply)
    assert "Failed at: EWS endpoint." in text
    assert f"This is not an EWS endpoint: {expected}" in text
    assert "secret-looking" not in text


def test_it_names_a_sign_in_method_the_server_does_not_offer(admin_client):
    with Sandbox(make_store(), auth_schemes=("Basic",)) as basic_only:
        reply = _test(admin_client, {"ews_url": basic_only.url, "ews_auth": "NTLM"})
        assert _stage(reply) == "http/auth"
        assert "does not offer NTLM sign-in (it offers Basic): choose Basic under Authentication" in _result(reply)
        reply = _test(admin_client, {"ews_url": basic_only.url, "ews_auth": "Basic",
                                     "test_username": "carol@contoso.com",
                                     "test_password": PASSWORDS["carol@contoso.com"]})
        assert "Connection works." in _result(reply)


def test_it_works_without_javascript_as_a_whole_page_keeping_the_unsaved_values(app, admin_client, closed_port):
    url = f"http://127.0.0.1:{closed_port}/EWS/Exchange.asmx"
    reply = _test(admin_client, {"ews_url": url, "ews_auth": "Basic", "test_username": "alice@contoso.com",
                                 "test_password": "typed-but-never-shown"}, htmx=False)
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "<html" in page
    assert f'value="{url}"' in page and '<option value="Basic" selected>' in page
    assert 'value="alice@contoso.com"' in page and "typed-but-never-shown" not in page
    assert "Connection refused" in _result(reply)
    with app.test_request_context():
        assert settings.load().ews_url != url  # a test saves nothing


def test_it_asks_for_a_fixed_form_before_testing(admin_client, sandbox):
    reply = _test(admin_client, {"ews_url": "ftp://mail.example.com", "test_username": "alice@contoso.com"})
    assert reply.status_code == 422
    text = _result(reply)
    assert "Not tested: fix the form first." in text
    assert "EWS URL or host must be an http(s) URL or a host name." in text
    assert "Enter the password of the user to test signing in with." in text
    assert sandbox.stats.http_requests == 0


# -- Impersonation test -------------------------------------------------------------------------------------------

def _impersonate(client, mailbox: str, username: str = "svc-crm@contoso.com", password: str | None = None,
                 htmx: bool = True):  # noqa: ANN001, ANN202
    form = {"impersonation": "on", "service_username": username, "service_domain": "",
            "service_password": PASSWORDS.get(username, "") if password is None else password, "test_mailbox": mailbox}
    return post(client, "/admin/impersonation/test", form, token_from="/admin/impersonation",
                headers=HTMX if htmx else {})


def test_it_impersonates_a_mailbox_and_counts_its_inbox(admin_client, sandbox):
    for subject in ("Quote", "Invoice"):
        requests.post(f"{sandbox.base_url}/sandbox/deliver", timeout=5, json={
            "from": "carol@contoso.com", "to": ["bob@contoso.com"], "subject": subject, "text": "Hello"})
    reply = _impersonate(admin_client, "bob@contoso.com")
    assert reply.status_code == 200
    text = _result(reply)
    assert "Impersonation works." in text
    assert "The service account can act for bob@contoso.com: its Inbox holds 2 items." in text
    assert sandbox.stats.by_mailbox_operation[("bob@contoso.com", "GetFolder")] == 2  # the root, then the inbox
    assert PASSWORDS["svc-crm@contoso.com"] not in reply.get_data(as_text=True)


def test_it_uses_the_stored_service_password_when_the_field_is_blank(app, admin_client, sandbox):
    with app.test_request_context():
        settings.save({"service_username": "svc-crm@contoso.com", "service_password": PASSWORDS["svc-crm@contoso.com"]})
    reply = _impersonate(admin_client, "carol@contoso.com", password="")
    assert "its Inbox holds 0 items" in _result(reply)


def test_it_says_when_the_account_may_not_impersonate(admin_client, sandbox):
    reply = _impersonate(admin_client, "bob@contoso.com", username="alice@contoso.com")
    text = _result(reply)
    assert "Impersonation failed." in text
    assert "not allowed to impersonate this mailbox (it needs the ApplicationImpersonation role)" in text


def test_it_says_when_the_mailbox_does_not_exist(admin_client, sandbox):
    assert "Exchange has no mailbox for this address." in _result(_impersonate(admin_client, "nobody@contoso.com"))


def test_it_names_a_wrong_service_password_as_401(admin_client, sandbox):
    reply = _impersonate(admin_client, "bob@contoso.com", password="wrong-service-password")
    assert "401: Exchange refused the service account's user name or password." in _result(reply)
    assert sandbox.store.users["svc-crm@contoso.com"].failed_logins == 1


def test_it_asks_for_a_mailbox_to_impersonate(admin_client, sandbox):
    reply = _impersonate(admin_client, "")
    assert reply.status_code == 422
    assert "Enter the email address of a mailbox to act for." in _result(reply)


def test_it_runs_the_impersonation_test_without_javascript(admin_client, sandbox):
    reply = _impersonate(admin_client, "bob@contoso.com", htmx=False)
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "<html" in page
    assert 'value="bob@contoso.com"' in page and "Impersonation works." in _result(reply)
    assert PASSWORDS["svc-crm@contoso.com"] not in page
