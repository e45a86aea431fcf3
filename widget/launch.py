"""Launch tokens: how a CRM vouches for its user, so that the widget opens signed in.

A token is `base64url(email|expires|nonce) "." hex(HMAC-SHA256(secret, email|expires|nonce))`, where expires
is a Unix time at most two minutes ahead and nonce is random. It is easy to make in any CRM's scripting
language (see the README). The widget checks the signature in constant time, refuses an expired token or
one that claims to live longer than two minutes, and accepts each nonce once. The address goes through the
same check as every other way in (widget.addresses).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from .addresses import AddressError, normalise_address
from .extensions import db
from .models import LaunchNonce

MAX_LIFETIME = 120  # seconds
CLOCK_SKEW = 30  # seconds a CRM's clock may run ahead of the widget's
MIN_NONCE, MAX_NONCE = 8, 100  # LaunchNonce.nonce holds 100


class LaunchRefused(Exception):
    """A launch token that must not sign anyone in; the message says why, without echoing the token."""


@dataclass(frozen=True)
class LaunchClaims:
    """What a valid token says."""

    email: str
    expires: int
    nonce: str


def sign(secret: str, email: str, *, lifetime: int = 60, now: float | None = None, nonce: str | None = None) -> str:
    """Make a token (what the CRM does; the widget uses it in tests and in its demo CRM page)."""
    expires = int((time.time() if now is None else now) + lifetime)
    payload = f"{email}|{expires}|{nonce or secrets.token_urlsafe(16)}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=") + "." + signature


def read(secret: str, token: str, *, now: float | None = None) -> LaunchClaims:
    """Check a token's signature and times; raises LaunchRefused. Does not spend the nonce (see `redeem`)."""
    if not secret:
        raise LaunchRefused("Signing in from the CRM is not set up: the administrator has no launch secret yet.")
    encoded, _, signature = token.strip().partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LaunchRefused("This sign-in link is malformed.") from None
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise LaunchRefused("This sign-in link is not signed by your CRM.")
    email, expires_text, nonce = (payload.split("|") + ["", ""])[:3]
    if not expires_text.isdigit() or len(expires_text) > 12 or not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        raise LaunchRefused("This sign-in link is malformed.")
    try:
        email = normalise_address(email)
    except AddressError as error:
        raise LaunchRefused(f"This sign-in link does not name an address the widget takes: {error}.") from None
    moment = time.time() if now is None else now
    expires = int(expires_text)
    if expires <= moment:
        raise LaunchRefused("This sign-in link has expired. Open the widget from your CRM again.")
    if expires > moment + MAX_LIFETIME + CLOCK_SKEW:
        raise LaunchRefused("This sign-in link lives longer than two minutes, which the widget does not accept.")
    return LaunchClaims(email=email, expires=expires, nonce=nonce)


def redeem(claims: LaunchClaims) -> None:
    """Spend a token's nonce: a second use of the same token is refused (LaunchRefused)."""
    now = datetime.now(UTC)
    db.session.execute(db.delete(LaunchNonce).where(LaunchNonce.expires_at < now))
    db.session.add(LaunchNonce(nonce=claims.nonce, expires_at=datetime.fromtimestamp(claims.expires, UTC)))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise LaunchRefused("This sign-in link was already used. Open the widget from your CRM again.") from None
