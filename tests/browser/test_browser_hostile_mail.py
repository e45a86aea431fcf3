"""Hostile mail, rendered in Chromium inside the CRM's frame: subjects, names, addresses and bodies that carry
scripts, event handlers, `javascript:` and `data:` links, CSS and SVG tricks, mutation-XSS shapes, broken markup
and odd encodings. Each is listed on a record and opened; none runs anything, nothing loads from outside, and the
widget's page stays usable (its links are not covered, its search still works).

The widget never parses MIME: Exchange hands it parsed bodies, so the "malformed MIME" of the outside world
reaches it as the odd text and broken markup below.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from browser_helpers import PageWatch, Widget, authorize, open_tab
from contoso import PASSWORDS
from playwright.sync_api import Page, expect

from widget.crm.directory import RecordInput, upsert_records
from widget.extensions import db
from widget.models import Email, User
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox
from widget.sync.runner import run_sync

ALICE = "alice@contoso.com"
LENA = "lena@acme.example"
# What each trick would do if it ran: mark its window, log, open a dialog, and reach for the CRM's page.
RUN = "window.hostileRan='{0}';console.log('hostile code ran: {0}');alert('{0}');top.document.title='PWNED'"
OUTSIDE = ("/beacon.png", "/css-import.css", "/css-bg.png", "/link.css", "/font.woff", "/video.mp4", "/refreshed",
           "/form-post")


class Hostile(NamedTuple):
    """One hostile message: what it is called, and what it carries where."""

    name: str
    subject: str
    body: str
    body_type: str = "HTML"
    sender_name: str = "Lena Fischer"


def _run(label: str) -> str:
    return RUN.format(label)


def _corpus(crm: str) -> list[Hostile]:
    r = _run
    return [
        Hostile("script", "Order 1", f"<p>Order 1</p><script>{r('script')}</script>"),
        Hostile("body onload", "Order 2", f"<body onload=\"{r('body onload')}\"><p>Order 2</p></body>"),
        Hostile("img onerror", "Order 3", f"<img src=x onerror=\"{r('img onerror')}\"><p>Order 3</p>"),
        Hostile("svg onload", "Order 4", f"<svg onload=\"{r('svg onload')}\"><circle r=4 /></svg>"),
        Hostile("svg animate", "Order 5",
                f"<svg><animate onbegin=\"{r('svg animate')}\" attributeName=x dur=1s /></svg><p>Order 5</p>"),
        Hostile("svg use data", "Order 6", "<svg><use href=\"data:image/svg+xml,<svg id='x' "
                f"xmlns='http://www.w3.org/2000/svg'><image href='1' onerror='{r('svg use')}'/></svg>#x\"/></svg>"),
        Hostile("svg foreignObject", "Order 7",
                f"<svg><foreignObject><script>{r('foreignObject')}</script></foreignObject></svg>"),
        Hostile("svg javascript link", "Order 8",
                f"<svg><a xlink:href=\"javascript:{r('svg link')}\"><text y=20>Open</text></a></svg>"),
        Hostile("iframe srcdoc", "Order 9", f"<iframe srcdoc=\"<script>{r('srcdoc')}</script>\"></iframe>"),
        Hostile("object and embed", "Order 10", f"<object data=\"javascript:{r('object')}\"></object>"
                f"<embed src=\"data:text/html,<script>{r('embed')}</script>\">"),
        Hostile("javascript links", "Order 11", f"<a href=\"javascript:{r('js link')}\">Open the invoice</a> "
                f"<a href=\"jav&#x09;ascript:{r('tab link')}\">Or here</a>"),
        Hostile("data link", "Order 12", f"<a href=\"data:text/html,<script>{r('data link')}</script>\">Details</a>"),
        Hostile("autofocus", "Order 13", f"<input autofocus onfocus=\"{r('autofocus')}\">"
                f"<details open ontoggle=\"{r('ontoggle')}\"><summary>More</summary></details>"),
        Hostile("form", "Order 14", f"<form action=\"{crm}/form-post\" method=post><input name=q value=secret>"
                f"<button formaction=\"javascript:{r('formaction')}\">Confirm</button></form>"),
        Hostile("meta refresh and base", "Order 15", f"<meta http-equiv=refresh content=\"0;url={crm}/refreshed\">"
                f"<base href=\"javascript:{r('base')}//\"><a href=\"x\">Relative link</a>"),
        Hostile("overlay", "Order 16", "<div style=\"position:fixed;top:0;left:0;width:100%;height:100%;"
                "z-index:2147483647;background:red\">Click anywhere</div>"),
        Hostile("css loads", "Order 17", f"<style>@import url({crm}/css-import.css); body{{background:"
                f"url({crm}/css-bg.png)}} @font-face{{font-family:x;src:url({crm}/font.woff)}}</style>"
                f"<link rel=stylesheet href=\"{crm}/link.css\"><p style=\"background-image:url({crm}/css-bg.png);"
                f"width:expression({r('expression')})\">Order 17</p>"),
        Hostile("tracking and media", "Order 18", f"<img src=\"{crm}/beacon.png\" width=1 height=1>"
                f"<video src=\"{crm}/video.mp4\" autoplay onplay=\"{r('video')}\"></video><p>Order 18</p>"),
        Hostile("noscript mxss", "Order 19",
                f"<noscript><p title=\"</noscript><img src=x onerror={r('noscript')}>\"></noscript>"),
        Hostile("math mxss", "Order 20",
                f"<math><mtext><table><mglyph><style><img src=x onerror=\"{r('math')}\"></style></mglyph></table>"
                "</mtext></math><p>Order 20</p>"),
        Hostile("broken markup", "Order 21", "<div>" * 3000 + "<p>Order 21 <b><i>unclosed <table><tr><td>cell"
                + "<!-- never closed"),
        Hostile("script as text", "Order 22", f"<script>{r('text body')}</script> <b>bold?</b>", body_type="Text"),
        Hostile("hostile subject", f"Invoice <img src=x onerror=\"{r('subject')}\"> {{{{7*7}}}} ${{7*7}}",
                "<p>See subject</p>"),
        Hostile("hostile sender name", "Order 24", "<p>See sender</p>",
                sender_name=f"\"><svg onload=\"{r('sender name')}\">"),
        Hostile("odd encodings", "=?utf-8?B?PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==?= \u202egnp.exe Z\u0351\u0352\u0353o",
                "<p>\u202eRTL override, zero\u200bwidth, \U0001F4E7 astral, combining e\u0301</p>"
                + "x" * 50_000),
    ]


def _deliver(widget: Widget, message: Hostile, received: datetime) -> None:
    props = {"Subject": message.subject, "ToRecipients": [Mailbox(ALICE)], "CcRecipients": [Mailbox(LENA)],
             "Body": Body(message.body_type, message.body)}
    sender = Mailbox("lena@acme.example", message.sender_name)
    deliver_message(widget.sandbox.store, message_defaults(props, sender, received), received)


def test_it_renders_every_hostile_message_without_running_anything_and_stays_usable(page: Page, crm,
                                                                                    widget: Widget):
    corpus = _corpus(crm.origin)
    now = datetime.now(UTC)
    for index, message in enumerate(corpus):
        _deliver(widget, message, now - timedelta(minutes=index + 1))
    watch = PageWatch(page)

    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ALICE, PASSWORDS[ALICE])
    expect(frame.get_by_role("heading", name="Dashboard")).to_be_visible()
    with widget.app.app_context():
        upsert_records([RecordInput("Contacts", "C-1", "Lena Fischer", emails=(LENA,))])
        db.session.commit()
        alice = db.session.scalar(db.select(User).where(User.email == ALICE))
        assert run_sync(alice).outcome == "ok"
        stored = {email.subject: email.id for email in db.session.scalars(db.select(Email))}
    assert len(stored) == len(corpus)

    def nothing_ran(where: str) -> None:
        assert watch.dialogs == [], where
        assert watch.hostile_lines() == [], where
        for each in page.frames:
            assert each.evaluate("() => window.hostileRan") is None, f"{where}: {each.url}"
        assert page.title().startswith("CRM at "), where
        assert [url for url in watch.requested if url.startswith(crm.origin) and url.endswith(OUTSIDE)] == [], where

    # The related list: every hostile subject and name is text, and the list still works.
    frame = open_tab(page, crm, f"{widget.url}/crm/Contacts/C-1/emails")
    expect(frame.get_by_role("heading", name="Emails · Lena Fischer")).to_be_visible()
    expect(frame.locator("a.subject")).to_have_count(min(len(corpus), 25))
    expect(frame.get_by_text(corpus[22].subject, exact=True)).to_be_visible()
    nothing_ran("the related list")
    frame.get_by_role("searchbox").fill("Order 21")
    expect(frame.locator("a.subject")).to_have_text(["Order 21"])

    rendered = 0
    for message in corpus:
        frame = open_tab(page, crm, f"{widget.url}/emails/{stored[message.subject]}?module=Contacts&record=C-1")
        expect(frame.get_by_role("heading", name=message.subject, exact=True)).to_be_visible()
        if message.body_type == "HTML":
            body = frame.locator("iframe.email-body").element_handle().content_frame()
            body.wait_for_load_state("load")
            for link in body.get_by_role("link").all()[:2]:
                link.click(timeout=2_000, no_wait_after=True)
            assert re.search(r"/emails/\d+/body$", body.url), f"{message.name}: the body frame navigated"
        else:
            expect(frame.locator("pre.email-text")).to_contain_text("<script>")
        nothing_ran(message.name)
        # Nothing of the email covers the widget: its own link is still the element under the pointer.
        frame.get_by_role("link", name="← Emails").click(trial=True, timeout=2_000)
        rendered += 1
    assert rendered == len(corpus)
    print(f"hostile messages rendered in Chromium: {rendered}, scripts run: 0")  # noqa: T201 - for the closing note
