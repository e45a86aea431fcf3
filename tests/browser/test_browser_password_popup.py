"""Update Password: a popup over the dashboard, inside the CRM's frame; Exchange checks the new password before
it replaces the stored one."""

from __future__ import annotations

from browser_helpers import Screenshot, Widget, authorize, open_tab
from contoso import PASSWORDS
from playwright.sync_api import Page, expect

from widget.secret_box import decrypt

ALICE = "alice@contoso.com"
NEW_PASSWORD = "Alice-new-pw-2"


def stored_password(widget: Widget, email: str) -> str:
    """The Exchange password the widget keeps for `email`, decrypted."""
    with widget.app.app_context():
        return decrypt(widget.user(email).exchange_password)


def test_it_refuses_a_wrong_new_password_then_stores_the_right_one(page: Page, crm, widget: Widget,
                                                                   screenshot: Screenshot):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ALICE, PASSWORDS[ALICE])
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()

    frame.get_by_role("button", name="Update Password").click()
    popup = frame.get_by_role("dialog", name="Update Password")
    expect(popup).to_be_visible()
    expect(popup.get_by_label("New Exchange password")).to_be_focused()
    screenshot(page, "password-popup")

    # Exchange still has the old password: the new one is refused, the popup says why, nothing changes.
    popup.get_by_label("New Exchange password").fill(NEW_PASSWORD)
    popup.get_by_role("button", name="Save").click()
    expect(popup.get_by_role("alert")).to_contain_text("did not accept this email and password")
    expect(popup.get_by_label("New Exchange password")).to_be_visible()
    assert stored_password(widget, ALICE) == PASSWORDS[ALICE]
    assert widget.user(ALICE).status == "authorized"

    # Exchange's password changes; the user gives the new one in the same popup.
    widget.sandbox.store.set_password(ALICE, NEW_PASSWORD)
    popup.get_by_label("New Exchange password").fill(NEW_PASSWORD)
    popup.get_by_role("button", name="Save").click()
    expect(popup.get_by_role("status")).to_have_text("Your Exchange password is updated. Syncing resumes.")
    assert stored_password(widget, ALICE) == NEW_PASSWORD

    # Closing reloads the dashboard, still signed in (this session moved on to the new session version).
    popup.get_by_role("button", name="Close").click()
    expect(popup).to_be_hidden()
    expect(frame.locator("#user-status")).to_have_text("Authorized")


def test_it_closes_the_popup_without_changing_anything(page: Page, crm, widget: Widget):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ALICE, PASSWORDS[ALICE])
    frame.get_by_role("button", name="Update Password").click()
    popup = frame.get_by_role("dialog", name="Update Password")
    expect(popup).to_be_visible()

    popup.get_by_role("button", name="Cancel").click()
    expect(popup).to_be_hidden()
    frame.get_by_role("button", name="Update Password").click()
    expect(popup).to_be_visible()
    page.keyboard.press("Escape")
    expect(popup).to_be_hidden()
    assert stored_password(widget, ALICE) == PASSWORDS[ALICE]
