"""Encryption of stored passwords (Exchange passwords, the service account's, the launch secret).

MultiFernet: the first key encrypts, every key decrypts, so keys rotate by putting a new one first. The keys
live outside the database (the instance folder or the environment), so a copy of the database alone reveals
no password.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


class SecretUnreadable(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _cipher() -> MultiFernet:
    return current_app.extensions["widget.cipher"]


def make_cipher(keys: tuple[str, ...]) -> MultiFernet:
    """The cipher for a deployment's keys (newest first)."""
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plain: str) -> str:
    """Encrypt a secret for storage."""
    return _cipher().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a stored secret; SecretUnreadable if no configured key opens it."""
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretUnreadable("a stored secret cannot be decrypted with the configured keys") from None
