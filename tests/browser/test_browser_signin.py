"""Authorize inside the CRM's web tab: a cross-site iframe whose session cookie is SameSite=None; Secure;
Partitioned, so the browser keeps it for the widget in that CRM (and only there)."""

from __future__ import annotations

from browser_helpers import authorize, open_tab
from contoso import PASSWORDS
from playwright.sync_api import BrowserContext, Page, expect


def test_it_authorizes_a_user_inside_the_crm_frame_and_shows_the_dashboard(page: Page, context: BrowserContext, crm,
                                                                            widget):
    frame = open_tab(page, crm, f"{widget.url}/dashboard")
    # Not signed in yet: the dashboard sends the visitor to Authorize, inside the frame.
    expect(frame.get_by_role("heading", name="Authorize")).to_be_visible()
    authorize(frame, "alice@contoso.com", PASSWORDS["alice@contoso.com"])

    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(frame.locator("#user-status")).to_have_text("Authorized")
    expect(frame.locator("#latest-sync")).to_have_text("None yet")
    expect(frame.get_by_text("alice@contoso.com")).to_be_visible()

    # Embedding on: the third-party kind of session cookie, under its own name.
    (cookie,) = [c for c in context.cookies() if c["name"] == "widget_session_embedded"]
    assert (cookie["domain"], cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == \
        ("localhost", True, True, "None")
    assert cookie.get("partitionKey") == "http://127.0.0.1"  # kept for the CRM's site only


def test_it_keeps_the_user_signed_in_across_reloads_of_the_crm_tab(page: Page, crm, widget):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, "bob@contoso.com", PASSWORDS["bob@contoso.com"])
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()

    frame = open_tab(page, crm, f"{widget.url}/dashboard")
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(frame.get_by_text("bob@contoso.com")).to_be_visible()


def test_it_shows_why_exchange_refused_a_sign_in_inside_the_frame(page: Page, crm, widget):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, "carol@contoso.com", "not-her-password")

    expect(frame.get_by_role("alert")).to_contain_text("This email and password do not match")
    expect(frame.get_by_label("Email")).to_have_value("carol@contoso.com")
    assert widget.sandbox.store.users["carol@contoso.com"].failed_logins == 1
    assert widget.user("carol@contoso.com") is None
