"""Who may frame the widget: only the origins of the administrator's Embedding setting (CSP frame-ancestors)."""

from __future__ import annotations

from browser_helpers import Widget, open_tab
from playwright.sync_api import Frame, Page, expect


def widget_frame(page: Page) -> Frame:
    """The frame the host page's iframe holds."""
    return page.locator("iframe#widget").element_handle().content_frame()


def refused_frame(page: Page, url: str, directive: str) -> Frame:
    """Open a host page at `url`; wait until the browser says that `directive` (CSP) refused its frame."""
    with page.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal:
        page.goto(url)
    # Chromium's wording changes between releases ("Refused to frame ...", "Framing ... violates ..."); the
    # directive it quotes does not.
    assert f'"{directive}"' in refusal.value.text, refusal.value.text
    return widget_frame(page)


def test_it_shows_the_widget_in_the_frame_of_the_allowed_crm(page: Page, crm, widget: Widget):
    frame = open_tab(page, crm, f"{widget.url}/signin")
    expect(frame.get_by_role("heading", name="Authorize")).to_be_visible()
    assert widget_frame(page).url == f"{widget.url}/signin"


def test_it_keeps_the_widget_out_of_a_frame_on_a_third_origin(page: Page, crm, widget: Widget):
    frame = refused_frame(page, crm.tab(f"{widget.url}/signin", origin=crm.stranger), f"frame-ancestors {crm.origin}")

    assert not frame.url.startswith(widget.url)
    assert "Authorize" not in frame.content()
    expect(page.frame_locator("iframe#widget").get_by_role("heading", name="Authorize")).to_have_count(0)


def test_it_lets_no_site_frame_the_widget_when_embedding_is_off(page: Page, crm, widget: Widget):
    widget.save_settings(frame_origins=[])
    frame = refused_frame(page, crm.tab(f"{widget.url}/signin"), "frame-ancestors 'none'")

    assert not frame.url.startswith(widget.url)
    assert "Authorize" not in frame.content()
