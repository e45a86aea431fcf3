"""The page a listing is asked for (`?page=N`), shared by the related lists and the sync history."""

from __future__ import annotations

from flask import request


def page_number() -> int:
    """The requested page, 1 for a missing, non-numeric or non-positive one (the lists clamp it to their last)."""
    try:
        return max(1, int(request.args.get("page", "1")))
    except ValueError:
        return 1
