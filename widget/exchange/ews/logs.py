"""Keep passwords and mail out of the logs that exchangelib writes.

exchangelib logs request headers (with the Authorization header) and whole SOAP documents: at DEBUG on every
request, and at ERROR with full context when a request fails. A filter on each of its loggers removes
Authorization values and SOAP bodies from every record before any handler sees it.
"""

from __future__ import annotations

import logging
import re

_AUTHORIZATION = re.compile(r"(?i)('?(?:proxy-)?authorization'?\s*[:=]\s*)('[^']*'|\"[^\"]*\"|[^,}\n]+)")
# From the XML declaration or the Envelope's start to the Envelope's end (or to the end, if cut short).
_SOAP_TEXT = re.compile(r"(?:b['\"])?(?:<\?xml|<(?:\w+:)?Envelope\b).*?(?:</(?:\w+:)?Envelope>['\"]?|\Z)", re.S)


def redact(text: str) -> str:
    """A log text without Authorization values and SOAP documents."""
    text = _AUTHORIZATION.sub(r"\1[redacted]", text)
    return _SOAP_TEXT.sub("[SOAP document redacted]", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with the secrets taken out."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: drop the arguments, keep the text
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


_FILTER = RedactingFilter()


def keep_secrets_out_of_exchangelib_logs() -> None:
    """Attach the filter to every exchangelib logger (filters do not apply to child loggers by themselves)."""
    import exchangelib  # noqa: F401 - its modules create their loggers on import

    for name in list(logging.root.manager.loggerDict):
        if name == "exchangelib" or name.startswith("exchangelib."):
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)
