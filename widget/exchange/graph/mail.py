"""The mailbox port for mail over Microsoft Graph: one messages/delta page at a time, bodies in $batch, sendMail.

A folder's sync state is the whole link Graph gave last: a nextLink while a round is under way, the deltaLink once
it is complete (the next sync starts from it). The first request names only what the widget keeps ($select) and
the page size (Prefer: odata.maxpagesize); Graph encodes both into its links. A link Graph no longer knows (410 Gone,
syncStateNotFound) is SyncStateInvalid, and the sync room makes a full pass that deletes nothing until it is
complete. Graph may replay an entry; the sync room's upsert on (account, id) makes that harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..problems import ExchangeProblem
from ..values import MessageBody, MessageSummary, SyncPage
from .client import GraphClient

PAGE_SIZE = 500  # messages per delta page (Prefer: odata.maxpagesize)
BATCH = 20  # requests per $batch, Graph's maximum
BODY_BATCH = BATCH // 2  # messages per $batch when fetching bodies: their body and their attachment list
SUMMARY_SELECT = ("id,changeKey,subject,from,sender,toRecipients,ccRecipients,receivedDateTime,sentDateTime,isRead,"
                  "internetMessageId,hasAttachments")
WELL_KNOWN = frozenset({"inbox", "sentitems", "drafts", "deleteditems", "junkemail", "archive"})
# Meeting requests, responses and cancellations: not mail to the widget (as over EWS).
_NOT_MAIL = frozenset({"#microsoft.graph.eventMessage", "#microsoft.graph.eventMessageRequest",
                       "#microsoft.graph.eventMessageResponse"})


def parse_time(text: Any) -> datetime | None:
    """A Graph time ("2026-01-02T03:04:05Z", or a dateTime with seven decimals and no offset, which is UTC) as an
    aware UTC datetime."""
    if not isinstance(text, str) or not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    head, _, rest = value.partition(".")
    if rest:  # fractions beyond microseconds: fromisoformat takes at most six digits
        digits = "".join(ch for ch in rest if ch.isdigit())
        offset = rest[len(digits):]
        value = f"{head}.{digits[:6]}{offset}"
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _address(recipient: Any) -> tuple[str, str]:
    box = recipient.get("emailAddress") if isinstance(recipient, dict) else None
    if not isinstance(box, dict):
        return ("", "")
    return (str(box.get("address") or "").lower(), str(box.get("name") or ""))


def summary(message: dict[str, Any]) -> MessageSummary:
    """A message's summary from a Graph message (the sender falls back to From, as over EWS)."""
    return MessageSummary(
        item_id=message["id"], change_key=str(message.get("changeKey") or message.get("@odata.etag") or ""),
        subject=message.get("subject") or "", sender=_address(message.get("sender") or message.get("from")),
        to=[_address(r) for r in message.get("toRecipients") or []],
        cc=[_address(r) for r in message.get("ccRecipients") or []],
        received_at=parse_time(message.get("receivedDateTime")), sent_at=parse_time(message.get("sentDateTime")),
        is_read=bool(message.get("isRead")), internet_message_id=message.get("internetMessageId"),
        has_attachments=bool(message.get("hasAttachments")),
    )


def batch(client: GraphClient, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Send up to BATCH requests in one $batch; their answers by id ({"status", "body"})."""
    answer = client.send("POST", f"{client.config.base_url}/$batch", json={"requests": requests}, whole=True).json()
    return {str(entry.get("id")): entry for entry in answer.get("responses") or []}


def in_batch(client: GraphClient, path: str) -> str:
    """A URL below the mailbox as a $batch step names it (relative to Graph's base URL)."""
    return client.user_url.removeprefix(client.config.base_url) + "/" + path


class GraphMail:
    """The mail of one mailbox over Graph."""

    client: GraphClient

    def _folder_path(self, name: str) -> str:
        """A folder's path: well-known folders by name (no lookup, so a sync with nothing new is ONE request), others
        by display name (looked up once per port)."""
        if name.lower() in WELL_KNOWN:
            return f"mailFolders/{name.lower()}"
        folders = getattr(self, "_folder_ids", None)
        if folders is None:
            folders = self._folder_ids = {}
        if name not in folders:
            found = self.client.get("mailFolders", params={"$top": "250", "$select": "id,displayName"})
            for folder in found.get("value") or []:
                if str(folder.get("displayName") or "").lower() == name.lower():
                    folders[name] = folder["id"]
                    break
            else:
                raise ExchangeProblem("no_folder", f"The mailbox {self.client.mailbox} has no folder named “{name}”. "
                                                   "Ask your administrator to check the sync folders.")
        return f"mailFolders/{quote(folders[name], safe='')}"

    def sync_page(self, folder: str, sync_state: str | None) -> SyncPage:
        """The next page of a folder's changes since `sync_state` (None: from the start): ONE delta request."""
        prefer = f"odata.maxpagesize={PAGE_SIZE}"
        if sync_state:
            data = self.client.send("GET", sync_state, whole=True, prefer=prefer).json()
        else:
            data = self.client.send("GET", f"{self._folder_path(folder)}/messages/delta",
                                    params={"$select": SUMMARY_SELECT}, prefer=prefer).json()
        page = SyncPage()
        for entry in data.get("value") or []:
            if "@removed" in entry:
                page.deleted.append(entry["id"])
            elif entry.get("@odata.type") not in _NOT_MAIL:
                page.changed.append(summary(entry))
        return _finish(page, data)

    def bodies(self, item_ids: Iterable[str]) -> Iterator[tuple[str, MessageBody | None]]:
        """Bodies and attachment names of messages, BODY_BATCH messages per $batch; None for a message gone."""
        ids = list(item_ids)
        for first in range(0, len(ids), BODY_BATCH):
            chunk = ids[first:first + BODY_BATCH]
            steps = []
            for n, item_id in enumerate(chunk):
                quoted = quote(item_id, safe="")
                steps.append({"id": f"b{n}", "method": "GET", "headers": {"Prefer": 'IdType="ImmutableId"'},
                              "url": in_batch(self.client, f"messages/{quoted}?$select=body,hasAttachments")})
                steps.append({"id": f"a{n}", "method": "GET", "headers": {"Prefer": 'IdType="ImmutableId"'},
                              "url": in_batch(self.client, f"messages/{quoted}/attachments?$select=name,size")})
            answers = batch(self.client, steps)
            for n, item_id in enumerate(chunk):
                yield item_id, _body(answers.get(f"b{n}"), answers.get(f"a{n}"))

    def messages_with(self, folder: str, address: str, since: datetime) -> list[MessageSummary]:
        """The folder's messages received since `since` that `address` is on: the folder's messages of that period
        (a filter on receivedDateTime, pages of PAGE_SIZE), kept when the address is on them."""
        address = address.lower()
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = self.client.get(f"{self._folder_path(folder)}/messages", params={
            "$filter": f"receivedDateTime ge {stamp}", "$select": SUMMARY_SELECT, "$top": str(PAGE_SIZE)})
        found = []
        while True:
            found += [summary(m) for m in data.get("value") or [] if m.get("@odata.type") not in _NOT_MAIL]
            link = data.get("@odata.nextLink")
            if not link:
                break
            data = self.client.send("GET", link, whole=True).json()
        return [s for s in found if address in s.addresses()]

    def send(self, subject: str, text: str, to: list[tuple[str, str]], cc: list[tuple[str, str]],
             message_id: str | None) -> str | None:
        """Send a message with sendMail, keeping a copy in Sent Items; the Internet Message-ID it went out with.

        Graph takes a client's internetMessageId where the mailbox allows it; where it is refused (400), the message
        is sent again without one and None is returned (the sync reconciles the copy by subject, recipients, time).
        """

        def message(with_id: str | None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "subject": subject, "body": {"contentType": "text", "content": text},
                "toRecipients": [_recipient(a, n) for a, n in to], "ccRecipients": [_recipient(a, n) for a, n in cc],
            }
            if with_id:
                data["internetMessageId"] = with_id
            return {"message": data, "saveToSentItems": True}

        if message_id:
            try:
                self.client.send("POST", "sendMail", json=message(message_id))
                return message_id
            except ExchangeProblem as problem:
                if problem.kind != "server":
                    raise
        self.client.send("POST", "sendMail", json=message(None))
        return None


def _recipient(address: str, name: str) -> dict[str, Any]:
    box = {"address": address}
    if name:
        box["name"] = name
    return {"emailAddress": box}


def _finish(page: Any, data: dict[str, Any]) -> Any:
    """A delta page's state: its nextLink (more to come) or its deltaLink (the round is complete)."""
    if data.get("@odata.nextLink"):
        page.sync_state, page.done = data["@odata.nextLink"], False
    elif data.get("@odata.deltaLink"):
        page.sync_state, page.done = data["@odata.deltaLink"], True
    else:
        raise ExchangeProblem("server", "Exchange Online answered a delta page without a link to go on with.")
    return page


def _body(body: dict[str, Any] | None, attachments: dict[str, Any] | None) -> MessageBody | None:
    if body is None or body.get("status") == 404:
        return None
    if int(body.get("status") or 0) >= 400:
        raise ExchangeProblem("throttled" if body.get("status") == 429 else "server",
                              "Exchange Online could not give a message's body right now. Try again later.")
    content = (body.get("body") or {}).get("body") or {}
    is_html = str(content.get("contentType") or "").lower() == "html"
    text = content.get("content")
    names = []
    if attachments is not None and int(attachments.get("status") or 0) < 400:
        names = [(str(a.get("name") or "attachment"), int(a.get("size") or 0))
                 for a in (attachments.get("body") or {}).get("value") or []]
    return MessageBody(html=text if is_html else None, text=None if is_html else text, attachments=names)
