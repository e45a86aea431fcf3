"""Fixtures of the browser tests: the widget inside a CRM's iframe, in Debian's Chromium driven by Playwright
(sync API). See browser_helpers.py for the three origins.

One browser for the session and a fresh context (cookies, storage) per test. Screenshots are written only when
WIDGET_TEST_SCREENSHOTS names a folder (e.g. docs/screenshots), so a test run leaves the checkout as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    FAST_HASH,
    LAUNCH_SECRET,
    TIMEOUT_MS,
    CrmHosts,
    Screenshot,
    Widget,
    chromium_executable,
    crm_host_page,
    serve_in_thread,
    stop_server,
)
from databases import install_sqlite_copy, without_widget_settings
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from werkzeug.security import generate_password_hash

from widget import create_app, settings
from widget.extensions import db, limiter
from widget.models import User
from widget.sandbox import Sandbox

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def crm() -> Iterator[CrmHosts]:
    """The CRM host page on http://127.0.0.1:P2 and the stranger's on http://127.0.0.2:P3."""
    crm_server = serve_in_thread(crm_host_page, "127.0.0.1")
    stranger_server = serve_in_thread(crm_host_page, "127.0.0.2")
    yield CrmHosts(f"http://127.0.0.1:{crm_server.server_port}", f"http://127.0.0.2:{stranger_server.server_port}")
    stop_server(crm_server)
    stop_server(stranger_server)


@pytest.fixture
def widget(tmp_path: Path, sandbox: Sandbox, crm: CrmHosts, migrated_sqlite: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Widget]:
    """The widget on http://localhost:P: migrated, an administrator, the sandbox as its Exchange server, the CRM's
    origin allowed to frame it and a launch secret (as in tests/app_fixtures.py, but served for real)."""
    without_widget_settings(monkeypatch)
    install_sqlite_copy(migrated_sqlite, tmp_path / "instance")
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        db.session.add(User(email=ADMIN_EMAIL, display_name="Admin", is_admin=True,
                            admin_password_hash=generate_password_hash(ADMIN_PASSWORD, FAST_HASH)))
        db.session.commit()
        settings.save({"ews_url": sandbox.url, "ews_auth": "NTLM", "frame_origins": [crm.origin],
                       "launch_secret": LAUNCH_SECRET})
    limiter.reset()
    server = serve_in_thread(app, "127.0.0.1")
    yield Widget(f"http://localhost:{server.server_port}", app, sandbox)
    stop_server(server)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    limiter.reset()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, once per session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the whole session."""
    chromium = playwright.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for each test."""
    ctx = browser.new_context(viewport={"width": 1000, "height": 720})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab of the test's browser profile."""
    return context.new_page()


@pytest.fixture
def screenshot() -> Screenshot:
    """screenshot(page, "name"): the CRM tab's frame as WIDGET_TEST_SCREENSHOTS/name.png, when that variable is set."""
    folder = os.environ.get("WIDGET_TEST_SCREENSHOTS")

    def take(page: Page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.locator("iframe#widget").screenshot(path=str(Path(folder) / f"{name}.png"))

    return take
