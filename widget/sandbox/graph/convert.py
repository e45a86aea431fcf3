"""What Graph's JSON and the store's items share: ids, dates and times, addresses, bodies, errors.

Graph ids are the store's ids in base64url (Exchange's REST ids are its EWS ids with '-' and '_' for '/' and
'+'), so the same item has one id per protocol and either converts to the other.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

from ..items import Body, Mailbox


class GraphError(Exception):
    """An error Graph answers with: HTTP status, code and message (and headers such as Retry-After)."""

    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []

    def body(self, client_request_id: str | None = None) -> dict[str, Any]:
        """The JSON body, as Graph writes it: {"error": {"code", "message", "innerError"}}."""
        request_id = str(uuid.uuid4())
        return {"error": {"code": self.code, "message": self.message, "innerError": {
            "date": format_datetime(datetime.now(UTC)),
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }}}


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    """A 400 with a message that says what is wrong."""
    return GraphError(400, code, message)


def not_found(what: str = "The specified object was not found in the store.") -> GraphError:
    """Graph's 404 for an item, folder or event that is not there."""
    return GraphError(404, "ErrorItemNotFound", what)


def graph_id(store_id: str) -> str:
    """The Graph form of a store id."""
    return store_id.replace("/", "-").replace("+", "_")


def store_id(graph_form: str) -> str:
    """The store id of a Graph id."""
    return graph_form.replace("-", "/").replace("_", "+")


def format_datetime(value: datetime) -> str:
    """An Edm.DateTimeOffset as Graph writes it (UTC, whole seconds, 'Z')."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: Any, name: str) -> datetime:
    """An ISO 8601 date and time from a client (without an offset: UTC)."""
    if not isinstance(text, str):
        raise bad_request(f"'{name}' must be an ISO 8601 date and time.")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"'{text}' is not a valid date and time for '{name}'.") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def zone_named(name: str) -> tzinfo:
    """A time zone by its Windows name ("W. Europe Standard Time") or IANA name ("Europe/Berlin")."""
    if name.upper() == "UTC":
        return UTC
    iana = win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(f"A valid TimeZone value must be specified. The following TimeZone value is not "
                          f"supported: '{name}'.", "TimeZoneNotSupportedException") from None


def zone_display_name(name: str) -> str:
    """The name Graph echoes for a zone: Windows names stay, IANA names become Windows names where one exists."""
    return name if name in win_tz or name.upper() == "UTC" else tz_win.get(name, name)


def date_time_time_zone(value: datetime, zone_name: str = "UTC") -> dict[str, str]:
    """A dateTimeTimeZone in `zone_name` (Graph's form: seven decimals, no offset)."""
    local = value.astimezone(zone_named(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_display_name(zone_name)}


def parse_date_time_time_zone(value: Any, name: str) -> datetime:
    """A dateTimeTimeZone from a client, as a UTC datetime."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise bad_request(f"'{name}' must be a dateTimeTimeZone with 'dateTime' and 'timeZone'.")
    zone = zone_named(value.get("timeZone") or "UTC")
    try:
        local = datetime.fromisoformat(value["dateTime"].strip().replace("Z", "+00:00")[:26])
    except ValueError:
        raise bad_request(f"'{value['dateTime']}' is not a valid date and time for '{name}'.") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone)
    return local.astimezone(UTC)


def recipient(box: Mailbox | None) -> dict[str, Any] | None:
    """A recipient: {"emailAddress": {"name", "address"}}."""
    if box is None:
        return None
    return {"emailAddress": {"name": box.name or box.email, "address": box.email}}


def parse_recipient(value: Any, name: str) -> Mailbox:
    """A recipient from a client."""
    address = value.get("emailAddress") if isinstance(value, dict) else None
    email = address.get("address") if isinstance(address, dict) else None
    if not isinstance(email, str) or "@" not in email:
        raise bad_request(f"At least one recipient in '{name}' is not valid: an emailAddress with an address is "
                          "required.", "ErrorInvalidRecipients")
    display = address.get("name") or ""
    if not isinstance(display, str):
        raise bad_request(f"'{name}' holds a name that is not a string.")
    return Mailbox(email.strip().lower(), display.strip())


def parse_recipients(value: Any, name: str) -> list[Mailbox]:
    """A list of recipients from a client."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"'{name}' must be a list of recipients.")
    return [parse_recipient(entry, name) for entry in value]


def body_json(body: Body | None) -> dict[str, str]:
    """An itemBody."""
    if body is None:
        return {"contentType": "text", "content": ""}
    return {"contentType": "html" if body.body_type == "HTML" else "text", "content": body.text}


def parse_body(value: Any) -> Body:
    """An itemBody from a client."""
    if not isinstance(value, dict):
        raise bad_request("'body' must be an itemBody with 'contentType' and 'content'.")
    kind = str(value.get("contentType") or "text").lower()
    content = value.get("content") or ""
    if kind not in ("text", "html") or not isinstance(content, str):
        raise bad_request("'body.contentType' must be 'text' or 'html' and 'body.content' a string.")
    return Body("HTML" if kind == "html" else "Text", content)


def parse_json(body: bytes) -> dict[str, Any]:
    """A request's JSON object."""
    try:
        data = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request("Unable to read JSON request payload. Please ensure Content-Type header is set and "
                          "payload is of valid JSON format.", "BadRequest") from None
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", "BadRequest")
    return data


def lower_first(text: str) -> str:
    """EWS's "NotStarted" as Graph's "notStarted"."""
    return text[:1].lower() + text[1:]


def upper_first(text: str) -> str:
    """Graph's "notStarted" as EWS's "NotStarted"."""
    return text[:1].upper() + text[1:]
