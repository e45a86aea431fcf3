"""Helpers for the browser tests: the servers (widget, CRM host page), the widget's handle, and page actions.

Three loopback origins, each its own site for the browser:
- the widget, http://localhost:P — a real werkzeug server, threaded, around a migrated app on the sandbox;
- the CRM, http://127.0.0.1:P2 — a host page that frames the widget like a CRM web tab; the administrator
  allows this origin (the `frame_origins` setting);
- a stranger, http://127.0.0.2:P3 — the same host page on an origin nobody allowed.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from playwright.sync_api import Dialog, Frame, FrameLocator, Page
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from widget import launch, settings
from widget.extensions import db
from widget.models import User
from widget.sandbox import Sandbox

CHROMIUM = os.environ.get("WIDGET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Playwright's default of 30 s turns a missing text into a long wait; everything here answers in well under 1 s.
TIMEOUT_MS = 10_000
ADMIN_EMAIL = "admin@example.com"  # as in tests/app_fixtures.py
ADMIN_PASSWORD = "Admin-password-1"
LAUNCH_SECRET = "browser-tests-launch-secret"
FAST_HASH = "pbkdf2:sha256:1000"  # the administrator's password hash, cheap for tests (scrypt takes 0.2 s)

Screenshot = Callable[[Page, str], None]


class _QuietHandler(WSGIRequestHandler):
    """No access log: launch tokens travel in query strings, and the log would only be noise."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def serve_in_thread(app: Any, host: str) -> BaseWSGIServer:
    """Serve a WSGI app with werkzeug's threaded server on a free port of `host`, in a daemon thread."""
    server = make_server(host, 0, app, threaded=True, request_handler=_QuietHandler)
    # A short poll keeps shutdown() quick: every test starts and stops a widget server.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"browser-test-{host}",
                     daemon=True).start()
    return server


def stop_server(server: BaseWSGIServer) -> None:
    """Stop a server started by serve_in_thread."""
    server.shutdown()
    server.server_close()


@Request.application
def crm_host_page(request: Request) -> Response:
    """A CRM page with a web tab: /tab?src=URL frames URL; the heading names the host that serves it."""
    if request.path != "/tab":
        return Response("not found", status=404)
    src = request.args.get("src", "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CRM at {html.escape(request.host)}</title>
<style>body{{font-family:sans-serif;margin:0}} header{{background:#1f3b73;color:#fff;padding:8px 16px}}
iframe{{border:0;width:100%;height:600px}}</style></head>
<body><header><h1>CRM at {html.escape(request.host)}</h1><nav>Leads · Contacts · Deals · <b>Exchange</b></nav></header>
<iframe id="widget" title="Exchange" src="{html.escape(src)}"></iframe></body></html>"""
    return Response(page, mimetype="text/html")


@dataclass(frozen=True)
class CrmHosts:
    """The CRM's origin and a stranger's origin, both serving crm_host_page."""

    origin: str
    stranger: str

    def tab(self, widget_url: str, *, origin: str | None = None) -> str:
        """The URL of a host page (the CRM's unless `origin` says otherwise) that frames `widget_url`."""
        return f"{origin or self.origin}/tab?src={quote(widget_url, safe='')}"


@dataclass
class Widget:
    """The widget served at `url` (http://localhost:P), its app and its Exchange sandbox."""

    url: str
    app: Flask
    sandbox: Sandbox

    def save_settings(self, **values: Any) -> None:
        """Change admin settings as the admin pages would."""
        with self.app.app_context():
            settings.save(values)

    def user(self, email: str) -> User | None:
        """The widget's user with this address (detached: read its fields only)."""
        with self.app.app_context():
            user = db.session.scalar(db.select(User).where(User.email == email))
            if user is not None:
                db.session.expunge(user)
            return user

    def launch_token(self, email: str, **kwargs: Any) -> str:
        """A launch token signed with the widget's launch secret, as the CRM makes it."""
        return launch.sign(LAUNCH_SECRET, email, **kwargs)


def chromium_executable() -> str:
    """Debian's Chromium (Playwright cannot download its own browsers here); fails loudly when it is missing."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `apt-get install -y chromium` (or set WIDGET_TEST_CHROMIUM)")
    return path


def open_tab(page: Page, crm: CrmHosts, url: str, *, origin: str | None = None) -> FrameLocator:
    """Open the CRM page whose web tab frames `url`; returns the frame to work in."""
    page.goto(crm.tab(url, origin=origin))
    return page.frame_locator("iframe#widget")


def authorize(frame: Page | Frame | FrameLocator, email: str, password: str) -> None:
    """Fill in and send the Authorize form shown in `frame` (the CRM tab's frame, or a page of its own)."""
    frame.get_by_label("Email").fill(email)
    frame.get_by_label("Password", exact=True).fill(password)
    frame.get_by_role("button", name="Authorize").click()


class PageWatch:
    """What a page did that hostile content would make it do: dialogs opened (and dismissed), console lines, and
    the URLs it requested and got answers from."""

    def __init__(self, page: Page):
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.requested: list[str] = []
        self.answered: list[str] = []  # a request the CSP blocks gets no answer
        page.on("dialog", self._dismiss)
        page.on("console", lambda message: self.console.append(message.text))
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("response", lambda response: self.answered.append(response.url))

    def _dismiss(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def hostile_lines(self) -> list[str]:
        """Console lines that hostile code would have written."""
        return [text for text in self.console if "hostile code ran" in text]
