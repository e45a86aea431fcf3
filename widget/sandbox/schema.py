"""The official EWS schema, loaded with lxml, and a validator of the SOAP documents the sandbox sees.

The schema files (messages.xsd, types.xsd, xml.xsd) are those every Exchange server publishes under /EWS/;
the project does not ship them. Tests find them beside the checkout; `flask --app widget sandbox --schema DIR`
checks a running sandbox's traffic against them. Two repairs happen in memory while loading, never in the
files: the `xml:` namespace import gets its location, and the non-deterministic ArrayOfTransitionsType
sequence is replaced by the equivalent substitution-group reference that libxml2 accepts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"


def schema_available(folder: Path) -> bool:
    """Whether messages.xsd, types.xsd and xml.xsd are all in `folder`."""
    return all((folder / name).is_file() for name in ("messages.xsd", "types.xsd", "xml.xsd"))


class _SchemaResolver(etree.Resolver):
    def __init__(self, folder: Path):
        super().__init__()
        self.folder = folder

    def resolve(self, url, pubid, context):  # noqa: ANN001, ANN201 - lxml's signature
        name = (url or "").rsplit("/", 1)[-1]
        if url == "http://www.w3.org/XML/1998/namespace" or name == "xml.xsd":
            return self.resolve_filename(str(self.folder / "xml.xsd"), context)
        if name == "types.xsd":
            return self.resolve_string(_repaired_types(self.folder), context)
        if (self.folder / name).is_file():
            return self.resolve_filename(str(self.folder / name), context)
        return None


def _repaired_types(folder: Path) -> bytes:
    tree = etree.parse(str(folder / "types.xsd"))
    root = tree.getroot()
    for imp in root.findall(f"{{{XS}}}import"):
        if imp.get("namespace") == "http://www.w3.org/XML/1998/namespace" and not imp.get("schemaLocation"):
            imp.set("schemaLocation", "xml.xsd")
    transitions = root.find(f"{{{XS}}}complexType[@name='ArrayOfTransitionsType']")
    if transitions is not None:
        sequence = transitions.find(f"{{{XS}}}sequence")
        if sequence is not None:
            for child in list(sequence):
                sequence.remove(child)
            etree.SubElement(sequence, f"{{{XS}}}element", ref="t:Transition", minOccurs="0", maxOccurs="unbounded")
    return etree.tostring(tree)


@cache
def load_schema(folder: Path) -> etree.XMLSchema:
    """The compiled schema of messages and types in `folder` (about 0.3 s; loaded once per process and folder)."""
    parser = etree.XMLParser()
    parser.resolvers.add(_SchemaResolver(folder))
    wrapper = (
        f'<xs:schema xmlns:xs="{XS}" targetNamespace="urn:ews-sandbox-validation" elementFormDefault="qualified">'
        f'<xs:import namespace="{M_NS}" schemaLocation="{(folder / "messages.xsd").as_uri()}"/>'
        f'<xs:import namespace="{T_NS}" schemaLocation="types.xsd"/>'
        "</xs:schema>"
    )
    doc = etree.fromstring(wrapper.encode(), parser, base_url=(folder / "wrapper.xsd").as_uri())
    return etree.XMLSchema(doc)


@dataclass
class SchemaValidator:
    """Validates the Body child and each Header child of SOAP envelopes; keeps every failure."""

    schema: etree.XMLSchema
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    # A sandbox validates from its request threads; the schema's error log is not safe to share between them.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def parts(self, envelope: etree._Element) -> list[etree._Element]:
        """The parts of an envelope the EWS schema covers (a SOAP Fault is the envelope schema's business)."""
        parts: list[etree._Element] = []
        header = envelope.find(f"{{{SOAP_NS}}}Header")
        if header is not None:
            parts.extend(child for child in header if isinstance(child.tag, str))
        body = envelope.find(f"{{{SOAP_NS}}}Body")
        if body is not None:
            parts.extend(
                child for child in body if isinstance(child.tag, str) and etree.QName(child).namespace != SOAP_NS
            )
        return parts

    def errors(self, envelope: etree._Element) -> list[str]:
        """Schema errors of an envelope's parts, each with the part's name."""
        found = []
        for part in self.parts(envelope):
            document = etree.fromstring(etree.tostring(part))
            with self._lock:
                self.checked += 1
                if not self.schema.validate(document):
                    for error in self.schema.error_log:
                        found.append(f"{etree.QName(part).localname}: line {error.line}: {error.message}")
        return found

    def __call__(self, direction: str, envelope: etree._Element) -> None:
        for error in self.errors(envelope):
            self.failures.append(f"{direction} {error}")
