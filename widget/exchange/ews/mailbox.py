"""The mailbox port for mail: one SyncFolderItems page at a time, and message bodies in GetItem batches.

exchangelib's Folder.sync_items() saves its sync state only once its whole generator is consumed; the sync
engine needs each page's changes together with that page's state, to commit both in one transaction. So this
module drives exchangelib's SyncFolderItems service directly, page by page, asking only for the fields the
widget keeps (never the MIME content). A page's messages are read straight from the answer's XML into
MessageSummary values (see SummarySyncFolderItems): exchangelib building an object per field of each message was
about two thirds of a first sync's client time. Requests, auth, faults and the page's state stay exchangelib's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import requests
from exchangelib import Account, Body, EWSTimeZone, Message
from exchangelib import Mailbox as EwsMailbox
from exchangelib import errors as ews_errors
from exchangelib.fields import FieldPath
from exchangelib.folders import BaseFolder
from exchangelib.items import Item
from exchangelib.properties import DistinguishedFolderId
from exchangelib.util import TNS

from ..problems import ExchangeProblem, SyncStateInvalid
from ..values import MessageBody, MessageSummary, SyncPage
from .connection import explain
from .fast_parse import FastGetItem, FastSyncFolderItems

_EWS_UTC = EWSTimeZone("UTC")
PAGE_SIZE = 512  # Exchange's maximum for SyncFolderItems
BODY_BATCH = 100  # messages per GetItem when fetching bodies
SUMMARY_FIELDS = (
    "subject", "sender", "author", "to_recipients", "cc_recipients", "datetime_received", "datetime_sent",
    "is_read", "message_id", "has_attachments", "sensitivity",
)
# Folders that Exchange knows by name (DistinguishedFolderId) in every mailbox.
BODY_FIELDS = ("body", "attachments")
# Exchange shows items of these sensitivities to their owner only (and delegates with the right to see private items).
PRIVATE_SENSITIVITIES = frozenset({"Private", "Confidential"})
DISTINGUISHED = frozenset({"inbox", "sentitems", "drafts", "deleteditems", "junkemail"})
FolderRef = BaseFolder | DistinguishedFolderId


@contextmanager
def _exchange_errors() -> Iterator[None]:
    """What exchangelib raises leaves the port as an ExchangeProblem (or SyncStateInvalid), never raw."""
    try:
        yield
    except ews_errors.ErrorInvalidSyncStateData:
        raise SyncStateInvalid() from None
    except (ews_errors.EWSError, requests.RequestException, OSError) as error:
        raise explain(error) from error


def _address(mailbox: object | None) -> tuple[str, str]:
    if mailbox is None:
        return ("", "")
    return ((getattr(mailbox, "email_address", None) or "").lower(), getattr(mailbox, "name", None) or "")


def _plain(value: datetime | None) -> datetime | None:
    """An exchangelib EWSDateTime as a plain UTC datetime (the rest of the widget knows nothing of exchangelib)."""
    if value is None:
        return None
    utc = value.astimezone(_EWS_UTC)
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond, tzinfo=UTC)


def summary_from_item(item: Message) -> MessageSummary:
    """A message's summary from the exchangelib Message that exchangelib built from a sync page."""
    sender = item.sender or getattr(item, "author", None)
    return MessageSummary(
        item_id=item.id, change_key=item.changekey, subject=item.subject or "",
        sender=_address(sender), to=[_address(m) for m in item.to_recipients or []],
        cc=[_address(m) for m in item.cc_recipients or []], received_at=_plain(item.datetime_received),
        sent_at=_plain(item.datetime_sent), is_read=bool(item.is_read), internet_message_id=item.message_id,
        has_attachments=bool(item.has_attachments), is_private=item.sensitivity in PRIVATE_SENSITIVITIES,
    )


class _Unusual(Exception):
    """A message element that the XML reading leaves to exchangelib (whose conversion then decides)."""


_MESSAGE = f"{{{TNS}}}Message"
_ITEM_ID, _SUBJECT, _SENDER, _FROM = (f"{{{TNS}}}{n}" for n in ("ItemId", "Subject", "Sender", "From"))
_TO, _CC, _MAILBOX, _NAME, _EMAIL = (f"{{{TNS}}}{n}" for n in ("ToRecipients", "CcRecipients", "Mailbox", "Name",
                                                                "EmailAddress"))
_SENSITIVITY = f"{{{TNS}}}Sensitivity"
_RECEIVED, _SENT, _IS_READ, _MESSAGE_ID, _HAS_ATTACHMENTS = (
    f"{{{TNS}}}{n}" for n in ("DateTimeReceived", "DateTimeSent", "IsRead", "InternetMessageId", "HasAttachments"))
_UTC_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _text(elem: Any | None) -> str | None:
    """An element's text as exchangelib reads a field: None for a missing element or an empty one."""
    return None if elem is None else (elem.text or None)


def _mailbox_xml(elem: Any) -> tuple[str, str]:
    return ((_text(elem.find(_EMAIL)) or "").lower(), _text(elem.find(_NAME)) or "")


def _utc_xml(elem: Any | None) -> datetime | None:
    """A UTC time as exchangelib's EWSDateTime.from_string reads "YYYY-MM-DDTHH:MM:SSZ"; anything else is _Unusual."""
    text = _text(elem)
    if text is None:
        return None
    if not _UTC_TEXT.fullmatch(text):
        raise _Unusual()  # an offset, a naive time (the account's time zone), fractions: exchangelib's rules
    try:
        return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                        int(text[17:19]), tzinfo=UTC)
    except ValueError:
        raise _Unusual() from None


def _flag_xml(elem: Any | None) -> bool:
    text = _text(elem)
    return text is not None and text.lower() in ("true", "on")


def summary_from_xml(message: Any) -> MessageSummary:
    """A message's summary read from its <t:Message> element, equal to summary_from_item of exchangelib's Message.

    Raises _Unusual for what exchangelib reads differently from plain text (see _utc_xml; a Sender or From
    without its Mailbox, which exchangelib refuses).
    """
    children: dict[Any, Any] = {}
    for child in message:
        children.setdefault(child.tag, child)  # the first of a tag, as find() would
    boxes = []  # Sender's Mailbox, then From's: the sender falls back to the author
    for wrapper in (children.get(_SENDER), children.get(_FROM)):
        box = None if wrapper is None else wrapper.find(_MAILBOX)
        if wrapper is not None and box is None:
            raise _Unusual()
        boxes.append(box)
    sender = boxes[0] if boxes[0] is not None else boxes[1]
    item_id = children.get(_ITEM_ID)
    to, cc = children.get(_TO), children.get(_CC)
    return MessageSummary(
        item_id=None if item_id is None else item_id.get("Id") or None,
        change_key=None if item_id is None else item_id.get("ChangeKey") or None,
        subject=_text(children.get(_SUBJECT)) or "",
        sender=("", "") if sender is None else _mailbox_xml(sender),
        to=[] if to is None else [_mailbox_xml(m) for m in to.iterfind(_MAILBOX)],
        cc=[] if cc is None else [_mailbox_xml(m) for m in cc.iterfind(_MAILBOX)],
        received_at=_utc_xml(children.get(_RECEIVED)), sent_at=_utc_xml(children.get(_SENT)),
        is_read=_flag_xml(children.get(_IS_READ)), internet_message_id=_text(children.get(_MESSAGE_ID)),
        has_attachments=_flag_xml(children.get(_HAS_ATTACHMENTS)),
        is_private=_text(children.get(_SENSITIVITY)) in PRIVATE_SENSITIVITIES,
    )


class SummarySyncFolderItems(FastSyncFolderItems):
    """SyncFolderItems whose created or updated messages come out as MessageSummary values, read from the XML.

    Only exchangelib's per-change conversion (`_elem_to_obj`) is replaced, and only for <t:Message>: other item
    types, deletions, read-flag changes and unusual messages are converted by exchangelib as before. The hook is
    private to exchangelib (its minor version is pinned): tests/exchange/test_sync_summaries.py fails if it moves.
    """

    def _elem_to_obj(self, elem: Any) -> tuple[str, Any]:
        change_type = self.change_types_map[elem.tag]
        if change_type in (self.CREATE, self.UPDATE) and len(elem) and elem[0].tag == _MESSAGE:
            try:
                return change_type, summary_from_xml(elem[0])
            except _Unusual:
                change_type, item = super()._elem_to_obj(elem)
                return change_type, summary_from_item(item)
        return super()._elem_to_obj(elem)


class EwsMail:
    """The mail of one mailbox, reached through an exchangelib Account (the user's own credentials, or impersonated)."""

    def __init__(self, account: Account):
        self.account = account
        self.address = account.primary_smtp_address.lower()
        self.requests = 0
        self._fields = {FieldPath(field=Message.get_field_by_fieldname(name)) for name in SUMMARY_FIELDS}
        self._body_fields = {FieldPath(field=Message.get_field_by_fieldname(name)) for name in BODY_FIELDS}
        self._folders: dict[str, FolderRef] = {}

    def folder(self, name: str) -> FolderRef:
        """A folder by its distinguished name (inbox, sentitems, ...) or by its display name (looked up once)."""
        if name.lower() in DISTINGUISHED:
            # Addressed by name, as Exchange allows: no GetFolder first, so a sync with nothing new is ONE request.
            return DistinguishedFolderId(id=name.lower(),
                                         mailbox=EwsMailbox(email_address=self.account.primary_smtp_address))
        if name not in self._folders:
            with _exchange_errors():
                for folder in self.account.msg_folder_root.walk():
                    if folder.name and folder.name.lower() == name.lower():
                        self._folders[name] = folder
                        break
                else:
                    raise ExchangeProblem("no_folder", f"The mailbox {self.account.primary_smtp_address} has no "
                                                       f"folder named “{name}”. Ask your administrator to check the "
                                                       "sync folders.")
        return self._folders[name]

    def sync_page(self, folder: str, sync_state: str | None, max_changes: int = PAGE_SIZE) -> SyncPage:
        """The next page of a folder's changes since `sync_state` (None: from the start)."""
        with _exchange_errors():
            return self._sync_page(self.folder(folder), sync_state, max_changes)

    def _sync_page(self, folder: FolderRef, sync_state: str | None, max_changes: int) -> SyncPage:
        service = SummarySyncFolderItems(account=self.account)
        page = SyncPage()
        self.requests += 1
        for kind, value in service.call(folder=folder, shape="IdOnly", additional_fields=self._fields,
                                        sync_state=sync_state, ignore=None, max_changes_returned=max_changes,
                                        sync_scope=None):
            if kind in (service.CREATE, service.UPDATE):
                if isinstance(value, MessageSummary):  # other item types (meetings, posts...) are not mail
                    page.changed.append(value)
            elif kind == service.DELETE:
                page.deleted.append(value.id)
            elif kind == service.READ_FLAG_CHANGE:
                item_id, is_read = value
                page.read_flags.append((item_id.id, is_read))
        page.sync_state = service.sync_state
        page.done = bool(service.includes_last_item_in_range)
        return page

    def bodies(self, item_ids: Iterable[str]) -> Iterator[tuple[str, MessageBody | None]]:
        """Bodies and attachment names of messages, in GetItem batches; None for a message gone meanwhile."""
        with _exchange_errors():
            yield from self._bodies(list(item_ids))

    def _bodies(self, ids: list[str]) -> Iterator[tuple[str, MessageBody | None]]:
        for start in range(0, len(ids), BODY_BATCH):
            batch = ids[start:start + BODY_BATCH]
            self.requests += 1
            # The GetItem service itself: Account.fetch() first asks for the root folder (one more GetFolder per
            # sync) only to validate the field names.
            fetched = FastGetItem(account=self.account, chunk_size=BODY_BATCH).call(
                items=[(item_id, None) for item_id in batch], additional_fields=self._body_fields, shape="IdOnly")
            for item_id, item in zip(batch, fetched, strict=True):
                if not isinstance(item, Item):
                    yield item_id, None
                    continue
                body = item.body
                is_html = body is not None and type(body).__name__ == "HTMLBody"
                attachments = [(a.name or "attachment", int(a.size or 0)) for a in item.attachments or []]
                yield item_id, MessageBody(html=str(body) if is_html else None,
                                           text=None if is_html or body is None else str(body),
                                           attachments=attachments)

    def messages_with(self, folder: str, address: str, since: datetime) -> list[MessageSummary]:
        """The folder's messages received since `since` that `address` is on: ONE FindItem with a query string for
        the address (Exchange's search matches senders and recipients), then their summaries in GetItem batches."""
        with _exchange_errors():
            found = self._distinguished_folder(folder).filter(f'"{address}"').only("datetime_received")
            self.requests += 1
            ids = [item.id for item in found if isinstance(item, Message) and item.datetime_received
                   and _plain(item.datetime_received) >= since]
            summaries = []
            for start in range(0, len(ids), BODY_BATCH):
                batch = ids[start:start + BODY_BATCH]
                self.requests += 1
                fetched = FastGetItem(account=self.account, chunk_size=BODY_BATCH).call(
                    items=[(item_id, None) for item_id in batch], additional_fields=self._fields, shape="IdOnly")
                summaries += [summary_from_item(item) for item in fetched if isinstance(item, Message)]
        return [s for s in summaries if address in s.addresses()]

    def _distinguished_folder(self, name: str) -> BaseFolder:
        """A folder object (a search needs one): the distinguished ones through the account, others by name."""
        known = {"inbox": "inbox", "sentitems": "sent", "drafts": "drafts", "deleteditems": "trash",
                 "junkemail": "junk"}
        if name.lower() in known:
            return getattr(self.account, known[name.lower()])
        folder = self.folder(name)
        return folder  # type: ignore[return-value]

    def send(self, subject: str, text: str, to: list[tuple[str, str]], cc: list[tuple[str, str]],
             message_id: str | None) -> str | None:
        """Send a message and keep a copy in Sent Items; returns the Internet Message-ID it went out with.

        Some Exchange versions refuse a client's Message-ID: nothing is sent then, so it is sent again without
        one (None is returned, and the sync reconciles the copy by subject, recipients and time).
        """

        def message(with_id: str | None) -> Message:
            return Message(
                account=self.account, folder=self.account.sent, subject=subject, body=Body(text),
                message_id=with_id,
                to_recipients=[EwsMailbox(email_address=a, name=n or None) for a, n in to],
                cc_recipients=[EwsMailbox(email_address=a, name=n or None) for a, n in cc] or None,
            )

        with _exchange_errors():
            self.requests += 1
            try:
                message(message_id).send_and_save()
            except ews_errors.ErrorInvalidPropertySet:
                self.requests += 1
                message(None).send_and_save()
                return None
        return message_id
