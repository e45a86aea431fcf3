"""Lookups that touch no mailbox content: ConvertId, ResolveNames, GetServerTimeZones."""

from __future__ import annotations

from lxml import etree

from .. import timezones
from ..items import Mailbox
from ..soap import EwsFault, ItemError, m, operation_response, response_message, sub, t
from . import Context, operation

_ID_FORMATS = ("EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId")


@operation("ConvertId")
def convert_id(ctx: Context, op: etree._Element) -> etree._Element:
    """ConvertId: the sandbox's ids look the same in every format, so a known id converts to itself."""
    destination = op.get("DestinationFormat")
    if destination not in _ID_FORMATS:
        raise EwsFault(
            "ErrorSchemaValidation", f"The request failed schema validation: DestinationFormat '{destination}'."
        )
    response, messages = operation_response("ConvertId")
    source_ids = op.find(m("SourceIds"))
    for source in source_ids if source_ids is not None else []:
        source_id = source.get("Id", "")
        mailbox = (source.get("Mailbox") or "").lower()
        known = source_id in ctx.store.items or source_id in ctx.store.folders
        if not known:
            response_message(messages, "ConvertId", ItemError("ErrorInvalidIdMalformed", "Id is malformed."))
            continue
        if mailbox not in ctx.store.users:
            response_message(
                messages,
                "ConvertId",
                ItemError("ErrorNonExistentMailbox", f"No mailbox with such guid or address: {mailbox}"),
            )
            continue
        message = response_message(messages, "ConvertId")
        alternate = sub(message, m("AlternateId"), Format=destination, Id=source_id, Mailbox=mailbox)
        alternate.set("{http://www.w3.org/2001/XMLSchema-instance}type", "t:AlternateIdType")
    return response


def _matches(query: str, mailbox: Mailbox, extra: tuple[str, ...] = ()) -> bool:
    """Ambiguous name resolution: the query is a prefix of a whole name, address or alias, or of one of its words."""
    query = query.lower().removeprefix("smtp:")
    values = [value.lower() for value in (mailbox.email, mailbox.name, *extra)]
    return any(value.startswith(query) or any(word.startswith(query) for word in value.split()) for value in values)


@operation("ResolveNames")
def resolve_names(ctx: Context, op: etree._Element) -> etree._Element:
    """ResolveNames over the organisation's directory (and the user's Contacts folder), one name per request."""
    entries = op.findall(m("UnresolvedEntry"))
    if len(entries) != 1:
        raise EwsFault(
            "ErrorSchemaValidation", "The request failed schema validation: ResolveNames takes one UnresolvedEntry."
        )
    query = (entries[0].text or "").strip()
    response, messages = operation_response("ResolveNames")
    if not query:
        response_message(messages, "ResolveNames", ItemError("ErrorNameResolutionNoResults", "No results were found."))
        return response
    found = [u.mailbox for u in ctx.store.users.values() if _matches(query, u.mailbox, (u.username,))]
    found.sort(key=lambda box: box.email)
    if not found:
        response_message(messages, "ResolveNames", ItemError("ErrorNameResolutionNoResults", "No results were found."))
        return response
    error = None
    if len(found) > 1:
        error = ItemError("ErrorNameResolutionMultipleResults", "Multiple results were found.")
    message = response_message(messages, "ResolveNames", error, warning=True)
    resolution_set = sub(
        message,
        m("ResolutionSet"),
        TotalItemsInView=str(len(found)),
        IncludesLastItemInRange="true",
    )
    for box in found[:100]:
        resolution = sub(resolution_set, t("Resolution"))
        box.as_xml(resolution)
    return response


@operation("GetServerTimeZones")
def get_server_time_zones(ctx: Context, op: etree._Element) -> etree._Element:
    """GetServerTimeZones: all zones, or the asked-for ids, with or without their transition rules."""
    full = op.get("ReturnFullTimeZoneData", "true") in ("true", "1")
    ids_elem = op.find(m("Ids"))
    wanted = [i.text or "" for i in ids_elem] if ids_elem is not None else timezones.windows_zone_ids()
    response, messages = operation_response("GetServerTimeZones")
    definitions = []
    for zone_id in wanted:
        try:
            definitions.append(timezones.time_zone_definition(zone_id, full))
        except KeyError:
            response_message(
                messages,
                "GetServerTimeZones",
                ItemError(
                    "ErrorTimeZone",
                    f"The time zone '{zone_id}' is not valid.",
                ),
            )
            return response
    message = response_message(messages, "GetServerTimeZones")
    container = sub(message, m("TimeZoneDefinitions"))
    for definition in definitions:
        container.append(definition)
    return response
