"""What a mailbox sends, fitted to the widget's columns before it is stored.

Mail, meetings and tasks come from outside the organisation: a name, an address, a location or a meeting's UID may be
longer than any column holds. PostgreSQL refuses what does not fit (SQLite would keep it whole), and one such item
must not fail its folder's sync on every run: text is cut to its column; an item whose own id or version does not
fit cannot be written back later, so it is left out, with a line in the sync history.
"""

from __future__ import annotations

from typing import Any

from ..models import CalendarItem, Email, Task

_WIDTHS: dict[int, int | None] = {}


def width(column: Any) -> int | None:
    """The most characters a model's column holds (None: no limit). Looked up once per column: reading a mapped
    attribute's type goes through SQLAlchemy's instrumentation, and a sync asks for each of its messages."""
    key = id(column)
    if key not in _WIDTHS:
        _WIDTHS[key] = getattr(column.type, "length", None)
    return _WIDTHS[key]


def fit(text: str | None, column: Any) -> str | None:
    """`text` cut to what the column holds (NULs removed: PostgreSQL cannot store them)."""
    if not text:
        return text
    text = text.replace("\x00", "")
    limit = width(column)
    return text[:limit] if limit is not None else text


_ID_COLUMNS = {Email: (Email.item_id, Email.change_key), CalendarItem: (CalendarItem.item_id, CalendarItem.change_key),
               Task: (Task.item_id, Task.change_key)}


def unstorable(model: type, item_id: str, change_key: str | None) -> str | None:
    """Why an item's id or version cannot be kept in `model`'s table, or None when it can."""
    id_column, key_column = _ID_COLUMNS[model]
    if len(item_id) > (width(id_column) or len(item_id)):
        return f"its id is longer than the {width(id_column)} characters the widget keeps"
    if change_key and len(change_key) > (width(key_column) or len(change_key)):
        return f"its version is longer than the {width(key_column)} characters the widget keeps"
    return None
