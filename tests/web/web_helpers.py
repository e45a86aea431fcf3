"""Helpers for web tests: CSRF tokens as a real page carries them, and form posts with them."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/signin") -> str:
    """The CSRF token a page of `path` carries (the session keeps it)."""
    page = client.get(path)
    match = _CSRF.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, *, token_from: str | None = None,
         **kwargs: Any) -> Any:
    """POST a form with the CSRF token a real page would carry."""
    data = dict(data or {})
    data["csrf_token"] = csrf_token(client, token_from or path)
    return client.post(path, data=data, **kwargs)


