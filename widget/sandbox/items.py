"""Items of the sandbox's mailboxes and their EWS XML form.

An item keeps its properties under the names of their schema elements ("Subject", "ToRecipients",
"Start", ...), which are also the local parts of the FieldURIs that clients ask for. Reading and writing
XML therefore needs one table of value kinds and the schema's element order per item type.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from lxml import etree

from .soap import T_NS, ItemError, local, sub, t

# Element order of each item type, as the schema's sequences give it (ItemType first, then the extension).
ITEM_ORDER = (
    "MimeContent ItemId ParentFolderId ItemClass Subject Sensitivity Body Attachments DateTimeReceived Size "
    "Categories Importance InReplyTo IsSubmitted IsDraft IsFromMe IsResend IsUnmodified InternetMessageHeaders "
    "DateTimeSent DateTimeCreated ResponseObjects ReminderDueBy ReminderIsSet ReminderNextTime "
    "ReminderMinutesBeforeStart DisplayCc DisplayTo DisplayBcc HasAttachments ExtendedProperty Culture "
    "EffectiveRights LastModifiedName LastModifiedTime IsAssociated WebClientReadFormQueryString "
    "WebClientEditFormQueryString ConversationId UniqueBody Flag StoreEntryId InstanceKey NormalizedBody "
    "EntityExtractionResult PolicyTag ArchiveTag RetentionDate Preview RightsManagementLicenseData "
    "PredictedActionReasons IsClutter BlockStatus HasBlockedImages TextBody IconIndex SearchKey SortKey Hashtags "
    "Mentions MentionedMe MentionsPreview MentionsEx AppliedHashtags AppliedHashtagsPreview Likes LikesPreview "
    "PendingSocialActivityTagIds AtAllMention CanDelete InferenceClassification"
).split()
MESSAGE_ORDER = (
    ITEM_ORDER
    + (
        "Sender ToRecipients CcRecipients BccRecipients IsReadReceiptRequested IsDeliveryReceiptRequested "
        "ConversationIndex ConversationTopic From InternetMessageId IsRead IsResponseRequested References ReplyTo "
        "ReceivedBy ReceivedRepresenting ApprovalRequestData VotingInformation ReminderMessageData SenderSMTPAddress "
        "MailboxGuids MailboxGuid"
    ).split()
)
MEETING_MESSAGE_ORDER = (
    MESSAGE_ORDER
    + (
        "AssociatedCalendarItemId IsDelegated IsOutOfDate HasBeenProcessed ResponseType UID RecurrenceId "
        "DateTimeStamp IsOrganizer"
    ).split()
)
MEETING_REQUEST_ORDER = (
    MEETING_MESSAGE_ORDER
    + (
        "MeetingRequestType IntendedFreeBusyStatus Start End OriginalStart IsAllDayEvent LegacyFreeBusyStatus Location "
        "When IsMeeting IsCancelled IsRecurring MeetingRequestWasSent CalendarItemType MyResponseType Organizer "
        "RequiredAttendees OptionalAttendees Resources ConflictingMeetingCount AdjacentMeetingCount "
        "ConflictingMeetings AdjacentMeetings Duration TimeZone AppointmentReplyTime AppointmentSequenceNumber "
        "AppointmentState Recurrence FirstOccurrence LastOccurrence ModifiedOccurrences DeletedOccurrences "
        "MeetingTimeZone StartTimeZone EndTimeZone "
        "ConferenceType AllowNewTimeProposal IsOnlineMeeting MeetingWorkspaceUrl NetShowUrl EnhancedLocation "
        "ChangeHighlights StartWallClock EndWallClock StartTimeZoneId EndTimeZoneId"
    ).split()
)
MEETING_CANCELLATION_ORDER = MEETING_MESSAGE_ORDER + "Start End Location Recurrence CalendarItemType".split()
MEETING_RESPONSE_ORDER = MEETING_CANCELLATION_ORDER + "ProposedStart ProposedEnd".split()
CALENDAR_ORDER = (
    ITEM_ORDER
    + (
        "UID RecurrenceId DateTimeStamp Start End OriginalStart IsAllDayEvent LegacyFreeBusyStatus Location When "
        "IsMeeting IsCancelled IsRecurring MeetingRequestWasSent IsResponseRequested CalendarItemType MyResponseType "
        "Organizer RequiredAttendees OptionalAttendees Resources InboxReminders ConflictingMeetingCount "
        "AdjacentMeetingCount ConflictingMeetings AdjacentMeetings Duration TimeZone AppointmentReplyTime "
        "AppointmentSequenceNumber AppointmentState Recurrence FirstOccurrence LastOccurrence ModifiedOccurrences "
        "DeletedOccurrences MeetingTimeZone StartTimeZone EndTimeZone ConferenceType AllowNewTimeProposal "
        "IsOnlineMeeting MeetingWorkspaceUrl NetShowUrl EnhancedLocation StartWallClock EndWallClock StartTimeZoneId "
        "EndTimeZoneId IntendedFreeBusyStatus JoinOnlineMeetingUrl OnlineMeetingSettings IsOrganizer "
        "CalendarActivityData"
    ).split()
)
TASK_ORDER = (
    ITEM_ORDER
    + (
        "ActualWork AssignedTime BillingInformation ChangeCount Companies CompleteDate Contacts DelegationState "
        "Delegator DueDate IsAssignmentEditable IsComplete IsRecurring IsTeamTask Mileage Owner PercentComplete "
        "Recurrence StartDate Status StatusDescription TotalWork"
    ).split()
)

ORDER_BY_ELEMENT: dict[str, list[str]] = {
    "Message": MESSAGE_ORDER,
    "MeetingRequest": MEETING_REQUEST_ORDER,
    "MeetingCancellation": MEETING_CANCELLATION_ORDER,
    "MeetingResponse": MEETING_RESPONSE_ORDER,
    "CalendarItem": CALENDAR_ORDER,
    "Task": TASK_ORDER,
}
ITEM_CLASS_BY_ELEMENT = {
    "Message": "IPM.Note",
    "MeetingRequest": "IPM.Schedule.Meeting.Request",
    "MeetingCancellation": "IPM.Schedule.Meeting.Canceled",
    "MeetingResponse": "IPM.Schedule.Meeting.Resp.Pos",
    "CalendarItem": "IPM.Appointment",
    "Task": "IPM.Task",
}

DATETIME_FIELDS = frozenset(
    "DateTimeReceived DateTimeSent DateTimeCreated LastModifiedTime ReminderDueBy ReminderNextTime Start End "
    "OriginalStart DateTimeStamp AppointmentReplyTime AssignedTime CompleteDate DueDate StartDate "
    "RecurrenceId ProposedStart ProposedEnd".split()
)
BOOL_FIELDS = frozenset(
    "IsSubmitted IsDraft IsFromMe IsResend IsUnmodified ReminderIsSet HasAttachments IsAssociated "
    "IsReadReceiptRequested IsDeliveryReceiptRequested IsRead IsResponseRequested IsAllDayEvent IsMeeting "
    "IsCancelled IsRecurring MeetingRequestWasSent AllowNewTimeProposal IsOnlineMeeting IsComplete "
    "IsAssignmentEditable IsTeamTask IsOrganizer IsDelegated IsOutOfDate HasBeenProcessed".split()
)
INT_FIELDS = frozenset(
    "Size ReminderMinutesBeforeStart PercentComplete ActualWork TotalWork ChangeCount ConflictingMeetingCount "
    "AdjacentMeetingCount AppointmentSequenceNumber AppointmentState".split()
)
SINGLE_RECIPIENT_FIELDS = frozenset("Sender From ReceivedBy ReceivedRepresenting Organizer".split())
RECIPIENT_LIST_FIELDS = frozenset("ToRecipients CcRecipients BccRecipients ReplyTo".split())
ATTENDEE_LIST_FIELDS = frozenset("RequiredAttendees OptionalAttendees Resources".split())
STRING_LIST_FIELDS = frozenset("Categories Companies Contacts".split())

# What the Default shape returns per item type (AllProperties returns everything the item has).
DEFAULT_SHAPE = {
    "Message": "ItemId Subject Attachments HasAttachments Sensitivity DateTimeReceived Size DisplayCc DisplayTo "
    "Importance IsRead ResponseObjects From IsFromMe ConversationId".split(),
    "CalendarItem": "ItemId Subject Attachments HasAttachments Sensitivity Size ResponseObjects Start End "
    "LegacyFreeBusyStatus Location CalendarItemType Organizer".split(),
    "Task": "ItemId Subject Attachments HasAttachments Sensitivity Size DueDate PercentComplete Status".split(),
}


class Mailbox(NamedTuple):
    """A person or address on an item (EmailAddressType)."""

    email: str
    name: str = ""
    mailbox_type: str = "OneOff"

    def as_xml(self, parent: etree._Element, tag: str = "Mailbox") -> etree._Element:
        """Append this address as <t:{tag}> in schema order."""
        box = sub(parent, t(tag))
        sub(box, t("Name"), self.name or self.email)
        sub(box, t("EmailAddress"), self.email)
        sub(box, t("RoutingType"), "SMTP")
        sub(box, t("MailboxType"), self.mailbox_type)
        return box


class Attendee(NamedTuple):
    """A meeting attendee, how they answered and when (their response as the organiser's item tracks it)."""

    mailbox: Mailbox
    response: str = "Unknown"
    last_response_time: datetime | None = None


class Attachment(NamedTuple):
    """An attachment's name, content type and size: enough for a list of attachments."""

    attachment_id: str
    name: str
    content_type: str
    size: int


class Body(NamedTuple):
    """An item body: its type ("HTML" or "Text") and content."""

    body_type: str
    text: str


class RawXml(bytes):
    """A property kept as the XML the client sent (e.g. a Recurrence), echoed back as is."""


def new_id(prefix: bytes = b"\x01") -> str:
    """An opaque, Exchange-looking id."""
    return base64.b64encode(b"AAMk" + prefix + os.urandom(30)).decode()


def format_datetime(value: datetime) -> str:
    """UTC timestamp in the form Exchange writes."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime from a client; a value without an offset is taken as UTC."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ItemError("ErrorInvalidValueForProperty", f"'{text}' is not a valid date and time.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_bool(text: str | None) -> bool:
    """An xs:boolean."""
    return (text or "").strip() in ("true", "1")


def format_duration(delta: timedelta) -> str:
    """An xs:duration such as PT1H30M."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}P{days}D" if days else f"{sign}P"
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    if time_part or not days:
        text += "T" + (time_part or "0S")
    return text


def parse_mailbox(elem: etree._Element | None) -> Mailbox | None:
    """Read a <t:Mailbox> (or an element wrapping one)."""
    if elem is None:
        return None
    if local(elem) != "Mailbox":
        elem = elem.find(t("Mailbox"))
        if elem is None:
            return None
    address = (elem.findtext(t("EmailAddress")) or "").strip()
    if not address:
        raise ItemError("ErrorInvalidRecipients", "A recipient has no e-mail address.")
    return Mailbox(email=address.lower(), name=(elem.findtext(t("Name")) or "").strip())


def _optional_datetime(elem: etree._Element, name: str) -> datetime | None:
    text = elem.findtext(t(name))
    return parse_datetime(text) if text else None


def parse_property(elem: etree._Element) -> Any:
    """The Python value of one property element sent by a client."""
    name = local(elem)
    text = elem.text or ""
    if name in DATETIME_FIELDS:
        return parse_datetime(text)
    if name in BOOL_FIELDS:
        return parse_bool(text)
    if name in INT_FIELDS:
        try:
            return int(text.strip())
        except ValueError:
            raise ItemError("ErrorInvalidValueForProperty", f"{name} must be a whole number.") from None
    if name in SINGLE_RECIPIENT_FIELDS:
        return parse_mailbox(elem)
    if name in RECIPIENT_LIST_FIELDS:
        return [box for box in (parse_mailbox(child) for child in elem) if box]
    if name in ATTENDEE_LIST_FIELDS:
        return [
            Attendee(box, child.findtext(t("ResponseType")) or "Unknown",
                     _optional_datetime(child, "LastResponseTime"))
            for child in elem
            if (box := parse_mailbox(child.find(t("Mailbox"))))
        ]
    if name in STRING_LIST_FIELDS:
        return [child.text or "" for child in elem]
    if name == "Body":
        return Body(elem.get("BodyType", "Text"), text)
    if len(elem) or elem.attrib:
        return RawXml(etree.tostring(elem))
    return text


def parse_properties(elem: etree._Element) -> dict[str, Any]:
    """All properties of an item element sent in CreateItem."""
    props: dict[str, Any] = {}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        name = local(child)
        if name == "ExtendedProperty":
            props.setdefault(name, []).append(RawXml(etree.tostring(child)))
        elif name == "Attachments":
            props[name] = [
                Attachment(
                    new_id(b"\x03"),
                    a.findtext(t("Name")) or "attachment",
                    a.findtext(t("ContentType")) or "application/octet-stream",
                    len(base64.b64decode(a.findtext(t("Content")) or "")),
                )
                for a in child
            ]
        else:
            props[name] = parse_property(child)
    return props


def _recipient_names(boxes: list[Mailbox] | None) -> str:
    return "; ".join(box.name or box.email for box in boxes or [])


@dataclass(eq=False)
class Item:
    """One item in one folder of one mailbox."""

    id: str
    element: str
    folder_id: str
    props: dict[str, Any]
    change_key: str = ""
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def item_class(self) -> str:
        """The MAPI item class."""
        return self.props.get("ItemClass") or ITEM_CLASS_BY_ELEMENT[self.element]

    def computed(self, name: str) -> Any:
        """Properties that Exchange derives rather than stores."""
        props = self.props
        if name == "ItemClass":
            return self.item_class
        if name == "DateTimeCreated":
            return self.created
        if name == "LastModifiedTime":
            return self.modified
        if name == "HasAttachments":
            return bool(props.get("Attachments"))
        if name == "DisplayTo":
            return _recipient_names(props.get("ToRecipients") or _attendee_boxes(props.get("RequiredAttendees")))
        if name == "DisplayCc":
            return _recipient_names(props.get("CcRecipients") or _attendee_boxes(props.get("OptionalAttendees")))
        if name == "Size":
            body = props.get("Body")
            return 512 + (len(body.text.encode()) if body else 0) + sum(a.size for a in props.get("Attachments", []))
        if name == "IsAssociated":
            return False
        if name == "TextBody":
            body = props.get("Body")
            return Body("Text", _text_of(body)) if body else None
        if name == "Preview":
            body = props.get("Body")
            return _text_of(body)[:255] if body else None
        if name == "IsRecurring" and self.element == "CalendarItem":
            return bool(props.get("Recurrence")) or props.get("CalendarItemType") == "Occurrence"
        if name == "CalendarItemType" and self.element == "CalendarItem":
            return "RecurringMaster" if props.get("Recurrence") else "Single"
        if name == "Duration" and "Start" in props and "End" in props:
            return format_duration(props["End"] - props["Start"])
        if name == "IsComplete" and self.element == "Task":
            return props.get("Status") == "Completed"
        if name in ("FirstOccurrence", "LastOccurrence") and self.element == "CalendarItem":
            from .recurrence import occurrence_info  # recurrence builds on this module

            return occurrence_info(self, name)
        if name == "ModifiedOccurrences" and self.element == "CalendarItem":
            from .recurrence import modified_occurrences

            return modified_occurrences(self)
        if name == "IsMeeting" and self.element == "CalendarItem":
            return bool(props.get("RequiredAttendees") or props.get("OptionalAttendees"))
        return None

    def value(self, name: str) -> Any:
        """A property, stored or derived."""
        value = self.props.get(name)
        return self.computed(name) if value is None else value


def _attendee_boxes(attendees: list[Attendee] | None) -> list[Mailbox]:
    return [a.mailbox for a in attendees or []]


def _text_of(body: Body | None) -> str:
    if body is None:
        return ""
    if body.body_type == "Text":
        return body.text
    try:
        # Block elements end words; collapse whitespace the way a text rendering of HTML would.
        return " ".join("".join(etree.HTML(body.text).itertext()).split()) if body.text.strip() else ""
    except (etree.ParserError, ValueError):
        return body.text


def _render_value(parent: etree._Element, name: str, value: Any) -> None:
    if isinstance(value, RawXml):
        parent.append(etree.fromstring(bytes(value)))
        return
    if name == "ExtendedProperty":
        for raw in value:
            parent.append(etree.fromstring(bytes(raw)))
        return
    if isinstance(value, bool):
        sub(parent, t(name), "true" if value else "false")
    elif isinstance(value, datetime):
        sub(parent, t(name), format_datetime(value))
    elif isinstance(value, int):
        sub(parent, t(name), str(value))
    elif isinstance(value, Body):
        sub(parent, t(name), value.text, BodyType=value.body_type, IsTruncated="false")
    elif isinstance(value, Mailbox):
        value.as_xml(sub(parent, t(name)))
    elif name in RECIPIENT_LIST_FIELDS:
        container = sub(parent, t(name))
        for box in value:
            box.as_xml(container)
    elif name in ATTENDEE_LIST_FIELDS:
        container = sub(parent, t(name))
        for attendee in value:
            holder = sub(container, t("Attendee"))
            attendee.mailbox.as_xml(holder)
            sub(holder, t("ResponseType"), attendee.response)
            if attendee.last_response_time is not None:
                sub(holder, t("LastResponseTime"), format_datetime(attendee.last_response_time))
    elif name in STRING_LIST_FIELDS:
        container = sub(parent, t(name))
        for text in value:
            sub(container, t("String"), text)
    elif name == "Attachments":
        container = sub(parent, t(name))
        for attachment in value:
            holder = sub(container, t("FileAttachment"))
            sub(holder, t("AttachmentId"), Id=attachment.attachment_id)
            sub(holder, t("Name"), attachment.name)
            sub(holder, t("ContentType"), attachment.content_type)
            sub(holder, t("Size"), str(attachment.size))
            sub(holder, t("IsInline"), "false")
            sub(holder, t("IsContactPhoto"), "false")
    elif name == "DeletedOccurrences":
        container = sub(parent, t(name))
        for start in value:
            sub(sub(container, t("DeletedOccurrence")), t("Start"), format_datetime(start))
    elif name == "ConversationId":
        sub(parent, t(name), Id=value)
    else:
        sub(parent, t(name), str(value))


@dataclass
class Shape:
    """Which properties a client asked for (ItemShape)."""

    base: str = "IdOnly"
    fields: frozenset[str] = frozenset()
    body_type: str = "Best"

    @classmethod
    def from_xml(cls, elem: etree._Element | None) -> Shape:
        """Read an <m:ItemShape>; IndexedFieldURIs and ExtendedFieldURIs ask for nothing the sandbox stores."""
        if elem is None:
            return cls()
        names = set()
        extra = elem.find(t("AdditionalProperties"))
        if extra is not None:
            for uri in extra:
                if local(uri) == "FieldURI":
                    names.add(uri.get("FieldURI", "").split(":")[-1])
        return cls(
            base=elem.findtext(t("BaseShape")) or "IdOnly",
            fields=frozenset(names),
            body_type=elem.findtext(t("BodyType")) or "Best",
        )

    def wants(self, element: str) -> frozenset[str]:
        """The element names to emit for an item of this element type."""
        if self.base == "AllProperties":
            return frozenset(ORDER_BY_ELEMENT[element]) - {"MimeContent", "UniqueBody", "NormalizedBody"}
        if self.base == "Default":
            return frozenset(DEFAULT_SHAPE.get(element, DEFAULT_SHAPE["Message"])) | self.fields
        return self.fields | {"ItemId"}


def render_item(parent: etree._Element, item: Item, shape: Shape, folder_ids: tuple[str, str] | None = None) -> None:
    """Append <t:Message>, <t:CalendarItem>, ... with the properties the shape asks for, in schema order."""
    elem = sub(parent, t(item.element))
    wanted = shape.wants(item.element)
    for name in ORDER_BY_ELEMENT[item.element]:
        if name not in wanted:
            continue
        if name == "ItemId":
            sub(elem, t("ItemId"), Id=item.id, ChangeKey=item.change_key)
            continue
        if name == "ParentFolderId":
            if folder_ids:
                sub(elem, t("ParentFolderId"), Id=folder_ids[0], ChangeKey=folder_ids[1])
            continue
        value = item.value(name)
        if value is None or (isinstance(value, list) and not value):
            continue
        if name == "Body" and isinstance(value, Body) and shape.body_type == "Text" and value.body_type == "HTML":
            value = Body("Text", _text_of(value))
        _render_value(elem, name, value)


def item_id_element(parent: etree._Element, item: Item) -> None:
    """Append the short <t:{Element}><t:ItemId/></t:{Element}> form used in create/update replies."""
    holder = sub(parent, t(item.element))
    sub(holder, t("ItemId"), Id=item.id, ChangeKey=item.change_key)


__all__ = [
    "Attachment",
    "Attendee",
    "Body",
    "Item",
    "Mailbox",
    "RawXml",
    "Shape",
    "T_NS",
    "format_datetime",
    "item_id_element",
    "new_id",
    "parse_datetime",
    "parse_properties",
    "parse_property",
    "render_item",
]
