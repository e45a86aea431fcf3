"""Graph's mail resources on the store: mailFolders, messages, their delta, attachments, sending and replies."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_datetime
from email.utils import formataddr
from typing import Any

from .. import delivery
from ..items import Attachment, Body, Item, Mailbox, new_id
from ..store import Folder
from .context import MESSAGE_ELEMENTS, GraphReply, GraphRequest, collection, pick, require, shared_props, writable_props
from .convert import (
    GraphError,
    bad_request,
    body_json,
    format_datetime,
    graph_id,
    not_found,
    parse_datetime,
    parse_recipient,
    parse_recipients,
    recipient,
)
from .delta import log_delta

# Attachment contents live beside the item's EWS properties, under a name EWS never renders.
ATTACHMENT_CONTENT = "_AttachmentContent"
MESSAGE_TYPE_BY_ELEMENT = {"MeetingRequest": "meetingRequest", "MeetingCancellation": "meetingCancelled"}
# An attendee's response to a meeting (a MeetingResponse), by its ResponseType.
RESPONSE_MESSAGE_TYPES = {"Accept": "meetingAccepted", "Tentative": "meetingTenativelyAccepted",
                          "Decline": "meetingDeclined"}
RECIPIENT_LISTS = {"toRecipients": "ToRecipients", "ccRecipients": "CcRecipients", "bccRecipients": "BccRecipients",
                   "replyTo": "ReplyTo"}
MAIL_FOLDER_ROOT = "msgfolderroot"


# -- rendering --------------------------------------------------------------------------------------------------
def folder_json(req: GraphRequest, folder: Folder) -> dict[str, Any]:
    """A mailFolder."""
    store = req.store
    parent = store.folders.get(folder.parent_id or "")
    return {
        "id": graph_id(folder.id),
        "displayName": folder.display_name,
        "parentFolderId": graph_id(parent.id) if parent else None,
        "childFolderCount": len(store.child_folders(folder)),
        "unreadItemCount": sum(1 for item in folder.items.values() if item.props.get("IsRead") is False),
        "totalItemCount": len(folder.items),
        "isHidden": False,
    }


def message_json(req: GraphRequest, item: Item, select: set[str] | None = None) -> dict[str, Any]:
    """A message (an eventMessage for meeting requests and cancellations), limited to `select`."""
    props = item.props
    data: dict[str, Any] = {}
    meeting_message_type = (RESPONSE_MESSAGE_TYPES.get(str(props.get("ResponseType")), "none")
                            if item.element == "MeetingResponse" else MESSAGE_TYPE_BY_ELEMENT.get(item.element))
    if meeting_message_type is not None:
        data["@odata.type"] = "#microsoft.graph.eventMessage"
    data.update({
        "@odata.etag": f'W/"{item.change_key}"',
        "id": req.item_id(item),
        "createdDateTime": format_datetime(item.created),
        "lastModifiedDateTime": format_datetime(item.modified),
        "changeKey": item.change_key,
        "categories": list(props.get("Categories") or []),
        "receivedDateTime": format_datetime(props.get("DateTimeReceived") or item.created),
        "sentDateTime": format_datetime(props.get("DateTimeSent") or item.created),
        "hasAttachments": bool(props.get("Attachments")),
        "internetMessageId": props.get("InternetMessageId"),
        "subject": props.get("Subject") or "",
        "bodyPreview": item.value("Preview") or "",
        "importance": str(props.get("Importance") or "Normal").lower(),
        "parentFolderId": graph_id(item.folder_id),
        "conversationId": props.get("ConversationId"),
        "isDeliveryReceiptRequested": bool(props.get("IsDeliveryReceiptRequested")),
        "isReadReceiptRequested": bool(props.get("IsReadReceiptRequested")),
        "isRead": bool(props.get("IsRead", False)),
        "isDraft": bool(props.get("IsDraft", False)),
        "inferenceClassification": props.get(INFERENCE, "focused"),
        "body": body_json(props.get("Body")),
        "sender": recipient(props.get("Sender") or props.get("From")),
        "from": recipient(props.get("From")),
        "toRecipients": [recipient(box) for box in props.get("ToRecipients") or []],
        "ccRecipients": [recipient(box) for box in props.get("CcRecipients") or []],
        "bccRecipients": [recipient(box) for box in props.get("BccRecipients") or []],
        "replyTo": [recipient(box) for box in props.get("ReplyTo") or []],
        "flag": {"flagStatus": props.get(FLAG_STATUS, "notFlagged")},
    })
    if meeting_message_type is not None:
        data["meetingMessageType"] = meeting_message_type
    return pick(data, select)


# -- parsing ----------------------------------------------------------------------------------------------------
MESSAGE_WRITABLE = {"subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "importance",
                    "isRead", "categories", "from", "sender", "attachments", "flag", "isDeliveryReceiptRequested",
                    "isReadReceiptRequested", "inferenceClassification"}
# Graph-only state kept beside the item's EWS properties, under names EWS never renders.
FLAG_STATUS, INFERENCE = "_FlagStatus", "_InferenceClassification"
FLAG_STATUSES = ("notFlagged", "complete", "flagged")


def message_props(data: dict[str, Any]) -> dict[str, Any]:
    """The store's properties for a message a client writes (POST or PATCH)."""
    data = writable_props(data, MESSAGE_WRITABLE, "message")
    props = shared_props(data)
    for name, field in RECIPIENT_LISTS.items():
        if name in data:
            props[field] = parse_recipients(data[name], name)
    if "isRead" in data:
        props["IsRead"] = require(data["isRead"], "isRead", bool)
    for name, field in (("from", "From"), ("sender", "Sender")):
        if name in data:
            props[field] = parse_recipient(data[name], name)
    for name, field in (("isDeliveryReceiptRequested", "IsDeliveryReceiptRequested"),
                        ("isReadReceiptRequested", "IsReadReceiptRequested")):
        if name in data:
            props[field] = require(data[name], name, bool)
    if "flag" in data:
        status = require(data["flag"], "flag", dict).get("flagStatus", "notFlagged")
        if status not in FLAG_STATUSES:
            raise bad_request(f"'flag.flagStatus' must be one of: {', '.join(FLAG_STATUSES)}.")
        props[FLAG_STATUS] = status
    if "inferenceClassification" in data:
        if data["inferenceClassification"] not in ("focused", "other"):
            raise bad_request("'inferenceClassification' must be focused or other.")
        props[INFERENCE] = data["inferenceClassification"]
    if "attachments" in data:
        props.update(_attachments(require(data["attachments"], "attachments", list)))
    return props


def _attachments(entries: list[Any]) -> dict[str, Any]:
    attachments, contents = [], {}
    for entry in entries:
        attachment, content = parse_file_attachment(entry)
        attachments.append(attachment)
        contents[attachment.attachment_id] = content
    return {"Attachments": attachments, ATTACHMENT_CONTENT: contents}


def parse_file_attachment(entry: Any) -> tuple[Attachment, bytes]:
    """A fileAttachment from a client: its description and its bytes."""
    if not isinstance(entry, dict) or entry.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise bad_request("An attachment must be a #microsoft.graph.fileAttachment with 'name' and 'contentBytes'.")
    name, content = entry.get("name"), entry.get("contentBytes")
    if not isinstance(name, str) or not name.strip() or not isinstance(content, str):
        raise bad_request("A fileAttachment needs a 'name' and base64 'contentBytes'.")
    try:
        raw = base64.b64decode(content, validate=True)
    except ValueError:
        raise bad_request("'contentBytes' is not valid base64.") from None
    content_type = entry.get("contentType") or "application/octet-stream"
    if not isinstance(content_type, str):
        raise bad_request("'contentType' must be a string.")
    return Attachment(new_id(b"\x03"), name.strip(), content_type, len(raw)), raw


def attachment_json(item: Item, attachment: Attachment, with_content: bool = True) -> dict[str, Any]:
    """A fileAttachment."""
    data: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": graph_id(attachment.attachment_id),
        "lastModifiedDateTime": format_datetime(item.modified),
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "isInline": False,
    }
    if with_content:
        content = (item.props.get(ATTACHMENT_CONTENT) or {}).get(attachment.attachment_id, b"")
        data["contentBytes"] = base64.b64encode(content).decode()
    return data


# -- folders ----------------------------------------------------------------------------------------------------
def list_folders(req: GraphRequest, parent: Folder | None = None) -> GraphReply:
    """GET mailFolders (below the top of the information store) or mailFolders/{id}/childFolders."""
    store = req.store
    parent = parent or store.folder(req.mailbox, MAIL_FOLDER_ROOT)
    folders = [f for f in store.child_folders(parent) if f.folder_class in (None, "IPF.Note")]
    return collection(req, folders, lambda f: folder_json(req, f), "mailFolder",
                      f"users('{req.mailbox}')/mailFolders")


def get_folder(req: GraphRequest, name: str) -> GraphReply:
    """GET mailFolders/{id or well-known name}."""
    return GraphReply(200, {"@odata.context": req.context_url(f"users('{req.mailbox}')/mailFolders/$entity"),
                            **folder_json(req, req.folder(name))}, "mailFolder")


def create_child_folder(req: GraphRequest, name: str) -> GraphReply:
    """POST mailFolders/{id}/childFolders: a new folder."""
    data = req.json()
    display = data.get("displayName")
    if not isinstance(display, str) or not display.strip():
        raise bad_request("'displayName' is required.", "ErrorInvalidProperty")
    parent = req.folder(name)
    if any(f.display_name.lower() == display.strip().lower() for f in req.store.child_folders(parent)):
        raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
    folder = req.store.add_folder(parent, display.strip())
    return GraphReply(201, folder_json(req, folder), "mailFolder")


# -- listing messages --------------------------------------------------------------------------------------------
_FILTER_TERM = re.compile(
    r"^\s*(?P<field>[A-Za-z/]+)\s+(?P<op>eq|ne|ge|gt|le|lt)\s+(?P<value>'(?:[^']|'')*'|true|false|[0-9TZ:.+\-]+)\s*$")
_FILTER_FIELDS = {"receivedDateTime": "DateTimeReceived", "sentDateTime": "DateTimeSent", "isRead": "IsRead",
                  "hasAttachments": "HasAttachments", "subject": "Subject", "from/emailAddress/address": "From",
                  "importance": "Importance", "isDraft": "IsDraft"}


def message_filter(text: str | None) -> Any:
    """A predicate on items for a $filter of the documented forms (terms joined by 'and'); 400 for anything else."""
    if not text:
        return None
    terms = []
    for part in re.split(r"\s+and\s+", text.strip()):
        match = _FILTER_TERM.match(part)
        if not match or match.group("field") not in _FILTER_FIELDS:
            raise bad_request(f"Invalid filter clause: '{part}'.", "ErrorInvalidUrlQueryFilter")
        terms.append(_term(match.group("field"), match.group("op"), match.group("value")))
    return lambda item: all(term(item) for term in terms)


def _term(field: str, op: str, raw: str) -> Any:
    name = _FILTER_FIELDS[field]
    if raw in ("true", "false"):
        wanted: Any = raw == "true"
    elif raw.startswith("'"):
        wanted = raw[1:-1].replace("''", "'").lower()
    else:
        wanted = parse_datetime(raw, field)

    def value_of(item: Item) -> Any:
        value = item.value(name)
        if name == "From":
            return value.email if value else ""
        if isinstance(value, str):
            return value.lower()
        if isinstance(wanted, bool):
            return bool(value)
        return value

    def test(item: Item) -> bool:
        value = value_of(item)
        if value is None:
            return False
        try:
            return {"eq": value == wanted, "ne": value != wanted, "ge": value >= wanted, "gt": value > wanted,
                    "le": value <= wanted, "lt": value < wanted}[op]
        except TypeError:
            raise bad_request(f"The filter compares '{field}' with a value of another type.",
                              "ErrorInvalidUrlQueryFilter") from None

    return test


def _ordered(req: GraphRequest, items: list[Item]) -> list[Item]:
    order = (req.query.get("$orderby") or "receivedDateTime desc").strip()
    match = re.fullmatch(r"(receivedDateTime|sentDateTime|subject)(?:\s+(asc|desc))?", order)
    if not match:
        raise bad_request(f"The $orderby '{order}' is not supported.", "ErrorInvalidUrlQuery")
    name = {"receivedDateTime": "DateTimeReceived", "sentDateTime": "DateTimeSent", "subject": "Subject"}[
        match.group(1)]
    fallback: Any = "" if name == "Subject" else datetime.min.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: item.props.get(name) or fallback, reverse=match.group(2) == "desc")


def list_messages(req: GraphRequest, folder: Folder | None) -> GraphReply:
    """GET mailFolders/{f}/messages or messages: $select, $top, $skip, $filter, $orderby."""
    store = req.store
    if folder is not None:
        items = [item for item in folder.items.values() if item.element in MESSAGE_ELEMENTS]
    else:
        items = [item for f in store.folders.values() if f.mailbox == req.mailbox and f.folder_class == "IPF.Note"
                 for item in f.items.values() if item.element in MESSAGE_ELEMENTS]
    keep = message_filter(req.query.get("$filter"))
    if keep is not None:
        items = [item for item in items if keep(item)]
    select = req.select()
    return collection(req, _ordered(req, items), lambda item: message_json(req, item, select), "message",
                      f"users('{req.mailbox}')/messages")


# -- delta --------------------------------------------------------------------------------------------------------
def messages_delta(req: GraphRequest, name: str) -> GraphReply:
    """GET mailFolders/{f}/messages/delta: a page of changes, then a nextLink or (round over) a deltaLink."""
    folder = req.folder(name)
    filter_text = req.query.get("$filter")
    if filter_text and not re.fullmatch(r"\s*receivedDateTime\s+(ge|gt)\s+\S+\s*", filter_text):
        raise bad_request("Delta queries on messages support $filter on receivedDateTime with ge or gt only.",
                          "ErrorInvalidUrlQueryFilter")
    return log_delta(req, folder, f"mailFolders/{graph_id(folder.id)}/messages/delta", "mail", "message",
                     lambda item, fields: message_json(req, item, fields), message_filter)


# -- one message --------------------------------------------------------------------------------------------------
def get_message(req: GraphRequest, message_id: str) -> GraphReply:
    """GET messages/{id}."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    return GraphReply(200, {"@odata.context": req.context_url(f"users('{req.mailbox}')/messages/$entity"),
                            **message_json(req, item, req.select())}, "message")


def update_message(req: GraphRequest, message_id: str) -> GraphReply:
    """PATCH messages/{id}: isRead, categories, importance, flag and inferenceClassification on any message;
    everything else on drafts only."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    props = message_props(req.json())
    if not item.props.get("IsDraft") and set(props) - {"IsRead", "Categories", "Importance", FLAG_STATUS, INFERENCE}:
        raise GraphError(400, "ErrorInvalidPropertyUpdateSentMessage",
                         "Update operation is invalid for property of a sent message.")
    only_read_flag = set(props) == {"IsRead"}
    if only_read_flag and bool(item.props.get("IsRead")) == props["IsRead"]:
        return GraphReply(200, message_json(req, item), "message")
    item.props.update(props)
    req.store.touch(item, read_flag_only=only_read_flag)
    return GraphReply(200, message_json(req, item), "message")


def delete_message(req: GraphRequest, message_id: str) -> GraphReply:
    """DELETE messages/{id}: to Deleted Items (from Deleted Items: gone for good)."""
    store = req.store
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    deleted_items = store.folder(req.mailbox, "deleteditems")
    if item.folder_id == deleted_items.id:
        store.remove_item(item)
    else:
        store.move_item(item, deleted_items)
    return GraphReply(204)


def move_message(req: GraphRequest, message_id: str) -> GraphReply:
    """POST messages/{id}/move {destinationId}: a moved message gets a new REST id (its immutable id stays)."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    destination = req.action_parameters().get("destinationId")
    if not isinstance(destination, str):
        raise bad_request("'destinationId' is required.", "ErrorInvalidIdMalformed")
    moved = req.store.move_item(item, req.folder(destination))
    return GraphReply(201, message_json(req, moved), "message")


def message_mime(req: GraphRequest, message_id: str) -> GraphReply:
    """GET messages/{id}/$value: the message as MIME."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    props = item.props
    mime = EmailMessage()

    def addresses(name: str) -> str:
        return ", ".join(formataddr((box.name, box.email)) for box in props.get(name) or [])

    sender: Mailbox | None = props.get("From")
    if sender:
        mime["From"] = formataddr((sender.name, sender.email))
    for header, name in (("To", "ToRecipients"), ("Cc", "CcRecipients")):
        if props.get(name):
            mime[header] = addresses(name)
    mime["Subject"] = props.get("Subject") or ""
    mime["Date"] = rfc2822_datetime(props.get("DateTimeSent") or item.created)
    if props.get("InternetMessageId"):
        mime["Message-ID"] = props["InternetMessageId"]
    body: Body | None = props.get("Body")
    if body is not None and body.body_type == "HTML":
        mime.set_content(body.text, subtype="html")
    else:
        mime.set_content(body.text if body else "")
    for attachment in props.get("Attachments") or []:
        content = (props.get(ATTACHMENT_CONTENT) or {}).get(attachment.attachment_id, b"")
        maintype, _, subtype = attachment.content_type.partition("/")
        mime.add_attachment(content, maintype=maintype or "application", subtype=subtype or "octet-stream",
                            filename=attachment.name)
    return GraphReply(200, raw=mime.as_bytes(), content_type="message/rfc822")


# -- attachments --------------------------------------------------------------------------------------------------
def _attachment(item: Item, attachment_id: str) -> Attachment:
    for attachment in item.props.get("Attachments") or []:
        if graph_id(attachment.attachment_id) == attachment_id:
            return attachment
    raise not_found("The attachment could not be found.")


def list_attachments(req: GraphRequest, message_id: str) -> GraphReply:
    """GET messages/{id}/attachments."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    attachments = list(item.props.get("Attachments") or [])
    return collection(req, attachments, lambda a: attachment_json(item, a), "attachment",
                      f"users('{req.mailbox}')/messages('{message_id}')/attachments", default_top=100)


def get_attachment(req: GraphRequest, message_id: str, attachment_id: str) -> GraphReply:
    """GET messages/{id}/attachments/{id}."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    return GraphReply(200, attachment_json(item, _attachment(item, attachment_id)), "fileAttachment")


def attachment_value(req: GraphRequest, message_id: str, attachment_id: str) -> GraphReply:
    """GET messages/{id}/attachments/{id}/$value: the attachment's bytes."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    attachment = _attachment(item, attachment_id)
    content = (item.props.get(ATTACHMENT_CONTENT) or {}).get(attachment.attachment_id, b"")
    return GraphReply(200, raw=content, content_type=attachment.content_type)


def add_attachment(req: GraphRequest, message_id: str) -> GraphReply:
    """POST messages/{id}/attachments: a file attachment on a draft."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    if not item.props.get("IsDraft"):
        raise GraphError(400, "ErrorInvalidPropertyUpdateSentMessage", "Attachments can be added to drafts only.")
    attachment, content = parse_file_attachment(req.json())
    item.props["Attachments"] = [*(item.props.get("Attachments") or []), attachment]
    item.props[ATTACHMENT_CONTENT] = {**(item.props.get(ATTACHMENT_CONTENT) or {}), attachment.attachment_id: content}
    req.store.touch(item)
    return GraphReply(201, attachment_json(item, attachment), "fileAttachment")


# -- drafts and sending -------------------------------------------------------------------------------------------
def _sender(req: GraphRequest) -> Mailbox:
    return req.store.users[req.mailbox].mailbox


def _check_sender(req: GraphRequest, props: dict[str, Any]) -> None:
    """Mail goes out from the mailbox it is sent through: another From is someone else's name (no SendAs here)."""
    for field in ("From", "Sender"):
        box: Mailbox | None = props.get(field)
        if box is not None and box.email != req.mailbox:
            raise GraphError(403, "ErrorSendAsDenied", "The user account which was used to submit this request does "
                             "not have the right to send mail on behalf of the specified sending account.")


def _new_props(req: GraphRequest, data: dict[str, Any]) -> dict[str, Any]:
    props = message_props(data)
    props.setdefault("Subject", "")
    props.setdefault("Body", Body("Text", ""))
    return delivery.message_defaults(props, _sender(req), datetime.now(UTC))


def create_draft(req: GraphRequest, folder_name: str | None = None) -> GraphReply:
    """POST messages (or mailFolders/{f}/messages): a draft."""
    store = req.store
    props = _new_props(req, req.json())
    props.update(IsDraft=True, IsRead=True)
    folder = req.folder(folder_name) if folder_name else store.folder(req.mailbox, "drafts")
    item = store.add_item(folder, "Message", props)
    return GraphReply(201, message_json(req, item), "message")


def send_mail(req: GraphRequest) -> GraphReply:
    """POST sendMail {message, saveToSentItems}: 202, delivered to the organisation's recipients."""
    data = req.action_parameters()
    unknown = set(data) - {"message", "saveToSentItems"}
    if unknown:
        raise bad_request(f"Property '{sorted(unknown)[0]}' does not exist on the sendMail action.",
                          "RequestBodyRead")
    message = data.get("message")
    if not isinstance(message, dict):
        raise bad_request("The 'message' parameter is required.", "ErrorInvalidParameter")
    save = data.get("saveToSentItems", True)
    if not isinstance(save, bool):
        raise bad_request("'saveToSentItems' must be true or false.")
    props = _new_props(req, message)
    if not delivery.recipients_of(props):
        raise bad_request("At least one recipient is required.", "ErrorInvalidRecipients")
    _check_sender(req, props)
    delivery.send_message(req.store, req.mailbox, props, save_copy=save)
    return GraphReply(202)


def send_draft(req: GraphRequest, message_id: str) -> GraphReply:
    """POST messages/{id}/send: the draft goes out and its copy lands in Sent Items."""
    item = req.find_item(message_id, MESSAGE_ELEMENTS)
    if not item.props.get("IsDraft"):
        raise GraphError(400, "ErrorInvalidOperation", "Only drafts can be sent.")
    if not delivery.recipients_of(item.props):
        raise bad_request("At least one recipient is required.", "ErrorInvalidRecipients")
    _check_sender(req, item.props)
    req.store.remove_item(item)
    delivery.send_message(req.store, req.mailbox, item.props, save_copy=True)
    return GraphReply(202)


def create_response(req: GraphRequest, message_id: str, kind: str) -> GraphReply:
    """POST messages/{id}/createReply, createReplyAll or createForward: a draft answering the message."""
    original = req.find_item(message_id, MESSAGE_ELEMENTS)
    data = req.action_parameters()
    allowed = {"comment", "message", "toRecipients"} if kind == "createForward" else {"comment", "message"}
    unknown = set(data) - allowed
    if unknown:
        raise bad_request(f"'{sorted(unknown)[0]}' is not a parameter of {kind}.", "RequestBodyRead")
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise bad_request("'comment' must be a string.")
    extra = message_props(require(data.get("message") or {}, "message", dict))
    props = original.props
    me = _sender(req)
    sender: Mailbox | None = props.get("From")
    to: list[Mailbox] = []
    cc: list[Mailbox] = []
    if kind in ("createReply", "createReplyAll") and sender is not None:
        to = list(props.get("ReplyTo") or [sender])
    if kind == "createReplyAll":
        others = [box for box in props.get("ToRecipients") or [] if box.email != me.email]
        to += [box for box in others if box.email not in {b.email for b in to}]
        cc = [box for box in props.get("CcRecipients") or [] if box.email != me.email]
    if kind == "createForward":
        to = parse_recipients(data.get("toRecipients"), "toRecipients")
    prefix = "FW: " if kind == "createForward" else "RE: "
    quoted = (props.get("Body") or Body("Text", "")).text
    draft = {
        "Subject": prefix + (props.get("Subject") or ""),
        "Body": Body("HTML", f"<p>{_escape(comment)}</p><hr><div>{quoted}</div>"),
        "ToRecipients": to,
        "CcRecipients": cc,
        "IsDraft": True,
        "IsRead": True,
        "ConversationId": props.get("ConversationId"),
        "InReplyTo": props.get("InternetMessageId"),
    }
    if kind == "createForward" and props.get("Attachments"):
        draft["Attachments"] = list(props["Attachments"])
        draft[ATTACHMENT_CONTENT] = dict(props.get(ATTACHMENT_CONTENT) or {})
    draft.update(extra)  # what the client's 'message' sets wins over the defaults of a reply
    delivery.message_defaults(draft, me, datetime.now(UTC))
    item = req.store.add_item(req.store.folder(req.mailbox, "drafts"), "Message",
                              {k: v for k, v in draft.items() if v is not None})
    return GraphReply(201, message_json(req, item), "message")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
