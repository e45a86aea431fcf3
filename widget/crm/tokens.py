"""Bearer tokens for the CRM's webhooks (`POST /api/crm/records`).

A token is 32 random bytes (URL-safe text with a `wgt_` prefix, so that secret scanners can spot a leaked
one). It is shown once, when it is issued; only its SHA-256 is stored. A presented token is checked by
comparing its hash with every stored hash in constant time. A revoked token stays listed (with when it was
revoked) and is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from ..extensions import db
from ..models import ApiToken

PREFIX = "wgt_"
MAX_NAME = 100


class TokenRefused(Exception):
    """Why a presented token opens nothing, in words for the caller."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def digest(token: str) -> str:
    """The SHA-256 (hex) of a token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """A token's name, trimmed; ValueError says what is wrong."""
    name = " ".join(name.split())
    if not name:
        raise ValueError("Give the token a name, e.g. the CRM or webhook that will use it.")
    if len(name) > MAX_NAME:
        raise ValueError(f"A token's name has at most {MAX_NAME} characters.")
    return name


def issue(name: str) -> tuple[ApiToken, str]:
    """A new token (in the caller's transaction): its row and the token itself, to be shown once."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=check_name(name), token_sha256=digest(token), created_at=datetime.now(UTC))
    db.session.add(row)
    db.session.flush()
    return row, token


def authenticate(token: str) -> ApiToken:
    """The stored token that `token` is; TokenRefused when it is unknown or revoked."""
    presented = digest(token)
    match_id = None
    for token_id, stored in db.session.execute(db.select(ApiToken.id, ApiToken.token_sha256)):
        if hmac.compare_digest(stored, presented):  # every row is compared: the time says nothing
            match_id = token_id
    row = db.session.get(ApiToken, match_id) if match_id is not None else None
    if row is None:
        raise TokenRefused("the bearer token is not valid")
    if row.revoked_at is not None:
        raise TokenRefused("the bearer token was revoked")
    return row


def revoke(row: ApiToken) -> bool:
    """Revoke a token (in the caller's transaction); False if it was revoked already."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = datetime.now(UTC)
    return True
