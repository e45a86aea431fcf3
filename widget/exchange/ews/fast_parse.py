"""exchangelib's SyncFolderItems and GetItem services, parsing each answer in one pass over its body.

exchangelib reads every SOAP answer through `response.iter_content()`, whose default chunk is ONE byte, into
lxml's incremental parser: for a page of 512 message summaries (about a megabyte) that is a million generator
steps, a quarter to a third of the client's CPU in a sync. These services are not streaming: `requests` has
already read the whole body into memory before exchangelib looks at it, so the same bytes are handed to the same
parser (exchangelib's `to_xml`, with its settings: no entity substitution, no network, forgiving of Exchange's odd
XML) in one call. Everything after the parse is exchangelib's own: SOAP faults, ErrorServerBusy and its back-off,
ErrorInvalidSyncStateData, the API version negotiation; HTTP errors and 503 Retry-After are handled before it.

The hook, `EWSService._get_soap_parts(response)`, is private to exchangelib: pyproject.toml pins exchangelib's
minor version, and tests/sandbox/test_fast_parse.py fails if the hook moves or changes its signature.
"""

from __future__ import annotations

import re
from typing import Any

from exchangelib.errors import MalformedResponseError, SOAPError
from exchangelib.services import GetItem, SyncFolderItems
from exchangelib.services.common import EWSService
from exchangelib.util import SOAPNS, ParseError, to_xml

# A page of 512 summaries is about 1 MB and 100 bodies a few MB. Beyond this, the answer is parsed the way
# exchangelib always did, so that the one-pass parse never holds more than this in one buffer beside its tree.
MAX_WHOLE_PARSE_BYTES = 64 * 1024 * 1024
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")


def _declares_doctype(content: bytes) -> bool:
    """Whether the document's prolog (what comes before its first element) holds a DOCTYPE.

    Exchange never sends one; a DOCTYPE is how hostile XML declares entities (billion laughs, external files).
    """
    first = _FIRST_ELEMENT.search(content)
    prolog = content[: first.start() if first else len(content)]
    return b"<!DOCTYPE" in prolog.upper()


class WholeBodyParsing(EWSService):
    """Mixin for a non-streaming exchangelib service: parse each SOAP answer in one pass (see the module)."""

    @classmethod
    def _get_soap_parts(cls, response: Any) -> tuple[Any, Any]:
        """The SOAP header and body of an answer, as exchangelib's own `_get_soap_parts` returns them."""
        content = response.content  # bytes: requests already read the body (these services never stream)
        if not isinstance(content, bytes):
            return super()._get_soap_parts(response)
        if _declares_doctype(content):
            raise SOAPError("Bad SOAP response: it declares a DOCTYPE")
        if len(content) > MAX_WHOLE_PARSE_BYTES:
            return super()._get_soap_parts(response)
        try:
            root = to_xml(content)
        except ParseError as error:
            raise SOAPError(f"Bad SOAP response: {error}") from None
        header = root.find(f"{{{SOAPNS}}}Header")  # absent when the answer is a SOAP fault
        body = root.find(f"{{{SOAPNS}}}Body")
        if body is None:
            raise MalformedResponseError("No Body element in SOAP response")
        return header, body


class FastSyncFolderItems(WholeBodyParsing, SyncFolderItems):
    """SyncFolderItems, each page parsed in one pass."""


class FastGetItem(WholeBodyParsing, GetItem):
    """GetItem, each batch parsed in one pass."""
