"""The Emails related list, reading an email and sending one from a record: through the test client, on mail that
the sandbox delivered and the sync stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

from web_helpers import csrf_token, post, signed_in

from widget import settings
from widget.exchange.factory import mailbox_for
from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, Email, User, UserStatus
from widget.sandbox.delivery import deliver_message, message_defaults
from widget.sandbox.items import Attachment, Body, Mailbox
from widget.sync.runner import run_sync
from widget.sync.sent_copies import SENT_PLACEHOLDER_PREFIX, reconcile_sent_copy, record_sent_email

ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
LENA, MAX, LEAD, INFO, OTHER = ("lena@acme.example", "max@acme.example", "lead@prospect.example",
                                "info@acme.example", "other@globex.example")
HTMX = {"HX-Request": "true", "HX-Target": "email-list"}
STRICT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; style-src-elem 'none'; "
              "style-src-attr 'unsafe-inline'; font-src 'none'; form-action 'none'; base-uri 'none'; sandbox; "
              "frame-ancestors 'self'")


# -- helpers -----------------------------------------------------------------------------------------------------------
def deliver(sandbox, sender: str, subject: str, *, to: tuple[str, ...] = (ALICE,), cc: tuple[str, ...] = (),
            when: datetime | None = None, html: str | None = None, name: str | None = None) -> None:
    """A message from `sender` arriving in the inboxes of the organisation's recipients."""
    when = when or datetime.now(UTC) - timedelta(hours=1)
    props = {"Subject": subject, "ToRecipients": [Mailbox(a) for a in to], "CcRecipients": [Mailbox(a) for a in cc],
             "Body": Body("HTML", html if html is not None else f"<p>{subject}</p>")}
    message_defaults(props, Mailbox(sender, name or sender.split("@")[0].title()), when)
    deliver_message(sandbox.store, props, when)


def put_sent(sandbox, owner: str, to: str, subject: str, *, when: datetime | None = None) -> None:
    """A message in `owner`'s Sent Items (sent from Outlook, say)."""
    when = when or datetime.now(UTC) - timedelta(hours=1)
    sandbox.store.add_item(sandbox.store.folder(owner, "sentitems"), "Message", message_defaults(
        {"Subject": subject, "ToRecipients": [Mailbox(to)], "Body": Body("Text", f"{subject} text"), "IsRead": True},
        Mailbox(owner, owner.split("@")[0].title()), when))


def record(app, module: str, crm_id: str, name: str, *addresses: str, account: str | None = None,
           contact: str | None = None) -> None:
    with app.app_context():
        row = CrmRecord(module=module, crm_id=crm_id, name=name, account_crm_id=account, contact_crm_id=contact)
        db.session.add(row)
        db.session.flush()
        db.session.add_all(CrmAddress(record_id=row.id, address=a) for a in addresses)
        db.session.commit()



def user_id(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(User.id).where(User.email == email))


def sync(app, email: str) -> None:
    with app.app_context():
        run = run_sync(db.session.scalar(db.select(User).where(User.email == email)))
        assert run.outcome == "ok", run.error


def set_settings(app, **values) -> None:  # noqa: ANN003
    with app.test_request_context():
        settings.save(values)


def subjects(html: str) -> list[str]:
    """The subjects of the related list, in order."""
    return [unescape(s) for s in re.findall(r'<a class="subject" href="[^"]*">([^<]*)</a>', html)]


def email_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="email-row [a-z]+" id="email-(\d+)"', html)]


def listed(client, module: str, crm_id: str, **params) -> list[str]:  # noqa: ANN003
    reply = client.get(f"/crm/{module}/{crm_id}/emails", query_string=params)
    assert reply.status_code == 200
    return subjects(reply.get_data(as_text=True))


def stored_id(app, subject: str, owner: str = ALICE) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Email.id).join(User, User.id == Email.user_id)
                                 .where(Email.subject == subject, User.email == owner))


# -- the related list --------------------------------------------------------------------------------------------------
def test_it_lists_exactly_each_records_mail_in_every_module(app, sandbox):
    record(app, "Accounts", "A-1", "Acme", INFO)
    record(app, "Contacts", "C-1", "Lena Fischer", LENA, account="A-1")
    record(app, "Contacts", "C-2", "Max Weber", MAX, account="A-1")
    record(app, "Leads", "L-1", "Pia Lead", LEAD)
    record(app, "Deals", "D-1", "Acme renewal", account="A-1", contact="C-2")
    record(app, "Accounts", "A-2", "Globex")
    record(app, "Contacts", "C-3", "Olga Other", OTHER, account="A-2")
    record(app, "Deals", "D-2", "Globex pilot", account="A-2")
    deliver(sandbox, LENA, "From Lena", when=datetime.now(UTC) - timedelta(hours=6))
    deliver(sandbox, MAX, "From Max cc the lead", cc=(LEAD,), when=datetime.now(UTC) - timedelta(hours=5))
    deliver(sandbox, LEAD, "From the lead", when=datetime.now(UTC) - timedelta(hours=4))
    deliver(sandbox, INFO, "From Acme info", when=datetime.now(UTC) - timedelta(hours=3))
    deliver(sandbox, OTHER, "From Olga", when=datetime.now(UTC) - timedelta(hours=2))
    deliver(sandbox, "news@letters.example", "Newsletter")
    put_sent(sandbox, ALICE, LENA, "To Lena", when=datetime.now(UTC) - timedelta(minutes=30))
    client = signed_in(app, ALICE)
    sync(app, ALICE)

    assert listed(client, "Contacts", "C-1") == ["To Lena", "From Lena"]
    assert listed(client, "Contacts", "C-2") == ["From Max cc the lead"]
    assert listed(client, "Leads", "L-1") == ["From the lead", "From Max cc the lead"]
    assert listed(client, "Accounts", "A-1") == ["To Lena", "From Acme info", "From Max cc the lead", "From Lena"]
    assert listed(client, "Deals", "D-1") == ["From Acme info", "From Max cc the lead"]  # its account and contact
    assert listed(client, "Contacts", "C-3") == ["From Olga"]
    assert listed(client, "Accounts", "A-2") == ["From Olga"]
    assert listed(client, "Deals", "D-2") == []
    page = client.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    sent_row = page[page.index(f'id="email-{stored_id(app, "To Lena")}"'):]
    assert '<span class="direction tag sent">Sent</span>' in sent_row.split("</li>")[0]
    received_row = page[page.index(f'id="email-{stored_id(app, "From Lena")}"'):]
    assert '<span class="direction tag received">Received</span>' in received_row.split("</li>")[0]


def test_it_relinks_past_mail_when_the_directory_changes(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    deliver(sandbox, LENA, "Hello from Lena")
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    assert listed(client, "Leads", "L-9") == []
    record(app, "Leads", "L-9", "Lena as a lead", LENA)  # imported after the mail was synced
    assert listed(client, "Leads", "L-9") == ["Hello from Lena"]


def test_it_lists_newest_first_in_pages_and_searches(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    start = datetime.now(UTC) - timedelta(days=20)
    for number in range(30):
        deliver(sandbox, LENA, f"Update {number:02d}", when=start + timedelta(hours=number))
    deliver(sandbox, "zoe@partner.example", "Invoice 7 for Acme", cc=(LENA,), name="Zoe Partner",
            when=start - timedelta(hours=1))
    client = signed_in(app, ALICE)
    sync(app, ALICE)

    first = listed(client, "Contacts", "C-1")
    assert first == [f"Update {n:02d}" for n in range(29, 4, -1)]
    second = listed(client, "Contacts", "C-1", page=2)
    assert second == [f"Update {n:02d}" for n in range(4, -1, -1)] + ["Invoice 7 for Acme"]
    page = client.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    assert "31 emails" in page and "Page 1 of 2" in page and 'rel="next"' in page

    assert listed(client, "Contacts", "C-1", q="invoice") == ["Invoice 7 for Acme"]  # subject
    assert listed(client, "Contacts", "C-1", q="Zoe Partner") == ["Invoice 7 for Acme"]  # sender name
    assert listed(client, "Contacts", "C-1", q="zoe@partner") == ["Invoice 7 for Acme"]  # sender address
    assert listed(client, "Contacts", "C-1", q="Update 1") == [f"Update {n:02d}" for n in range(19, 9, -1)]
    assert listed(client, "Contacts", "C-1", q="100%_") == []  # LIKE wildcards are searched for as text
    # Live search: the search box asks for the list fragment, which comes without the page around it.
    assert 'hx-trigger="input changed delay:300ms, search"' in page and 'hx-target="#email-list"' in page
    fragment = client.get("/crm/Contacts/C-1/emails", query_string={"q": "invoice"}, headers=HTMX)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and text.lstrip().startswith('<div id="email-list"')
    assert "<html" not in text and subjects(text) == ["Invoice 7 for Acme"]
    assert "HX-Request" in fragment.headers.get("Vary", "")


def test_it_shows_dates_in_the_users_time_zone_with_the_zone_named(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    when = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    deliver(sandbox, LENA, "Timed", when=when)
    client = signed_in(app, ALICE)
    with app.app_context():
        db.session.scalar(db.select(User).where(User.email == ALICE)).time_zone = "Asia/Tokyo"
        db.session.commit()
    sync(app, ALICE)
    local = when.astimezone(ZoneInfo("Asia/Tokyo"))
    page = client.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    assert f"{local.strftime('%d %b %Y, %H:%M')} JST" in page and "times in Asia/Tokyo" in page
    shown = client.get(f"/emails/{stored_id(app, 'Timed')}").get_data(as_text=True)
    assert f"{local.strftime('%a %d %b %Y, %H:%M')} JST" in shown


def test_it_shows_a_friendly_empty_state_for_a_record_not_imported_yet(app, sandbox):
    client = signed_in(app, ALICE)
    reply = client.get("/crm/Contacts/9000001/emails")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and 'id="emails-unknown-record"' in page
    assert "not in the widget yet" in page and "imported" in page
    assert client.get("/crm/Tickets/1/emails").status_code == 404
    assert client.get("/crm/contacts/1/emails").status_code == 404


def test_it_sends_visitors_who_are_not_signed_in_to_sign_in(client):
    assert client.get("/crm/Contacts/C-1/emails").status_code == 302
    assert client.get("/emails/1").status_code == 302
    assert client.get("/emails/1/body").status_code == 302


def test_it_says_why_when_email_sync_is_off(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    deliver(sandbox, LENA, "Stored before the switch")
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    email_id = stored_id(app, "Stored before the switch")
    set_settings(app, other_email_integration=True)
    page = client.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    assert "another email integration of your CRM owns email" in page and 'id="emails-off"' in page
    assert subjects(page) == [] and "Send Email" not in page
    assert client.get(f"/emails/{email_id}").status_code == 404
    compose = client.get("/crm/Contacts/C-1/emails/new").get_data(as_text=True)
    assert "another email integration" in compose and "<form" not in compose.split('id="compose-title"')[1]
    reply = post(client, "/crm/Contacts/C-1/emails/new", {"to": LENA, "subject": "Hi", "body": "Hello"},
                 token_from="/crm/Contacts/C-1/emails")
    assert reply.status_code == 409 and sandbox.stats.operations["CreateItem"] == 0


# -- visibility and authorization ----------------------------------------------------------------------------------
def test_it_shows_each_user_only_their_own_mail_unless_email_is_team_wide(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    deliver(sandbox, LENA, "For Alice", to=(ALICE,), when=datetime.now(UTC) - timedelta(hours=3))
    deliver(sandbox, LENA, "For Bob", to=(BOB,), when=datetime.now(UTC) - timedelta(hours=2))
    deliver(sandbox, LENA, "For both", to=(ALICE, BOB), when=datetime.now(UTC) - timedelta(hours=1))
    alice, bob = signed_in(app, ALICE), signed_in(app, BOB)
    sync(app, ALICE)
    sync(app, BOB)
    assert listed(alice, "Contacts", "C-1") == ["For both", "For Alice"]
    assert listed(bob, "Contacts", "C-1") == ["For both", "For Bob"]

    set_settings(app, email_visibility="team")
    # The message both received is one email: each user sees it once, as their own copy.
    assert listed(alice, "Contacts", "C-1") == ["For both", "For Bob", "For Alice"]
    alice_page = alice.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    assert stored_id(app, "For both", ALICE) in email_ids(alice_page)
    bob_page = bob.get("/crm/Contacts/C-1/emails").get_data(as_text=True)
    assert stored_id(app, "For both", BOB) in email_ids(bob_page)
    bobs = alice.get(f"/emails/{stored_id(app, 'For Bob', BOB)}")
    assert bobs.status_code == 200 and "bob@contoso.com’s mailbox" in bobs.get_data(as_text=True)


def _without_tokens(reply) -> str:  # noqa: ANN001 - a test response
    """A page without its CSRF tokens, which carry the time they were made."""
    return re.sub(r'(csrf_token" value=|"X-CSRFToken": )"[^"]+"', r"\1TOKEN", reply.get_data(as_text=True))


def test_it_answers_404_for_another_users_mail_by_url_or_id_guessing(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    set_settings(app, store_unmatched_email=True)
    deliver(sandbox, LENA, "Bob's deal", to=(BOB,))
    deliver(sandbox, "friend@private.example", "Bob's private mail", to=(BOB,))
    deliver(sandbox, LENA, "Alice's own", to=(ALICE,))
    alice, bob = signed_in(app, ALICE), signed_in(app, BOB)
    sync(app, ALICE)
    sync(app, BOB)
    bobs_deal, bobs_private = stored_id(app, "Bob's deal", BOB), stored_id(app, "Bob's private mail", BOB)
    assert bob.get(f"/emails/{bobs_deal}").status_code == 200
    assert bob.get(f"/emails/{bobs_deal}/body").status_code == 200

    assert listed(alice, "Contacts", "C-1") == ["Alice's own"]
    missing = alice.get("/emails/987654")
    for path in (f"/emails/{bobs_deal}", f"/emails/{bobs_deal}/body", f"/emails/{bobs_private}",
                 f"/emails/{bobs_private}/body"):
        reply = alice.get(path)
        assert reply.status_code == 404, path
        assert _without_tokens(reply) == _without_tokens(missing)  # exactly like an id that does not exist
    seen = [alice.get(f"/emails/{n}").status_code for n in range(1, max(bobs_deal, bobs_private) + 5)]
    assert seen.count(200) == 1  # guessing every id finds Alice's own email only
    # Team-wide visibility shares mail on CRM records, never a colleague's mail that matches no record.
    set_settings(app, email_visibility="team")
    assert alice.get(f"/emails/{bobs_deal}").status_code == 200
    assert alice.get(f"/emails/{bobs_private}").status_code == 404
    assert alice.get(f"/emails/{bobs_private}/body").status_code == 404
    # A colleague who is also a CRM contact does not put their whole mailbox on that record.
    record(app, "Contacts", "C-B", "Bob as a contact", BOB)
    assert listed(alice, "Contacts", "C-B") == []
    assert alice.get(f"/emails/{bobs_private}").status_code == 404


def test_it_sends_only_from_the_signed_in_users_mailbox(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    signed_in(app, BOB)
    alice = signed_in(app, ALICE)
    token = csrf_token(alice, "/crm/Contacts/C-9/emails/new")
    reply = alice.post("/crm/Contacts/C-9/emails/new", data={
        "csrf_token": token, "to": CAROL, "subject": "Who sends this", "body": "Hello", "from": BOB,
        "user_id": str(user_id(app, BOB)), "sender": BOB})
    assert reply.status_code == 303
    inbox = list(sandbox.store.folder(CAROL, "inbox").items.values())
    assert [i.props["From"].email for i in inbox] == [ALICE]
    assert not sandbox.store.folder(BOB, "sentitems").items
    with app.app_context():
        owners = db.session.scalars(db.select(Email.user_id).where(Email.subject == "Who sends this")).all()
    assert owners == [user_id(app, ALICE)]


# -- reading an email --------------------------------------------------------------------------------------------------
HOSTILE = """<html><head><meta http-equiv="refresh" content="0;url=https://evil.example/">
<style>body { background: url(https://evil.example/bg.png) }</style><base href="https://evil.example/"></head>
<body onload="alert(1)"><script>alert('script')</script>
<p style="color: red; width: expression(alert(2)); background-image: url('https://evil.example/p.png')">Hello Alice</p>
<img src="https://evil.example/pixel.gif" onerror="alert(3)" alt="pixel">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">
<a href="javascript:alert(4)">click me</a> <a href="https://acme.example/offer">the offer</a>
<svg onload="alert(5)"><circle r="5"/></svg><iframe src="https://evil.example/frame"></iframe>
<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/e">
<form action="https://evil.example/steal"><input name="password"><button>Sign in</button></form>
<div onclick="alert(6)" onmouseover="alert(7)">Regards</div></body></html>"""


def test_it_serves_hostile_html_sanitised_under_a_strict_csp_in_a_sandboxed_frame(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    deliver(sandbox, LENA, "<b>Offer</b> & more", html=HOSTILE)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    email_id = stored_id(app, "<b>Offer</b> & more")

    page = client.get(f"/emails/{email_id}", query_string={"module": "Contacts", "record": "C-1"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "&lt;b&gt;Offer&lt;/b&gt; &amp; more" in html and "<b>Offer</b>" not in html
    frame = re.search(r"<iframe[^>]*>", html).group(0)
    assert 'sandbox=""' in frame and "allow-" not in frame and f'src="/emails/{email_id}/body"' in frame
    assert 'href="/crm/Contacts/C-1/emails"' in html  # back to the list it came from

    reply = client.get(f"/emails/{email_id}/body")
    body = reply.get_data(as_text=True)
    assert reply.status_code == 200 and reply.mimetype == "text/html"
    assert reply.headers["Content-Security-Policy"] == STRICT_CSP
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert "Hello Alice" in body and "Regards" in body and 'href="https://acme.example/offer"' in body
    assert 'rel="noopener noreferrer"' in body and "data:image/png;base64" in body
    lowered = body.lower()
    for forbidden in ("<script", "alert(", "onload", "onerror", "onclick", "onmouseover", "javascript:",
                      "expression", "url(", "evil.example", "<svg", "<iframe", "<object", "<embed", "<form",
                      "<input", "refresh", "<base", "<style"):
        assert forbidden not in lowered, forbidden
    assert lowered.count("<meta") == 3  # only the document's own: charset, its CSP, no-referrer


def test_it_shows_a_text_body_escaped_and_attachment_names_and_sizes(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    when = datetime.now(UTC) - timedelta(hours=1)
    props = {"Subject": "Plain", "ToRecipients": [Mailbox(ALICE)], "CcRecipients": [Mailbox(BOB, "Bob Brown")],
             "Body": Body("Text", "Line one <script>alert(1)</script>\nLine two")}
    message_defaults(props, Mailbox(LENA, "Lena Fischer"), when)
    deliver_message(sandbox.store, props, when)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    email_id = stored_id(app, "Plain")
    with app.app_context():
        db.session.get(Email, email_id).attachments = [["quote.pdf", 48_213], ["logo.png", 900]]
        db.session.commit()
    html = client.get(f"/emails/{email_id}").get_data(as_text=True)
    assert "<pre class=\"email-text\">Line one &lt;script&gt;alert(1)&lt;/script&gt;\nLine two</pre>" in html
    assert "<iframe" not in html
    assert "Lena Fischer &lt;lena@acme.example&gt;" in html and "Bob Brown &lt;bob@contoso.com&gt;" in html
    assert "quote.pdf" in html and "47 KB" in html and "logo.png" in html and "900 bytes" in html


# -- bodies fetched when first needed ---------------------------------------------------------------------------------
def _deliver_many(sandbox, count: int) -> None:
    """`count` messages from Lena, an hour apart, the newest first numbered 0; number 150 has an attachment."""
    now = datetime.now(UTC)
    for number in range(count):
        when = now - timedelta(hours=number + 1)
        props = {"Subject": f"Note {number}", "ToRecipients": [Mailbox(ALICE)],
                 "Body": Body("HTML", f"<p>Text of note {number}</p>")}
        if number == 150:
            props["Attachments"] = [Attachment("att-150", "offer.pdf", "application/pdf", 48_213)]
            props["HasAttachments"] = True
        message_defaults(props, Mailbox(LENA, "Lena Fischer"), when)
        deliver_message(sandbox.store, props, when)


def _body_fetched(app, subject: str) -> bool:
    with app.app_context():
        return db.session.scalar(db.select(Email.body_fetched).where(Email.subject == subject))


def test_it_fetches_the_newest_bodies_with_the_sync_and_any_other_when_it_is_opened(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    _deliver_many(sandbox, 230)
    client = signed_in(app, ALICE)
    before = sandbox.stats.operations["GetItem"]
    sync(app, ALICE)
    assert sandbox.stats.operations["GetItem"] - before == 1  # one batch: the inbox's newest (Sent Items is empty)
    assert [_body_fetched(app, f"Note {n}") for n in (0, 99, 100, 229)] == [True, True, False, False]
    assert "Text of note 0" in client.get(f"/emails/{stored_id(app, 'Note 0')}/body").get_data(as_text=True)
    assert sandbox.stats.operations["GetItem"] - before == 1  # a fetched body opens without asking Exchange

    email_id = stored_id(app, "Note 150")
    row = client.get("/crm/Contacts/C-1/emails", query_string={"q": "Note 150"}).get_data(as_text=True)
    assert '<span class="hint attach">attachments</span>' in row  # known from the summary, names not yet
    page = client.get(f"/emails/{email_id}").get_data(as_text=True)
    assert sandbox.stats.operations["GetItem"] - before == 2  # its body, when opened
    assert "offer.pdf" in page and "47 KB" in page and 'id="body-problem"' not in page
    assert "Text of note 150" in client.get(f"/emails/{email_id}/body").get_data(as_text=True)
    client.get(f"/emails/{email_id}")
    assert sandbox.stats.operations["GetItem"] - before == 2  # and kept
    row = client.get("/crm/Contacts/C-1/emails", query_string={"q": "Note 150"}).get_data(as_text=True)
    assert '<span class="hint attach">1 attachment</span>' in row
    sync(app, ALICE)  # nothing changed: the bodies kept stay, none is fetched again
    assert sandbox.stats.operations["GetItem"] - before == 2 and _body_fetched(app, "Note 150")


def test_it_says_why_when_an_opened_emails_body_cannot_be_fetched_and_fetches_it_next_time(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    _deliver_many(sandbox, 120)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    email_id = stored_id(app, "Note 110")
    sandbox.add_fault("http_500", operation="GetItem")
    reply = client.get(f"/emails/{email_id}")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Note 110" in page
    banner = re.search(r'id="body-problem">([^<]*)<', page).group(1)
    assert unescape(banner).startswith("This email’s text could not be fetched from Exchange: ")
    assert "This email has no text." not in page and not _body_fetched(app, "Note 110")
    assert 'id="body-problem"' not in client.get(f"/emails/{email_id}").get_data(as_text=True)
    assert "Text of note 110" in client.get(f"/emails/{email_id}/body").get_data(as_text=True)


def test_it_says_so_when_an_opened_email_is_gone_from_exchange(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    _deliver_many(sandbox, 120)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    inbox = sandbox.store.folder(ALICE, "inbox")
    sandbox.store.remove_item(next(i for i in inbox.items.values() if i.props["Subject"] == "Note 115"))
    page = client.get(f"/emails/{stored_id(app, 'Note 115')}").get_data(as_text=True)
    assert "This email is no longer in the mailbox in Exchange (deleted or moved)" in page
    sync(app, ALICE)
    assert stored_id(app, "Note 115") is None


def test_it_does_not_try_a_refused_password_to_fetch_a_body(app, sandbox):
    record(app, "Contacts", "C-1", "Lena Fischer", LENA)
    _deliver_many(sandbox, 120)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    with app.app_context():
        db.session.scalar(db.select(User).where(User.email == ALICE)).status = UserStatus.NEEDS_PASSWORD
        db.session.commit()
    before = sandbox.stats.http_requests
    page = unescape(client.get(f"/emails/{stored_id(app, 'Note 112')}").get_data(as_text=True))
    assert "Exchange refused your stored password: it can be fetched once you authorize again." in page
    assert sandbox.stats.http_requests == before


# -- sending from a record ---------------------------------------------------------------------------------------------
def test_it_prefills_the_compose_form_with_the_records_address(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    record(app, "Deals", "D-9", "Carol's deal", contact="C-9")
    client = signed_in(app, ALICE)
    modal = client.get("/crm/Contacts/C-9/emails/new", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'class="modal-backdrop"' in modal and f'value="{CAROL}"' in modal
    for field in ("compose-to", "compose-cc", "compose-subject", "compose-body"):
        assert f'<label for="{field}"' in modal
    page = client.get("/crm/Deals/D-9/emails/new").get_data(as_text=True)
    assert "<html" in page and f'value="{CAROL}"' in page  # a deal writes to its contact
    assert client.get("/crm/Nope/D-9/emails/new").status_code == 404


def test_it_sends_from_a_record_and_lists_the_email_once_now_and_after_the_next_sync(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    client = signed_in(app, ALICE)
    sync(app, ALICE)  # the folders are synced already: the sent copy arrives with the next sync
    token = csrf_token(client, "/crm/Contacts/C-9/emails")
    reply = client.post("/crm/Contacts/C-9/emails/new", headers={"HX-Request": "true", "X-CSRFToken": token}, data={
        "to": f"Carol Chen <{CAROL}>", "cc": "", "subject": "Our offer", "body": "Dear Carol,\nhere it is."})
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200, html
    assert 'id="email-sent"' in html and 'hx-swap-oob="true"' in html and subjects(html) == ["Our offer"]

    delivered = [i for i in sandbox.store.folder(CAROL, "inbox").items.values() if i.props["Subject"] == "Our offer"]
    assert len(delivered) == 1 and delivered[0].props["Body"].text == "Dear Carol,\nhere it is."
    assert delivered[0].props["From"].email == ALICE
    message_id = delivered[0].props["InternetMessageId"]
    with app.app_context():
        stored = db.session.scalars(db.select(Email).where(Email.subject == "Our offer")).all()
        assert [(e.direction, e.folder, e.internet_message_id) for e in stored] == [("sent", "sentitems", message_id)]
    page = client.get("/crm/Contacts/C-9/emails").get_data(as_text=True)
    assert subjects(page) == ["Our offer"] and '<span class="direction tag sent">Sent</span>' in page

    sync(app, ALICE)  # brings Exchange's copy from Sent Items
    assert listed(client, "Contacts", "C-9") == ["Our offer"]
    sync(app, ALICE)
    assert listed(client, "Contacts", "C-9") == ["Our offer"]


def test_it_turns_the_stored_sent_email_into_the_synced_copy_when_the_sync_reconciles(app, sandbox):
    """The sync's copy from Sent Items takes over the row of the email stored at sending: it keeps its id."""
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    client = signed_in(app, ALICE)
    sync(app, ALICE)
    assert post(client, "/crm/Contacts/C-9/emails/new", {"to": CAROL, "subject": "Reconciled", "body": "Hi"},
                token_from="/crm/Contacts/C-9/emails").status_code == 303
    before = stored_id(app, "Reconciled")
    sync(app, ALICE)
    with app.app_context():
        rows = db.session.scalars(db.select(Email).where(Email.subject == "Reconciled")).all()
        assert [r.id for r in rows] == [before]
        assert not rows[0].item_id.startswith(SENT_PLACEHOLDER_PREFIX) and rows[0].change_key
        assert rows[0].body_text == "Hi" and rows[0].direction == "sent"
    assert listed(client, "Contacts", "C-9") == ["Reconciled"]
    run_again = client.get(f"/emails/{before}")
    assert run_again.status_code == 200


def test_it_reconciles_a_sent_copy_without_our_message_id_by_subject_recipients_and_time(app, sandbox):
    put_sent(sandbox, ALICE, CAROL, "Sent without an id", when=datetime.now(UTC))
    signed_in(app, ALICE)
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == ALICE))
        placeholder = record_sent_email(user, subject="Sent without an id", body_text="text", to=[(CAROL, "")],
                                        cc=[], message_id=None)
        port = mailbox_for(user, settings.load())
        page = port.sync_page("sentitems", None)
        claimed = reconcile_sent_copy(user, "sentitems", page.changed)
        assert list(claimed.values()) == [placeholder]
        assert placeholder.item_id == page.changed[0].item_id and placeholder.change_key is None
        assert reconcile_sent_copy(user, "inbox", page.changed) == {}


def test_it_returns_field_errors_beside_the_fields_with_422(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    client = signed_in(app, ALICE)
    reply = post(client, "/crm/Contacts/C-9/emails/new",
                 {"to": "carol@contoso.com, not-an-address", "cc": "x@@y", "subject": "  ", "body": " "},
                 token_from="/crm/Contacts/C-9/emails")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422
    assert 'id="compose-to-error"' in html and "“not-an-address” is not an email address" in html
    for field in ("cc", "subject", "body"):
        assert f'id="compose-{field}-error"' in html
    assert 'aria-describedby="compose-to-error"' in html and 'value="carol@contoso.com, not-an-address"' in html
    empty_to = post(client, "/crm/Contacts/C-9/emails/new", {"to": "", "subject": "Hi", "body": "Hello"},
                    token_from="/crm/Contacts/C-9/emails", headers={"HX-Request": "true"})
    assert empty_to.status_code == 422 and "enter at least one email address" in empty_to.get_data(as_text=True)
    assert "<html" not in empty_to.get_data(as_text=True)
    assert sandbox.stats.operations["CreateItem"] == 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Email.id))) == 0


def test_it_says_in_words_when_exchange_fails_to_send(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    client = signed_in(app, ALICE)
    sandbox.add_fault("http_500", operation="CreateItem", mailbox=ALICE)
    reply = post(client, "/crm/Contacts/C-9/emails/new", {"to": CAROL, "subject": "Hi", "body": "Hello"},
                 token_from="/crm/Contacts/C-9/emails")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 503 and 'id="compose-problem"' in html and "Exchange" in html
    assert 'value="Hi"' in html and "Hello</textarea>" in html  # nothing typed is lost
    assert not sandbox.store.folder(CAROL, "inbox").items
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Email.id))) == 0


def test_it_does_not_try_a_password_exchange_refused(app, sandbox):
    record(app, "Contacts", "C-9", "Carol Chen", CAROL)
    client = signed_in(app, ALICE)
    sandbox.store.set_password(ALICE, "Changed-elsewhere-1")
    first = post(client, "/crm/Contacts/C-9/emails/new", {"to": CAROL, "subject": "Hi", "body": "Hello"},
                 token_from="/crm/Contacts/C-9/emails")
    assert first.status_code == 503 and "did not accept" in first.get_data(as_text=True)
    second = post(client, "/crm/Contacts/C-9/emails/new", {"to": CAROL, "subject": "Hi", "body": "Hello"},
                  token_from="/crm/Contacts/C-9/emails")
    assert second.status_code == 409 and "Update your password" in second.get_data(as_text=True)
    assert sandbox.store.users[ALICE].failed_logins == 1
