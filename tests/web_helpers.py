"""Helpers for web tests: CSRF tokens as a real page carries them, and form posts with them."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
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




def signed_in(app: Flask, email: str, password: str | None = None) -> FlaskClient:
    """A new browser, signed in as `email` through /signin (the sandbox checks the password; by default the one
    the test organisation gives that address, else the web tests' administrator's)."""
    from contoso import EXTRA_SECRETS, PASSWORDS

    client = app.test_client()
    password = password or PASSWORDS.get(email) or EXTRA_SECRETS[0]
    reply = post(client, "/signin", {"email": email, "password": password, "domain": ""})
    assert reply.status_code == 302, reply.get_data(as_text=True)
    return client
