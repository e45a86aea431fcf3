"""Searching text columns with LIKE: what a person types is matched literally, its % and _ included."""

from __future__ import annotations

LIKE_ESCAPE = "\\"


def contains(query: str, *, lower: bool = False) -> str:
    """A LIKE pattern (escaped with LIKE_ESCAPE) that matches `query` anywhere; lower-cased with `lower`, for a
    comparison against func.lower(column)."""
    text = query.lower() if lower else query
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
