"""Where the tests find the official EWS schema: beside the checkout, or where WIDGET_EWS_SCHEMA_DIR points."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

from widget.sandbox import Sandbox
from widget.sandbox.schema import SchemaValidator, load_schema, schema_available

__all__ = ["SchemaValidator", "load_schema", "schema_available", "schema_dir", "session_validator", "watch_schema"]


def schema_dir() -> Path:
    """The folder with messages.xsd, types.xsd and xml.xsd."""
    configured = os.environ.get("WIDGET_EWS_SCHEMA_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "ews-schema"


@cache
def session_validator() -> SchemaValidator | None:
    """The validator shared by the whole test run; None when the schema folder is missing."""
    folder = schema_dir()
    return SchemaValidator(load_schema(folder)) if schema_available(folder) else None


def watch_schema(sandbox: Sandbox) -> Callable[[], None]:
    """Validate every document `sandbox` receives and sends; return a check that fails on new invalid ones."""
    validator = session_validator()
    if validator is None:
        return lambda: None
    sandbox.observers.append(validator)
    seen = len(validator.failures)

    def check() -> None:
        new = validator.failures[seen:]
        assert not new, "SOAP documents failed EWS schema validation:\n" + "\n".join(new[:20])

    return check
