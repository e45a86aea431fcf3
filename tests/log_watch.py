"""Every log record of the test run, kept so that the run can prove no password ever reached a log."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable


class LogCollector(logging.Handler):
    """Keeps the formatted text of every record (DEBUG and up) of every logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception:  # a broken record must not break the test run; keep what can be kept
            self.texts.append(str(record.msg))


def secret_forms(secrets: Iterable[str], logins: Iterable[str]) -> set[str]:
    """Each secret as it could appear in a log: as is, and inside Basic credentials of each login."""
    forms = set()
    for secret in secrets:
        forms.add(secret)
        for login in logins:
            forms.add(base64.b64encode(f"{login}:{secret}".encode()).decode())
    return forms


def leaks(texts: Iterable[str], forms: set[str]) -> list[str]:
    """The log texts that contain any of `forms` (shortened, with the secret masked)."""
    found = []
    for text in texts:
        for form in forms:
            if form in text:
                found.append(text.replace(form, "«SECRET»")[:300])
    return found
