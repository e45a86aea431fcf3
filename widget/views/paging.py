"""Numbers read from a query string: the page a listing is asked for (`?page=N`), shared by the related lists and the
sync history, and the ids of the widget's rows."""

from __future__ import annotations

from flask import request

MAX_PAGE = 100_000  # far beyond any list's last page, and an OFFSET every database can compute
MAX_ID = 2**31 - 1  # PostgreSQL's INTEGER


def page_number() -> int:
    """The requested page, 1 for a missing, non-numeric or non-positive one (the lists clamp it to their last)."""
    try:
        return min(MAX_PAGE, max(1, int(request.args.get("page", "1"))))
    except ValueError:
        return 1


def row_id(text: str) -> int | None:
    """A row id written in ASCII digits, within the database's integer columns; None for anything else (such as
    "²", which str.isdigit accepts and int refuses, or a number no row can have)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ID:
        return None
    return int(text)
