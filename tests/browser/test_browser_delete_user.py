"""The administrator deletes a user from the Users page, by its visible labels: a page asks first and says what goes,
then the user and what the widget kept for them are gone, and their open session ends."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from browser_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, Widget, authorize
from contoso import PASSWORDS
from playwright.sync_api import Page, expect

from widget.extensions import db
from widget.models import Email

SIZES = ((1280, 800), (800, 600))


def _shoot(page: Page, name: str) -> None:
    folder = os.environ.get("WIDGET_TEST_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(Path(folder) / f"{name}-{width}x{height}.png"), full_page=True)


def test_it_lets_the_administrator_delete_a_user_after_asking(page: Page, widget: Widget):
    alice = page.context.browser.new_context()
    alice_page = alice.new_page()
    alice_page.goto(f"{widget.url}/signin")
    authorize(alice_page, "alice@contoso.com", PASSWORDS["alice@contoso.com"])
    expect(alice_page.get_by_role("heading", name="Dashboard")).to_be_visible()
    with widget.app.app_context():
        db.session.add(Email(user_id=widget.user("alice@contoso.com").id, item_id="m-1", folder="inbox",
                             subject="Offer", received_at=datetime.now(UTC)))
        db.session.commit()

    page.goto(f"{widget.url}/signin")
    authorize(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    _shoot(page, "users")
    page.get_by_role("link", name="Delete alice@contoso.com").click()
    expect(page.get_by_role("heading", name="Delete alice@contoso.com?")).to_be_visible()
    expect(page.get_by_text("1 email, 0 calendar items and 0 tasks")).to_be_visible()
    _shoot(page, "delete-user")
    page.get_by_role("button", name="Delete user").click()
    expect(page.get_by_text("alice@contoso.com is deleted")).to_be_visible()
    expect(page.get_by_role("link", name="Delete alice@contoso.com")).to_have_count(0)
    assert widget.user("alice@contoso.com") is None
    with widget.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Email)) == 0

    alice_page.reload()
    expect(alice_page.get_by_role("heading", name="Authorize")).to_be_visible()
    alice.close()
