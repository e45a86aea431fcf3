"""The administrator at work: inside the CRM's web tab, sets up the Exchange server, tests the connection against
a working and a broken endpoint, and turns impersonation on; in a window of its own, allows the CRM to frame the
widget and generates the launch secret."""

from __future__ import annotations

import socket

from browser_helpers import ADMIN_EMAIL, ADMIN_PASSWORD, Widget, authorize, open_tab
from contoso import PASSWORDS
from playwright.sync_api import FrameLocator, Page, expect

from widget import launch, settings


def closed_port_url() -> str:
    """An EWS URL on a loopback port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/EWS/Exchange.asmx"


def open_settings(page: Page, crm, widget: Widget, section: str) -> FrameLocator:  # noqa: ANN001 - CrmHosts
    """Sign in as the administrator in the CRM's tab and open a section of Settings."""
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ADMIN_EMAIL, ADMIN_PASSWORD)
    frame.get_by_role("link", name="Settings").click()
    frame.get_by_role("navigation", name="Settings").get_by_role("link", name=section).click()
    expect(frame.get_by_role("heading", name=section)).to_be_visible()
    return frame


def test_it_lets_the_administrator_set_up_and_test_the_exchange_server(page: Page, crm, widget: Widget):
    widget.save_settings(ews_url="")
    frame = open_settings(page, crm, widget, "Exchange server")
    url_field = frame.get_by_label("EWS URL or host")
    result = frame.locator("#test-result")

    # A broken endpoint: nothing listens there.
    url_field.fill(closed_port_url())
    frame.get_by_role("button", name="Test connection").click()
    expect(result.get_by_role("alert")).to_contain_text("Failed at: Connection.")

    # Another broken one: a web server, but not EWS.
    url_field.fill(f"{crm.origin}/EWS/Exchange.asmx")
    frame.get_by_role("button", name="Test connection").click()
    expect(result.get_by_role("alert")).to_contain_text("Failed at: EWS endpoint.")
    expect(result).to_contain_text("This is not an EWS endpoint")

    # The working endpoint, with a test sign-in.
    url_field.fill(widget.sandbox.url)
    frame.get_by_label("Authentication").select_option("NTLM")
    frame.get_by_label("User name").fill("alice@contoso.com")
    frame.get_by_label("Password", exact=True).fill(PASSWORDS["alice@contoso.com"])
    frame.get_by_role("button", name="Test connection").click()
    expect(result.get_by_role("status")).to_contain_text("Connection works.")
    assert widget.user(ADMIN_EMAIL) is not None
    with widget.app.app_context():
        assert settings.load().ews_url == ""  # testing saves nothing

    frame.get_by_label("Password", exact=True).fill("")
    frame.get_by_role("button", name="Save").click()
    expect(frame.get_by_text("Saved.", exact=True)).to_be_visible()
    expect(frame.get_by_label("EWS URL or host")).to_have_value(widget.sandbox.url)
    with widget.app.app_context():
        assert (settings.load().ews_url, settings.load().ews_auth) == (widget.sandbox.url, "NTLM")


def test_it_lets_the_administrator_turn_impersonation_on(page: Page, crm, widget: Widget):
    frame = open_settings(page, crm, widget, "Impersonation")
    frame.get_by_label("Impersonation", exact=True).check()
    frame.get_by_label("Service account user name").fill("svc-crm")
    frame.get_by_label("Service account domain").fill("CONTOSO")
    frame.get_by_label("Service account password").fill(PASSWORDS["svc-crm@contoso.com"])
    frame.get_by_label("Mailbox to act for").fill("bob@contoso.com")
    frame.get_by_role("button", name="Test impersonation").click()
    expect(frame.locator("#impersonation-result").get_by_role("status")).to_contain_text("Impersonation works.")

    frame.get_by_role("button", name="Save").click()
    expect(frame.get_by_text("Saved.", exact=True)).to_be_visible()
    expect(frame.get_by_label("Impersonation", exact=True)).to_be_checked()
    with widget.app.app_context():
        current = settings.load()
        assert (current.impersonation, current.service_username, current.service_domain) == \
            (True, "svc-crm", "CONTOSO")
        assert current.service_password == PASSWORDS["svc-crm@contoso.com"]

    # Users now open the widget from the CRM without a password.
    frame.get_by_role("button", name="Sign out").click()
    frame = open_tab(page, crm, f"{widget.url}/launch?token={widget.launch_token('carol@contoso.com')}")
    expect(frame.locator("#user-status")).to_have_text("Impersonated")


def open_embedding_first_party(page: Page, widget: Widget) -> None:
    """Sign in as the administrator in a window of the widget's own (nobody may frame it yet), open Embedding."""
    page.goto(f"{widget.url}/signin")
    authorize(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Embedding").click()
    expect(page.get_by_role("heading", name="Embedding")).to_be_visible()


def test_it_lets_the_administrator_allow_the_crm_and_generate_the_launch_secret(page: Page, crm, widget: Widget):
    widget.save_settings(frame_origins=[], launch_secret="")
    open_embedding_first_party(page, widget)
    expect(page.locator("#secret-state")).to_contain_text("No launch secret yet")

    page.get_by_label("CRM origins allowed to frame the widget").fill(crm.origin)
    with page.expect_response(lambda reply: reply.request.method == "POST"):
        page.get_by_role("button", name="Save").click()
    # The session cookie changes its kind with embedding (see the xfail below): come back through sign-in.
    open_embedding_first_party(page, widget)
    expect(page.get_by_label("CRM origins allowed to frame the widget")).to_have_value(crm.origin)
    page.get_by_role("button", name="Generate").click()
    secret = page.get_by_label("New launch secret").input_value()
    assert len(secret) >= 32
    expect(page.get_by_role("button", name="Rotate")).to_be_visible()

    # The CRM signs with that secret; its tab shows the widget to a new user, on Authorize with the address filled.
    tab = page.context.new_page()
    frame = open_tab(tab, crm, f"{widget.url}/launch?token={launch.sign(secret, 'carol@contoso.com')}")
    expect(frame.get_by_role("heading", name="Authorize")).to_be_visible()
    expect(frame.get_by_label("Email")).to_have_value("carol@contoso.com")


def test_it_lets_someone_else_sign_in_in_the_same_window_after_embedding_is_turned_on(page: Page, crm,
                                                                                       widget: Widget):
    widget.save_settings(frame_origins=[])
    open_embedding_first_party(page, widget)
    page.get_by_label("CRM origins allowed to frame the widget").fill(crm.origin)
    with page.expect_response(lambda reply: reply.request.method == "POST"):
        page.get_by_role("button", name="Save").click()
    with widget.app.app_context():
        assert settings.load().frame_origins == [crm.origin]

    # Whether the administrator's session survives the switch or not, the next person signs in as usual.
    page.goto(f"{widget.url}/signin")
    authorize(page, "alice@contoso.com", PASSWORDS["alice@contoso.com"])
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".who")).to_have_text("alice@contoso.com", timeout=2000)


def test_it_walks_every_settings_section_by_the_menu_to_the_crm_directory_and_back(page: Page, crm, widget: Widget,
                                                                                  screenshot):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ADMIN_EMAIL, ADMIN_PASSWORD)
    frame.get_by_role("link", name="Settings").click()
    menu = frame.get_by_role("navigation", name="Settings")
    labels = ["Exchange server", "Impersonation", "Sync settings", "Users", "CRM directory", "Sync history",
              "Embedding"]
    for label in labels:
        menu.get_by_role("link", name=label, exact=True).click()
        # Every section, the CRM directory and the sync history included, shows the same menu, its own entry current.
        expect(menu.locator("a[aria-current=page]")).to_have_text(label)
        expect(menu.get_by_role("link")).to_have_text(["Overview", *labels])
    menu.get_by_role("link", name="CRM directory").click()
    expect(frame.get_by_role("heading", name="CRM directory")).to_be_visible()
    for size in ({"width": 1280, "height": 800}, {"width": 800, "height": 600}):
        page.set_viewport_size(size)
        screenshot(page, f"settings-crm-directory-{size['width']}")
    menu.get_by_role("link", name="Sync history").click()
    expect(menu.locator("a[aria-current=page]")).to_have_text("Sync history")


def test_it_tells_the_administrator_a_refused_service_password_and_leads_to_where_it_is_changed(page: Page, crm,
                                                                                              widget: Widget,
                                                                                              screenshot):
    from widget import service_account

    with widget.app.test_request_context():
        service_account.mark_refused()
    frame = open_settings(page, crm, widget, "Users")
    banner = frame.locator("#service-refused")
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_contain_text("Exchange refused the service account's password")
    for size in ({"width": 1280, "height": 800}, {"width": 800, "height": 600}):
        page.set_viewport_size(size)
        screenshot(page, f"service-refused-{size['width']}")
    banner.get_by_role("link", name="Enter its new password under Impersonation").click()
    expect(frame.get_by_role("heading", name="Impersonation")).to_be_visible()
    expect(frame.get_by_label("Service account password")).to_be_visible()
