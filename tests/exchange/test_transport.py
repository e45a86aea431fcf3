"""A broken or hostile Exchange server cannot hold the widget: every answer has a total deadline and a size cap.

A loopback server stands in for it: one that trickles its answer a byte at a time, one that sends far more than any
answer of Exchange's, one that declares a huge length. The widget's own requests (a sign-in, a sync) end in time,
with a problem that says what happened, instead of holding a web worker for minutes or reading 600 MB into memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from loopback_http import loopback_servers
from web_helpers import post

from widget import settings
from widget.extensions import db
from widget.models import User
from widget.secret_box import encrypt
from widget.sync.runner import run_sync

SOAP_START = b'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
TRICKLE_FOR = 30.0  # the trickling server gives up after this long (the widget must give up long before)


class _Hostile(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        kind = self.server.kind  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        if kind == "declared":
            self.send_header("Content-Length", str(10 * 1024 ** 3))
            self.end_headers()
            return
        self.end_headers()
        try:
            if kind == "trickle":
                started = time.monotonic()
                for byte in SOAP_START * 100:
                    if time.monotonic() - started > TRICKLE_FOR:
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            else:  # "huge": far more than any answer of Exchange's, as fast as the socket takes it
                self.wfile.write(SOAP_START)
                chunk = b"<x>" + b"a" * (1024 * 1024) + b"</x>"
                for _ in range(200):
                    self.wfile.write(chunk)
        except OSError:
            pass  # the widget hung up: as it should


@pytest.fixture
def hostile() -> Iterator[callable]:
    """`hostile(kind)`: the URL of a server answering that way ("trickle", "huge" or "declared")."""
    with loopback_servers() as serve:
        yield lambda kind: serve(_Hostile, kind=kind)


@pytest.fixture
def bounded_app(app):
    app.config.update(WIDGET_EXCHANGE_WEB_DEADLINE=2.0, WIDGET_EXCHANGE_SYNC_DEADLINE=3.0)
    return app


@pytest.mark.parametrize("kind", ["trickle", "huge", "declared"])
def test_it_answers_a_sign_in_in_seconds_whatever_the_server_sends(bounded_app, client, hostile, kind):
    with bounded_app.test_request_context():
        settings.save({"ews_url": hostile(kind), "ews_version": "Exchange2016"})
    started = time.monotonic()
    reply = post(client, "/signin", {"email": "alice@contoso.com", "password": "whatever-1", "domain": ""})
    took = time.monotonic() - started
    page = reply.get_data(as_text=True)
    assert reply.status_code == 503 and took < 8, (reply.status_code, took)
    expected = "did not answer in time" if kind == "trickle" else "larger than the widget accepts"
    assert expected in page


@pytest.mark.parametrize("kind", ["trickle", "huge"])
def test_it_ends_a_sync_against_such_a_server_with_an_error_in_the_history(bounded_app, hostile, kind):
    with bounded_app.test_request_context():
        settings.save({"ews_url": hostile(kind), "ews_version": "Exchange2016"})
    with bounded_app.app_context():
        user = User(email="alice@contoso.com", exchange_username="alice@contoso.com",
                    exchange_password=encrypt("whatever-1"), status="authorized")
        db.session.add(user)
        db.session.commit()
        started = time.monotonic()
        run = run_sync(user)
        took = time.monotonic() - started
        assert run.outcome == "error" and took < 15, (run.outcome, took)
        assert ("did not answer in time" if kind == "trickle" else "larger than the widget accepts") in run.error
        assert user.sync_due_at is not None  # it tries again later
