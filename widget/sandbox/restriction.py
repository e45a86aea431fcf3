"""FindItem's Restriction, SortOrder and QueryString, evaluated over the sandbox's items.

A restriction is compiled once per request into a predicate over ``items.Item``. Values compare typed, as the
Exchange store compares them: dates as instants, booleans and numbers as such, enumerations (Importance,
Sensitivity, task Status, LegacyFreeBusyStatus) in their numeric order, and strings without regard to case
(IsEqualTo and friends) or as the ContainmentComparison of a Contains says. A multi-valued property (Categories)
matches when one of its values does; an address (From, Sender, Organizer, ...) compares by its e-mail address.

A property an item does not have makes a comparison false, except IsNotEqualTo, which it makes true (the store
treats the missing value as unequal to anything).

Errors are Exchange's: a FieldURI outside the schema's enumeration fails schema validation (a SOAP fault), and a
property that cannot be searched or sorted on is ErrorUnsupportedPathForQuery or ErrorUnsupportedPathForSortGroup
with the FieldURI in the MessageXml.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .items import (
    BOOL_FIELDS,
    DATETIME_FIELDS,
    INT_FIELDS,
    SINGLE_RECIPIENT_FIELDS,
    STRING_LIST_FIELDS,
    Body,
    Item,
    Mailbox,
    parse_datetime,
)
from .soap import EwsFault, ItemError, local, t

Predicate = Callable[[Item], bool]

# The item-related values of the schema's UnindexedFieldURIType, by prefix.
_ITEM_FIELD_URIS = {
    "item": (
        "ItemId ParentFolderId ItemClass MimeContent Attachments Subject DateTimeReceived Size Categories "
        "HasAttachments Importance InReplyTo InternetMessageHeaders IsAssociated IsDraft IsFromMe IsResend "
        "IsSubmitted IsUnmodified DateTimeSent DateTimeCreated Body ResponseObjects Sensitivity ReminderDueBy "
        "ReminderIsSet ReminderNextTime ReminderMinutesBeforeStart DisplayTo DisplayCc DisplayBcc Culture "
        "EffectiveRights LastModifiedName LastModifiedTime ConversationId UniqueBody Flag StoreEntryId "
        "InstanceKey NormalizedBody EntityExtractionResult PolicyTag ArchiveTag RetentionDate Preview "
        "PredictedActionReasons IsClutter RightsManagementLicenseData BlockStatus HasBlockedImages "
        "WebClientReadFormQueryString WebClientEditFormQueryString TextBody IconIndex MimeContentUTF8 Mentions "
        "MentionedMe MentionsPreview MentionsEx Hashtags AppliedHashtags AppliedHashtagsPreview Likes "
        "LikesPreview PendingSocialActivityTagIds AtAllMention CanDelete InferenceClassification FirstBody"
    ),
    "message": (
        "ConversationIndex ConversationTopic InternetMessageId IsRead IsResponseRequested IsReadReceiptRequested "
        "IsDeliveryReceiptRequested ReceivedBy ReceivedRepresenting References ReplyTo From Sender ToRecipients "
        "CcRecipients BccRecipients ApprovalRequestData VotingInformation ReminderMessageData"
    ),
    "meeting": "AssociatedCalendarItemId IsDelegated IsOutOfDate HasBeenProcessed ResponseType ProposedStart "
               "ProposedEnd",
    "meetingRequest": "MeetingRequestType IntendedFreeBusyStatus ChangeHighlights",
    "calendar": (
        "Start End OriginalStart StartWallClock EndWallClock StartTimeZoneId EndTimeZoneId IsAllDayEvent "
        "LegacyFreeBusyStatus Location EnhancedLocation When IsMeeting IsCancelled IsRecurring "
        "MeetingRequestWasSent IsResponseRequested CalendarItemType MyResponseType Organizer RequiredAttendees "
        "OptionalAttendees Resources ConflictingMeetingCount AdjacentMeetingCount ConflictingMeetings "
        "AdjacentMeetings InboxReminders Duration TimeZone AppointmentReplyTime AppointmentSequenceNumber "
        "AppointmentState Recurrence FirstOccurrence LastOccurrence ModifiedOccurrences DeletedOccurrences "
        "MeetingTimeZone ConferenceType AllowNewTimeProposal IsOnlineMeeting MeetingWorkspaceUrl NetShowUrl UID "
        "RecurrenceId DateTimeStamp StartTimeZone EndTimeZone JoinOnlineMeetingUrl OnlineMeetingSettings "
        "IsOrganizer CalendarActivityData"
    ),
    "task": (
        "ActualWork AssignedTime BillingInformation ChangeCount Companies CompleteDate Contacts DelegationState "
        "Delegator DueDate IsAssignmentEditable IsComplete IsRecurring IsTeamTask Mileage Owner PercentComplete "
        "Recurrence StartDate Status StatusDescription TotalWork"
    ),
    "contacts": (
        "Alias AssistantName Birthday BusinessHomePage Children Companies CompanyName CompleteName ContactSource "
        "Culture Department DisplayName DirectoryId DirectReports EmailAddresses AbchEmailAddresses FileAs "
        "FileAsMapping Generation GivenName ImAddresses Initials JobTitle Manager ManagerMailbox MiddleName "
        "Mileage MSExchangeCertificate Nickname Notes OfficeLocation PhoneNumbers PhoneticFullName "
        "PhoneticFirstName PhoneticLastName Photo PhysicalAddresses PostalAddressIndex Profession SpouseName "
        "Surname WeddingAnniversary UserSMIMECertificate HasPicture AccountName IsAutoUpdateDisabled "
        "IsMessengerEnabled Comment ContactShortId ContactType CreatedBy Gender IsHidden ObjectId PassportId "
        "IsPrivate SourceId TrustLevel Urls Cid SkypeAuthCertificate SkypeContext SkypeId XboxLiveTag "
        "SkypeRelationship YomiNickname InviteFree HidePresenceAndProfile IsPendingOutbound SupportGroupFeeds "
        "UserTileHash UnifiedInbox Mris Wlid AbchContactId NotInBirthdayCalendar ShellContactType ImMri "
        "PresenceTrustLevel OtherMri ProfileLastChanged MobileIMEnabled PartnerNetworkProfilePhotoUrl "
        "PartnerNetworkThumbnailPhotoUrl PersonId ConversationGuid"
    ),
    "distributionlist": "Members",
    "postitem": "PostedTime",
}
FIELD_URIS = frozenset(f"{prefix}:{name}" for prefix, names in _ITEM_FIELD_URIS.items() for name in names.split())
# Prefixes of the schema's other FieldURIs: valid in a request, but no property of an item.
_OTHER_PREFIXES = frozenset("folder person rolemember network abchperson booking insight".split())

# Properties the store cannot filter on: bodies and MIME, attachments, recipient and attendee lists, recurrence
# blobs, time zones and other computed or structured values (exchangelib marks most of these unsearchable).
_NOT_SEARCHABLE = frozenset(
    "item:MimeContent item:Attachments item:ResponseObjects item:EffectiveRights item:UniqueBody "
    "item:NormalizedBody item:TextBody item:InternetMessageHeaders item:ReminderDueBy item:Culture item:FirstBody "
    "item:MimeContentUTF8 item:EntityExtractionResult item:RightsManagementLicenseData item:PredictedActionReasons "
    "item:Flag item:WebClientReadFormQueryString item:WebClientEditFormQueryString item:Mentions item:MentionsEx "
    "item:Likes item:Hashtags item:AppliedHashtags "
    "message:ToRecipients message:CcRecipients message:BccRecipients message:ReplyTo message:ApprovalRequestData "
    "message:VotingInformation message:ReminderMessageData "
    "calendar:UID calendar:RecurrenceId calendar:Recurrence calendar:RequiredAttendees calendar:OptionalAttendees "
    "calendar:Resources calendar:MeetingTimeZone calendar:StartTimeZone calendar:EndTimeZone calendar:TimeZone "
    "calendar:FirstOccurrence calendar:LastOccurrence calendar:ModifiedOccurrences calendar:DeletedOccurrences "
    "calendar:ConflictingMeetings calendar:AdjacentMeetings calendar:ConflictingMeetingCount "
    "calendar:AdjacentMeetingCount calendar:IsResponseRequested calendar:AllowNewTimeProposal "
    "calendar:EnhancedLocation calendar:InboxReminders calendar:OnlineMeetingSettings calendar:CalendarActivityData "
    "calendar:StartWallClock calendar:EndWallClock calendar:Duration "
    "meetingRequest:ChangeHighlights task:Recurrence task:Companies task:Contacts contacts:Companies "
    "distributionlist:Members".split()
)
# Sorting needs a single value per item: the same properties, plus those holding several.
_NOT_SORTABLE = _NOT_SEARCHABLE | {"item:Categories", "item:Body"}

# Enumerations the store keeps as numbers and so compares and sorts in this order.
ENUM_ORDER = {
    "Importance": ("Low", "Normal", "High"),
    "Sensitivity": ("Normal", "Personal", "Private", "Confidential"),
    "Status": ("NotStarted", "InProgress", "Completed", "WaitingOnOthers", "Deferred"),
    "LegacyFreeBusyStatus": ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData"),
    "IntendedFreeBusyStatus": ("Free", "Tentative", "Busy", "OOF", "WorkingElsewhere", "NoData"),
}
_EXTRA_INT_FIELDS = frozenset({"ChangeCount", "IconIndex", "AppointmentState"})
_COMPARISONS = {
    "IsEqualTo": lambda a, b: a == b,
    "IsNotEqualTo": lambda a, b: a != b,
    "IsGreaterThan": lambda a, b: a > b,
    "IsGreaterThanOrEqualTo": lambda a, b: a >= b,
    "IsLessThan": lambda a, b: a < b,
    "IsLessThanOrEqualTo": lambda a, b: a <= b,
}
_FIELD_TAGS = ("FieldURI", "IndexedFieldURI", "ExtendedFieldURI")


class PropertyError(ItemError):
    """An ItemError about one property path, which Exchange names in the response's MessageXml."""

    def __init__(self, code: str, message: str, path: etree._Element):
        super().__init__(code, message)
        self.path = path


def _schema_fault(message: str) -> EwsFault:
    return EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {message}")


@dataclass(frozen=True)
class Field:
    """A property path of a restriction or sort order, with how to read and compare its values."""

    uri: str  # "item:Subject"; "" for indexed and extended paths, which no sandbox item has
    kind: str  # "datetime", "bool", "int", "enum", "mailbox", "strings", "body", "string" or "absent"
    elem: etree._Element

    @property
    def name(self) -> str:
        """The local name, which is also the property's key in Item.props."""
        return self.uri.partition(":")[2]

    def get(self, item: Item) -> Any:
        """The item's value of this property, or None when it has none."""
        if self.kind == "absent":
            return None
        name = self.name
        if name == "ItemId":
            return item.id
        if name == "ParentFolderId":
            return item.folder_id
        if name == "Body":
            body = item.props.get("Body")
            text = item.value("TextBody")
            return text.text if isinstance(text, Body) else (body.text if isinstance(body, Body) else None)
        value = item.value(name)
        if value is None and name == "DateTimeReceived":
            # Exchange stamps every item it stores with a received time; the sandbox keeps it on messages only.
            value = item.created
        if value is None or (isinstance(value, list | str) and not value and self.kind != "string"):
            return None
        return value

    def coerce(self, text: str) -> Any:
        """A Constant's Value as a value of this property's type."""
        kind = self.kind
        try:
            if kind == "datetime":
                return parse_datetime(text)
            if kind == "bool":
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                return lowered in ("true", "1")
            if kind == "int":
                return int(text.strip())
            if kind == "enum":
                return ENUM_ORDER[self.name].index(text.strip())
        except (ValueError, ItemError):
            raise PropertyError("ErrorInvalidValueForProperty", f"'{text}' is not a valid value for {self.uri}.",
                                self.elem) from None
        return text


def _kind(uri: str) -> str:
    name = uri.partition(":")[2]
    if name in DATETIME_FIELDS or name in ("ProposedStart", "ProposedEnd", "PostedTime", "RetentionDate"):
        return "datetime"
    if name in BOOL_FIELDS or name in ("IsComplete", "IsClutter", "HasBlockedImages", "MentionedMe"):
        return "bool"
    if name in INT_FIELDS or name in _EXTRA_INT_FIELDS:
        return "int"
    if name in ENUM_ORDER:
        return "enum"
    if name in SINGLE_RECIPIENT_FIELDS:
        return "mailbox"
    if name in STRING_LIST_FIELDS:
        return "strings"
    if name == "Body":
        return "body"
    return "string"


def read_field(elem: etree._Element, not_usable: tuple[str, str, frozenset[str]]) -> Field:
    """Read a FieldURI, IndexedFieldURI or ExtendedFieldURI element.

    `not_usable` is (error code, message, FieldURIs) for the properties that may not be used where the path
    stands; those raise a PropertyError naming the path.
    """
    name = local(elem)
    if name != "FieldURI":
        # Indexed (contacts' addresses, phone numbers) and extended (MAPI) properties: no sandbox item has one.
        return Field("", "absent", elem)
    uri = elem.get("FieldURI", "")
    prefix = uri.partition(":")[0]
    code, message, refused = not_usable
    if uri in FIELD_URIS:
        if uri in refused:
            raise PropertyError(code, message, elem)
        return Field(uri, _kind(uri), elem)
    if prefix in _OTHER_PREFIXES:
        raise PropertyError(code, message, elem)
    raise _schema_fault(
        f"The 'FieldURI' attribute is invalid - The value '{uri}' is invalid according to its datatype "
        "'http://schemas.microsoft.com/exchange/services/2006/types:UnindexedFieldURIType' - The Enumeration "
        "constraint failed."
    )


_QUERY = ("ErrorUnsupportedPathForQuery", "The property can not be used with this type of restriction.",
          _NOT_SEARCHABLE)
_SORT = ("ErrorUnsupportedPathForSortGroup", "The property can not be used for sorting or grouping results.",
         _NOT_SORTABLE)


# -- restrictions ---------------------------------------------------------------------------------------------------


def compile_restriction(elem: etree._Element) -> Predicate:
    """Compile an ``<m:Restriction>`` into a predicate over items (several top-level expressions must all hold).

    Raises EwsFault for a document the schema does not allow and PropertyError/ItemError for a restriction
    Exchange refuses.
    """
    expressions = [_expression(child) for child in elem if isinstance(child.tag, str)]
    if not expressions:
        raise _schema_fault("Restriction has no search expression.")
    return _all(expressions)


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda item: all(predicate(item) for predicate in predicates)


def _expression(elem: etree._Element) -> Predicate:
    name = local(elem)
    if name in ("And", "Or", "Not"):
        children = [_expression(child) for child in elem if isinstance(child.tag, str)]
        if not children:
            raise _schema_fault(f"{name} has no search expression.")
        if name == "And":
            return _all(children)
        if name == "Or":
            return lambda item: any(child(item) for child in children)
        inner = _all(children)
        return lambda item: not inner(item)
    if name in _COMPARISONS:
        return _comparison(elem, name)
    if name == "Contains":
        return _contains(elem)
    if name == "Excludes":
        return _excludes(elem)
    if name == "Exists":
        fields = _paths(elem)
        return lambda item: all(field.get(item) is not None for field in fields)
    raise _schema_fault(f"The element '{name}' is not a search expression.")


def _paths(elem: etree._Element) -> list[Field]:
    paths = [read_field(child, _QUERY) for child in elem if isinstance(child.tag, str) and local(child) in _FIELD_TAGS]
    if not paths:
        raise _schema_fault(f"{local(elem)} has no property path.")
    return paths


def _normalize(field: Field, value: Any) -> Any:
    """A stored value in the form constants are compared with."""
    if field.kind == "enum":
        if isinstance(value, int):
            return value  # already a rank (a coerced constant)
        order = ENUM_ORDER[field.name]
        return order.index(value) if value in order else None
    if field.kind == "mailbox" and isinstance(value, Mailbox):
        return value.email.casefold()
    if isinstance(value, list):
        return [str(part).casefold() for part in value]
    if isinstance(value, str):
        return value.casefold()
    return value


def _comparison(elem: etree._Element, name: str) -> Predicate:
    (field,) = _paths(elem)[:1]
    holder = elem.find(t("FieldURIOrConstant"))
    if holder is None or len(holder) == 0:
        raise _schema_fault(f"{name} has no FieldURIOrConstant.")
    operand = holder[0]
    compare = _COMPARISONS[name]
    missing = name == "IsNotEqualTo"
    if local(operand) == "Constant":
        constant = _normalize(field, field.coerce(operand.get("Value", "")))

        def against_constant(item: Item) -> bool:
            value = field.get(item)
            if value is None:
                return missing
            value = _normalize(field, value)
            if isinstance(value, list):
                # A multi-valued property matches when one of its values does ("not equal": when none is equal).
                return not any(part == constant for part in value) if missing else any(
                    compare(part, constant) for part in value)
            return _safe(compare, value, constant)

        return against_constant
    other = read_field(operand, _QUERY)

    def against_field(item: Item) -> bool:
        left, right = field.get(item), other.get(item)
        if left is None or right is None:
            return missing
        return _safe(compare, _normalize(field, left), _normalize(other, right))

    return against_field


def _safe(compare: Callable[[Any, Any], bool], left: Any, right: Any) -> bool:
    try:
        return bool(compare(left, right))
    except TypeError:
        # Values of different types (a property compared with another of another type) never match.
        return False


def _fold(text: str, ignore_case: bool, ignore_non_spacing: bool) -> str:
    if ignore_non_spacing:
        text = "".join(char for char in unicodedata.normalize("NFD", text) if not unicodedata.combining(char))
    return text.casefold() if ignore_case else text


def _contains(elem: etree._Element) -> Predicate:
    (field,) = _paths(elem)[:1]
    if field.kind not in ("string", "strings", "mailbox", "body", "absent"):
        raise PropertyError("ErrorContainsFilterWrongType",
                            "The Contains filter can only be used for string properties.", field.elem)
    constant_elem = elem.find(t("Constant"))
    if constant_elem is None:
        raise _schema_fault("Contains has no Constant.")
    mode = elem.get("ContainmentMode", "FullString")
    comparison = elem.get("ContainmentComparison", "Exact")
    # "Loose" comparisons ignore case and non-spacing marks alike, as MAPI's FL_LOOSE does.
    ignore_case = "IgnoreCase" in comparison or comparison.startswith("Loose")
    ignore_non_spacing = "NonSpac" in comparison or comparison.startswith("Loose")
    wanted = _fold(constant_elem.get("Value", ""), ignore_case, ignore_non_spacing)

    def matches(text: str) -> bool:
        text = _fold(text, ignore_case, ignore_non_spacing)
        if mode == "FullString":
            return text == wanted
        if mode == "Prefixed":
            return text.startswith(wanted)
        if mode == "Substring":
            return wanted in text
        words = text.split()
        if mode == "PrefixOnWords":
            return any(word.startswith(wanted) for word in words)
        # ExactPhrase: the constant's words, whole and in a row.
        phrase = wanted.split()
        return bool(phrase) and any(words[i:i + len(phrase)] == phrase for i in range(len(words)))

    def predicate(item: Item) -> bool:
        value = field.get(item)
        if value is None:
            return False
        if isinstance(value, Mailbox):
            texts = [value.email, value.name]
        elif isinstance(value, list):
            texts = [str(part) for part in value]
        else:
            texts = [str(value)]
        return any(matches(text) for text in texts if text)

    return predicate


def _excludes(elem: etree._Element) -> Predicate:
    (field,) = _paths(elem)[:1]
    mask_elem = elem.find(t("Bitmask"))
    if mask_elem is None:
        raise _schema_fault("Excludes has no Bitmask.")
    text = mask_elem.get("Value", "").strip()
    try:
        mask = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        raise _schema_fault(f"The Bitmask value '{text}' is invalid.") from None
    if field.kind not in ("int", "bool", "enum", "absent"):
        raise PropertyError("ErrorInvalidExcludesRestriction",
                            "The Excludes restriction can only be used with integer properties.", field.elem)

    def predicate(item: Item) -> bool:
        value = field.get(item)
        if value is None:
            return False
        number = _normalize(field, value) if field.kind == "enum" else int(value)
        return number is not None and number & mask == 0

    return predicate


# -- sort order -----------------------------------------------------------------------------------------------------


def compile_sort_order(elem: etree._Element) -> list[tuple[Field, bool]]:
    """Read ``<m:SortOrder>``: (field, descending) per FieldOrder, most significant first."""
    orders = []
    for order in elem:
        if not isinstance(order.tag, str):
            continue
        direction = order.get("Order")
        if local(order) != "FieldOrder" or direction not in ("Ascending", "Descending"):
            raise _schema_fault("SortOrder holds FieldOrder elements with Order Ascending or Descending.")
        paths = [child for child in order if isinstance(child.tag, str) and local(child) in _FIELD_TAGS]
        if not paths:
            raise _schema_fault("FieldOrder has no property path.")
        orders.append((read_field(paths[0], _SORT), direction == "Descending"))
    if not orders:
        raise _schema_fault("SortOrder is empty.")
    return orders


def sort_key(field: Field) -> Callable[[Item], tuple[Any, ...]]:
    """A key that orders items by `field` as the store does: missing values first, strings without case."""

    def key(item: Item) -> tuple[Any, ...]:
        value = field.get(item)
        if value is None:
            return (0,)
        if isinstance(value, Mailbox):
            return (1, (value.name or value.email).casefold())
        value = _normalize(field, value)
        if value is None:
            return (0,)
        if isinstance(value, list):
            return (1, tuple(value))
        if isinstance(value, bool):
            return (1, int(value))
        return (1, value)

    return key


def sort_items(items: list[Item], orders: list[tuple[Field, bool]]) -> list[Item]:
    """`items` sorted by the sort order (stable: ties keep the order they came in)."""
    result = list(items)
    for field, descending in reversed(orders):
        result.sort(key=sort_key(field), reverse=descending)
    return result


# -- query strings ----------------------------------------------------------------------------------------------------


def compile_query_string(text: str) -> Predicate:
    """A small subset of AQS: every word (or "quoted phrase") must occur, without regard to case, in the subject,
    body, sender, recipients or categories; ``subject:word`` (and from:, to:, body:, category:) narrows a term
    to one property."""
    terms = _query_terms(text)

    def haystacks(item: Item) -> dict[str, str]:
        def boxes(*names: str) -> str:
            found = []
            for name in names:
                value = item.value(name)
                for box in value if isinstance(value, list) else [value]:
                    if isinstance(box, Mailbox):
                        found.append(f"{box.name} {box.email}")
            return " ".join(found)

        body = item.value("TextBody")
        return {
            "subject": str(item.value("Subject") or ""),
            "body": body.text if isinstance(body, Body) else "",
            "from": boxes("From", "Sender", "Organizer"),
            "to": boxes("ToRecipients", "CcRecipients", "BccRecipients"),
            "category": " ".join(item.value("Categories") or []),
        }

    def predicate(item: Item) -> bool:
        fields = {name: value.casefold() for name, value in haystacks(item).items()}
        everything = " ".join(fields.values())
        return all(word in fields.get(scope, everything) for scope, word in terms)

    return predicate


def _query_terms(text: str) -> list[tuple[str, str]]:
    terms, word, quoted = [], "", False
    for char in text + " ":
        if char == '"':
            quoted = not quoted
        elif char.isspace() and not quoted:
            if word:
                scope, colon, rest = word.partition(":")
                scope = scope.casefold()
                if colon and rest and scope in ("subject", "body", "from", "to", "category"):
                    terms.append((scope, rest.casefold()))
                elif word.upper() not in ("AND", "OR"):
                    terms.append(("", word.casefold()))
            word = ""
        else:
            word += char
    return terms


__all__ = [
    "ENUM_ORDER",
    "FIELD_URIS",
    "Field",
    "Predicate",
    "PropertyError",
    "compile_query_string",
    "compile_restriction",
    "compile_sort_order",
    "read_field",
    "sort_items",
    "sort_key",
]
