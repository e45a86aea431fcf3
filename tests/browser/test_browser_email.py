"""Email inside the CRM's web tab (issue 4, acceptance 5): Sync now shows its progress and then its result, the
record's Emails related list shows the mail, and an email whose HTML carries scripts and event handlers is shown
without running any of them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from browser_helpers import PageWatch, Screenshot, Widget, authorize, open_tab
from contoso import PASSWORDS
from playwright.sync_api import Page, expect

from widget.crm.directory import RecordInput, upsert_records
from widget.extensions import db
from widget.sandbox import Sandbox
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Body, Mailbox

ALICE = "alice@contoso.com"
LENA = "lena@acme.example"
# More than one SyncFolderItems page (512 changes): the inbox takes two pages, so the sync reports its progress
# several times. None of this mail matches a CRM record, so none of it is stored.
NEWSLETTERS = 520
SAFE_TEXT = "Please find the signed order attached."
HOSTILE_SUBJECT = "Invoice 117 <img src=x onerror=alert('subject')>"
# Each trick would mark its window, log to the console, open a dialog, or reach the CRM's page.
RUN = "window.hostileRan='{0}';console.log('hostile code ran: {0}');alert('{0}');top.document.title='PWNED'"
HOSTILE_HTML = f"""<html><head><meta http-equiv="refresh" content="0;url={{crm}}/refreshed">
<script>{RUN.format('script')}</script></head>
<body onload="{RUN.format('body onload')}">
<p>{SAFE_TEXT}</p>
<img src="x" onerror="{RUN.format('img onerror')}" alt="logo">
<img src="{{crm}}/beacon.png" alt="tracking pixel">
<svg onload="{RUN.format('svg onload')}"><circle r="4"></circle></svg>
<iframe srcdoc="<script>{RUN.format('iframe srcdoc')}</script>"></iframe>
<a href="javascript:{RUN.format('javascript link')}">Open the invoice</a>
<div onmouseover="{RUN.format('onmouseover')}">Kind regards, Lena</div>
</body></html>"""


def deliver(sandbox: Sandbox, sender: str, subject: str, body: Body, received: datetime) -> None:
    """A message from outside the organisation, arriving in Alice's inbox."""
    props = {"Subject": subject, "ToRecipients": [Mailbox(ALICE)], "Body": body}
    deliver_message(sandbox.store, message_defaults(props, Mailbox(sender, sender.split("@")[0].title()), received),
                    received)


def assert_nothing_ran(page: Page, watch: PageWatch) -> None:
    """No dialog opened, nothing logged by hostile code, no frame marked, and the CRM's page kept its title."""
    assert watch.dialogs == []
    assert watch.hostile_lines() == []
    for each in page.frames:
        assert each.evaluate("() => window.hostileRan") is None, each.url
    assert page.title().startswith("CRM at ")


def test_it_syncs_now_lists_a_records_mail_and_shows_hostile_html_without_running_it(page: Page, crm,
                                                                                    widget: Widget,
                                                                                    screenshot: Screenshot):
    now = datetime.now(UTC)
    for number in range(NEWSLETTERS):
        deliver(widget.sandbox, f"news{number % 5}@newsletters.example", f"Newsletter {number}",
                Body("Text", "News"), now - timedelta(hours=2, minutes=number))
    deliver(widget.sandbox, LENA, "Quarterly order", Body("Text", "The order for Q3."), now - timedelta(minutes=50))
    deliver(widget.sandbox, LENA, HOSTILE_SUBJECT, Body("HTML", HOSTILE_HTML.format(crm=crm.origin)),
            now - timedelta(minutes=20))
    with widget.app.app_context():
        upsert_records([RecordInput("Contacts", "C-1", "Lena Fischer", emails=(LENA,))])
        db.session.commit()
    # Each page of the sync answers a little late, so that the page's polling sees the sync under way.
    widget.sandbox.add_fault("delay", operation="SyncFolderItems", mailbox=ALICE, times=3, seconds=0.4)

    watch = PageWatch(page)

    # Sync now, inside the CRM's frame: the progress, then the result.
    frame = open_tab(page, crm, f"{widget.url}/signin")
    authorize(frame, ALICE, PASSWORDS[ALICE])
    frame.get_by_role("button", name="Sync now").click()
    status = frame.locator("#sync-status")
    expect(status).to_contain_text(re.compile(r"Syncing… (Inbox|Sent Items|Calendar|Tasks): \d+ changes"))
    expect(status).to_contain_text("Sync finished", timeout=20_000)
    expect(status).to_contain_text("2 new, 0 changed, 0 removed")
    expect(frame.get_by_role("button", name="Sync now")).to_be_enabled()

    # The contact's Emails related list, as the CRM's record page frames it.
    frame = open_tab(page, crm, f"{widget.url}/crm/Contacts/C-1/emails")
    expect(frame.get_by_role("heading", name="Emails · Lena Fischer")).to_be_visible()
    expect(frame.locator("a.subject")).to_have_text([HOSTILE_SUBJECT, "Quarterly order"])
    screenshot(page, "emails")

    # The hostile email: its subject is text, its body shows the safe part only, and none of its tricks runs.
    frame.get_by_role("link", name=HOSTILE_SUBJECT).click()
    expect(frame.get_by_role("heading", name=HOSTILE_SUBJECT)).to_be_visible()
    body_frame = frame.locator("iframe.email-body").element_handle().content_frame()
    body_frame.wait_for_load_state("load")
    assert_nothing_ran(page, watch)
    body = frame.frame_locator("iframe.email-body")
    expect(body.get_by_text(SAFE_TEXT)).to_be_visible()
    body.get_by_text("Kind regards, Lena").hover()
    body.get_by_text("Open the invoice").click()
    assert_nothing_ran(page, watch)
    assert re.search(r"/emails/\d+/body$", body_frame.url)  # the meta refresh took it nowhere
    # Nothing was loaded from outside.
    assert [url for url in watch.answered if url.endswith(("/refreshed", "/beacon.png"))] == []
