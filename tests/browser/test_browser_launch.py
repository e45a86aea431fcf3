"""Launch tokens: the CRM's web tab opens /launch?token=... and the user lands in the widget without a password."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from browser_helpers import LAUNCH_SECRET, Widget, open_tab
from contoso import PASSWORDS
from playwright.sync_api import Page, expect

SERVICE_ACCOUNT = {"impersonation": True, "service_username": "svc-crm@contoso.com",
                   "service_password": PASSWORDS["svc-crm@contoso.com"]}


def test_it_signs_an_impersonated_user_straight_into_the_dashboard(page: Page, crm, widget: Widget):
    widget.save_settings(**SERVICE_ACCOUNT)
    frame = open_tab(page, crm, f"{widget.url}/launch?token={widget.launch_token('bob@contoso.com')}")

    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(frame.locator("#user-status")).to_have_text("Impersonated")
    expect(frame.get_by_text("bob@contoso.com")).to_be_visible()
    # With impersonation there is no password of the user's to update.
    expect(frame.get_by_role("button", name="Update Password")).to_have_count(0)


def test_it_signs_in_a_user_whose_password_is_stored_without_asking_again(page: Page, context, crm, widget: Widget):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    frame.get_by_label("Email").fill("alice@contoso.com")
    frame.get_by_label("Password", exact=True).fill(PASSWORDS["alice@contoso.com"])
    frame.get_by_role("button", name="Authorize").click()
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    context.clear_cookies()

    frame = open_tab(page, crm, f"{widget.url}/launch?token={widget.launch_token('alice@contoso.com')}")
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(frame.locator("#user-status")).to_have_text("Authorized")


def test_it_asks_a_new_user_to_authorize_when_impersonation_is_off(page: Page, crm, widget: Widget):
    frame = open_tab(page, crm, f"{widget.url}/launch?token={widget.launch_token('carol@contoso.com')}")

    expect(frame.get_by_role("heading", name="Authorize")).to_be_visible()
    expect(frame.get_by_label("Email")).to_have_value("carol@contoso.com")


def test_it_refuses_a_launch_token_opened_twice(page: Page, crm, widget: Widget):
    widget.save_settings(**SERVICE_ACCOUNT)
    url = f"{widget.url}/launch?token={widget.launch_token('bob@contoso.com')}"
    frame = open_tab(page, crm, url)
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()

    frame = open_tab(page, crm, url)
    expect(frame.get_by_role("heading", name="Cannot open the widget")).to_be_visible()
    expect(frame.get_by_role("alert")).to_contain_text("already used")


def deluge_style_token(email: str) -> tuple[str, str]:
    """A token as the README's Deluge function makes it: a hex nonce, standard base64 (with '=' padding and, for
    some bytes, '+' or '/', as zoho.encryption.base64Encode gives), a hex HMAC, the whole URL-encoded (as
    zoho.encryption.urlEncode does); returns the base64 part and the token."""
    nonce = hashlib.sha256(email.encode()).hexdigest()
    payload = f"{email}|{int(time.time()) + 60}|{nonce}"
    encoded = base64.b64encode(payload.encode()).decode()
    signature = hmac.new(LAUNCH_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return encoded, quote(f"{encoded}.{signature}", safe="")


def test_it_accepts_a_token_made_the_way_the_readme_zoho_function_makes_it(page: Page, crm, widget: Widget):
    widget.save_settings(**SERVICE_ACCOUNT)
    widget.sandbox.store.add_user("ab~bob@contoso.com", "Ab-bob-pw-1")  # a mailbox the service account reaches
    # '~' where it lands on a 6-bit boundary gives '+' or '/'; the address's length gives padding.
    encoded, token = deluge_style_token("ab~bob@contoso.com")
    assert ("+" in encoded or "/" in encoded) and encoded.endswith("="), encoded
    frame = open_tab(page, crm, f"{widget.url}/launch?token={token}")

    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(frame.get_by_text("ab~bob@contoso.com")).to_be_visible()
