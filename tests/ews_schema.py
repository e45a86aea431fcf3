"""Where the tests find the official EWS schema: beside the checkout, or where WIDGET_EWS_SCHEMA_DIR points."""

from __future__ import annotations

import os
from pathlib import Path

from widget.sandbox.schema import SchemaValidator, load_schema, schema_available

__all__ = ["SchemaValidator", "load_schema", "schema_available", "schema_dir"]


def schema_dir() -> Path:
    """The folder with messages.xsd, types.xsd and xml.xsd."""
    configured = os.environ.get("WIDGET_EWS_SCHEMA_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "ews-schema"
