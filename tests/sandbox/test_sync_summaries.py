"""The mail port's sync pages read straight from the XML (widget/exchange/mailbox.py, SummarySyncFolderItems) give
exactly the SyncPage that exchangelib's own Message objects gave, on varied mail, its changes, and odd answers."""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import Account, Message
from exchangelib.util import TNS, to_xml

from widget.exchange.ews.fast_parse import FastSyncFolderItems
from widget.exchange.ews.mailbox import (
    PAGE_SIZE,
    EwsMail,
    MessageSummary,
    SummarySyncFolderItems,
    SyncPage,
    summary_from_item,
)
from widget.sandbox import Store
from widget.sandbox.delivery import message_defaults
from widget.sandbox.items import Attachment, Body, Mailbox

ALICE = "alice@contoso.com"
SENDERS = [Mailbox("Sender0@Customer.Example", "Sender Zero"), Mailbox("zoe@example.org", "Zoë Ångström"),
           Mailbox("ops@partner.example", "")]


def _page_from_exchangelib_objects(port: EwsMail, state: str | None) -> SyncPage:
    """The page as the port built it before: exchangelib's Message objects, then summary_from_item."""
    service = FastSyncFolderItems(account=port.account)
    page = SyncPage()
    for kind, value in service.call(folder=port.folder("inbox"), shape="IdOnly", additional_fields=port._fields,
                                    sync_state=state, ignore=None, max_changes_returned=PAGE_SIZE, sync_scope=None):
        if kind in (service.CREATE, service.UPDATE):
            if isinstance(value, Message):
                page.changed.append(summary_from_item(value))
        elif kind == service.DELETE:
            page.deleted.append(value.id)
        elif kind == service.READ_FLAG_CHANGE:
            page.read_flags.append((value[0].id, value[1]))
    page.sync_state = service.sync_state
    page.done = bool(service.includes_last_item_in_range)
    return page


def _fill_varied_inbox(store: Store, count: int) -> list:
    """Messages with varied senders (some only From, some neither), To/Cc, read flags, attachments, Message-IDs."""
    inbox = store.folder(ALICE, "inbox")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    items = []
    for number in range(count):
        when = start + timedelta(minutes=number, seconds=number % 60)
        props = {
            "Subject": "" if number % 50 == 0 else f"Message {number} ünïcode",
            "ToRecipients": [Mailbox("Alice@Contoso.com", "Alice Wilson"),
                             *[Mailbox(f"to{k}@Customer.Example", f"To {k}") for k in range(number % 3)]],
            "CcRecipients": [Mailbox(f"CC{k}@partner.example") for k in range(number % 4 // 2 * 2)],
            "Body": Body("Text", f"Body of message {number}"),
            "IsRead": number % 3 == 0,
        }
        if number % 5 == 0:
            props["Attachments"] = [Attachment(f"att{number}", "offer.pdf", "application/pdf", 1234)]
        message_defaults(props, SENDERS[number % len(SENDERS)], when)
        if number % 11 == 0:
            props.pop("Sender")  # the summary's sender falls back to From
        if number % 97 == 1:
            props.pop("Sender", None), props.pop("From")
        if number % 7 == 0:
            del props["InternetMessageId"]
        items.append(store.add_item(inbox, "Message", props, when=when))
    store.add_item(inbox, "MeetingRequest", {"Subject": "Not mail the widget keeps", "IsRead": False}, when=start)
    return items


def test_it_reads_every_sync_page_and_its_changes_exactly_as_exchangelib_objects_did(sandbox, account):
    items = _fill_varied_inbox(sandbox.store, 600)
    port = EwsMail(account(ALICE))

    pages, state = [], None
    for _ in range(2):
        page = port.sync_page("inbox", state)
        assert page == _page_from_exchangelib_objects(port, state)
        pages.append(page)
        state = page.sync_state
    assert [len(p.changed) for p in pages] == [512, 88] and [p.done for p in pages] == [False, True]

    changed = [summary for page in pages for summary in page.changed]
    assert {s.sender for s in changed} >= {("sender0@customer.example", "Sender Zero"), ("", ""),
                                           ("zoe@example.org", "Zoë Ångström")}
    assert any(s.cc for s in changed) and any(len(s.to) == 3 for s in changed)
    assert {s.is_read for s in changed} == {s.has_attachments for s in changed} == {True, False}
    assert any(s.internet_message_id is None for s in changed) and any(s.subject == "" for s in changed)
    assert all(s.received_at.tzinfo is UTC for s in changed)

    updated, deleted, read = items[10], items[20], items[31]
    updated.props["Subject"] = "Updated subject"
    sandbox.store.touch(updated)
    sandbox.store.remove_item(deleted)
    read.props["IsRead"] = True
    sandbox.store.touch(read, read_flag_only=True)

    changes = port.sync_page("inbox", state)
    assert changes == _page_from_exchangelib_objects(port, state)
    assert [(s.item_id, s.subject) for s in changes.changed] == [(updated.id, "Updated subject")]
    assert changes.deleted == [deleted.id] and changes.read_flags == [(read.id, True)] and changes.done


ODD_MESSAGES = {
    "offset-and-naive-times": "<t:DateTimeReceived>2026-01-05T10:00:00+02:00</t:DateTimeReceived>"
                              "<t:DateTimeSent>2026-01-05T07:59:00</t:DateTimeSent>",
    "fractional-and-impossible-times": "<t:DateTimeReceived>2026-01-05T10:00:00.5Z</t:DateTimeReceived>"
                                       "<t:DateTimeSent>2026-02-30T10:00:00Z</t:DateTimeSent>",
    "empty-values": "<t:Subject/><t:Sender><t:Mailbox><t:Name/><t:EmailAddress/></t:Mailbox></t:Sender>"
                    "<t:ToRecipients/><t:IsRead>on</t:IsRead><t:InternetMessageId/><t:HasAttachments>maybe"
                    "</t:HasAttachments>",
    "sender-without-address": "<t:From><t:Mailbox><t:Name>Only A Name</t:Name></t:Mailbox></t:From>",
}


@pytest.mark.parametrize("fields", ODD_MESSAGES.values(), ids=list(ODD_MESSAGES))
def test_it_reads_odd_message_values_as_exchangelib_does(sandbox, account, fields):
    alice: Account = account(ALICE)
    create = to_xml(f'<t:Create xmlns:t="{TNS}"><t:Message><t:ItemId Id="AAMkodd" ChangeKey="CQAAAB"/>{fields}'
                    '</t:Message></t:Create>'.encode()).getroot()
    exchangelib_item = Message.from_xml(elem=deepcopy(create[0]), account=alice)  # from_xml unhooks its element

    kind, summary = SummarySyncFolderItems(account=alice)._elem_to_obj(create)

    assert kind == "create" and isinstance(summary, MessageSummary)
    assert summary == summary_from_item(exchangelib_item)


def test_it_refuses_a_sender_without_its_mailbox_as_exchangelib_does(sandbox, account):
    create = to_xml(f'<t:Create xmlns:t="{TNS}"><t:Message><t:ItemId Id="AAMkodd" ChangeKey="CQAAAB"/>'
                    '<t:Sender><t:Name>No mailbox</t:Name></t:Sender></t:Message></t:Create>'.encode()).getroot()
    with pytest.raises(ValueError, match="Mailbox") as stock:
        Message.from_xml(elem=deepcopy(create[0]), account=account(ALICE))
    with pytest.raises(ValueError, match="Mailbox") as read:
        SummarySyncFolderItems(account=account(ALICE))._elem_to_obj(create)
    assert str(read.value) == str(stock.value)
