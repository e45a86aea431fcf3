"""SOAP 1.1 envelopes as Exchange Web Services writes and reads them.

Everything that knows the shape of an envelope lives here: parsing a request into its header parts and
its operation element, and building replies, per-item response messages and SOAP faults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
E_NS = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAP_NS, "m": M_NS, "t": T_NS}

# The RequestServerVersion values of the schema this server speaks (Exchange 2016 publishes these).
SUPPORTED_VERSIONS = frozenset(
    "Exchange2007 Exchange2007_SP1 Exchange2009 Exchange2010 Exchange2010_SP1 Exchange2010_SP2 Exchange2012 "
    "Exchange2013 Exchange2013_SP1 Exchange2015 Exchange2016 V2015_10_05 V2016_01_06 V2016_04_13 V2016_07_13 "
    "V2016_10_10".split()
)

# Exchange 2016 CU23. Its servers report a "V2017_07_11" style Version, which clients must cope with.
SERVER_BUILD = {"MajorVersion": "15", "MinorVersion": "1", "MajorBuildNumber": "2507", "MinorBuildNumber": "39"}
SERVER_VERSION_STRING = "V2017_07_11"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=True)


def m(tag: str) -> str:
    """Qualified name in the messages namespace."""
    return f"{{{M_NS}}}{tag}"


def t(tag: str) -> str:
    """Qualified name in the types namespace."""
    return f"{{{T_NS}}}{tag}"


def sub(parent: etree._Element, qname: str, text: Any = None, **attrs: Any) -> etree._Element:
    """Append a child element, with optional text and attributes (None values are left out)."""
    child = etree.SubElement(parent, qname, {k: str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        child.text = text if isinstance(text, str) else str(text)
    return child


def local(elem: etree._Element) -> str:
    """The local part of an element's tag."""
    return etree.QName(elem).localname


class EwsFault(Exception):
    """A request-level failure, answered as a SOAP fault (HTTP 500), as Exchange does."""

    def __init__(self, code: str, message: str, *, values: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.values = values or {}


class ItemError(Exception):
    """A per-item failure, answered inside the operation's response message with ResponseClass Error."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SoapRequest:
    """What the server needs to know of one incoming envelope."""

    operation: etree._Element
    headers: list[etree._Element] = field(default_factory=list)
    requested_version: str | None = None
    impersonated: str | None = None

    @property
    def name(self) -> str:
        """The operation's name, e.g. 'GetFolder' (GetUserAvailability's element is GetUserAvailabilityRequest)."""
        return local(self.operation).removesuffix("Request")


def parse_request(data: bytes) -> SoapRequest:
    """Parse a SOAP envelope; a malformed one is an ErrorSchemaValidation fault, as in Exchange."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {exc}") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: no SOAP Envelope.")
    body = root.find(f"{{{SOAP_NS}}}Body")
    if body is None or len(body) == 0:
        raise EwsFault("ErrorSchemaValidation", "The request failed schema validation: empty SOAP Body.")
    header = root.find(f"{{{SOAP_NS}}}Header")
    headers = list(header) if header is not None else []
    request = SoapRequest(operation=body[0], headers=headers)
    for part in headers:
        name = local(part)
        if name == "RequestServerVersion":
            request.requested_version = part.get("Version")
        elif name == "ExchangeImpersonation":
            address = part.find(f".//{t('PrimarySmtpAddress')}")
            if address is None:
                address = part.find(f".//{t('SmtpAddress')}")
            if address is None:
                address = part.find(f".//{t('PrincipalName')}")
            if address is not None and address.text:
                request.impersonated = address.text.strip().lower()
    return request


def server_version_info() -> etree._Element:
    """The ServerVersionInfo header Exchange puts on every reply."""
    return etree.Element(t("ServerVersionInfo"), {**SERVER_BUILD, "Version": SERVER_VERSION_STRING}, nsmap={"t": T_NS})


def envelope(body_child: etree._Element | None, *, fault: etree._Element | None = None) -> etree._Element:
    """A reply envelope carrying ServerVersionInfo and either a response or a fault."""
    root = etree.Element(f"{{{SOAP_NS}}}Envelope", nsmap=NSMAP)
    header = sub(root, f"{{{SOAP_NS}}}Header")
    header.append(server_version_info())
    body = sub(root, f"{{{SOAP_NS}}}Body")
    body.append(body_child if fault is None else fault)
    return root


def fault_element(error: EwsFault) -> etree._Element:
    """A SOAP 1.1 Fault with the EWS ResponseCode, Message and MessageXml in its detail, as Exchange writes it."""
    fault = etree.Element(f"{{{SOAP_NS}}}Fault", nsmap={"s": SOAP_NS})
    code = etree.SubElement(fault, "faultcode", nsmap={"a": T_NS})
    if error.code == "ErrorSchemaValidation":
        code.text = "s:Client"
    elif error.code == "ErrorInternalServerError":
        code.text = "s:Server"
    else:
        code.text = f"a:{error.code}"
    reason = sub(fault, "faultstring", error.message)
    reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    detail = sub(fault, "detail")
    etree.SubElement(detail, f"{{{E_NS}}}ResponseCode", nsmap={"e": E_NS}).text = error.code
    etree.SubElement(detail, f"{{{E_NS}}}Message", nsmap={"e": E_NS}).text = error.message
    if error.values:
        xml = etree.SubElement(detail, t("MessageXml"), nsmap={"t": T_NS})
        for name, value in error.values.items():
            sub(xml, t("Value"), value, Name=name)
    return fault


def to_bytes(root: etree._Element) -> bytes:
    """Serialise an envelope with an XML declaration, as Exchange does."""
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def response_message(
    container: etree._Element, name: str, error: ItemError | None = None, *, warning: bool = False
) -> etree._Element:
    """Append an <m:{name}ResponseMessage> with its ResponseClass, ResponseCode and, on error, MessageText."""
    message = etree.SubElement(container, m(f"{name}ResponseMessage"))
    if error is None:
        message.set("ResponseClass", "Success")
        sub(message, m("ResponseCode"), "NoError")
    else:
        message.set("ResponseClass", "Warning" if warning else "Error")
        sub(message, m("MessageText"), error.message)
        sub(message, m("ResponseCode"), error.code)
        sub(message, m("DescriptiveLinkKey"), "0")
        if name in ("SyncFolderItems", "SyncFolderHierarchy"):
            # Exchange still writes an empty state and a final flag on a failed sync, and clients read them.
            sub(message, m("SyncState"), "")
            sub(message, m("IncludesLastItemInRange"), "true")
    return message


def operation_response(name: str) -> tuple[etree._Element, etree._Element]:
    """The <m:{name}Response> element and its <m:ResponseMessages> container."""
    response = etree.Element(m(f"{name}Response"), nsmap={"m": M_NS, "t": T_NS})
    return response, sub(response, m("ResponseMessages"))
