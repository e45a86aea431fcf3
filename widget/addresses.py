"""E-mail addresses as the widget accepts them, the same way for every way in: sign-in, launch, CSV import, the API.

An address is stripped and lower-cased; it is refused when it is too long for Exchange (254 characters, 64 before
the @), when it is not of the form local@domain.tld, or when Unicode compatibility normalisation (NFKC) would change
it: the Kelvin sign (U+212A) lower-cases to a plain k, and fullwidth letters fold into ASCII, so such an address
would otherwise sign in as, or be matched with, somebody else's.
"""

from __future__ import annotations

import re
import unicodedata
from email.utils import getaddresses

MAX_LENGTH = 254  # RFC 5321's limit of a path, which Exchange applies to SMTP addresses
MAX_LOCAL = 64

_LOCAL = r"[^\s@\"<>()\[\],;:\\]+"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
_EMAIL = re.compile(rf"{_LOCAL}@(?:{_LABEL}\.)+{_TLD}")


class AddressError(ValueError):
    """A text that is not an address the widget takes; the message says why, in words for people."""


def normalise_address(value: str) -> str:
    """The address in `value`, stripped and lower-cased; AddressError when it is not one the widget takes."""
    text = value.strip()
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(text) > MAX_LENGTH:
        raise AddressError(f"{shown!r} is longer than the {MAX_LENGTH} characters an e-mail address may have")
    # Checked before and after lower-casing: a character may be stable itself and fold into one that is not.
    address = text.lower()
    if unicodedata.normalize("NFKC", text) != text or unicodedata.normalize("NFKC", address) != address:
        raise AddressError(f"{shown!r} holds a look-alike character (such as the Kelvin sign or a fullwidth "
                           "letter): type the address with ordinary letters")
    local = address.rpartition("@")[0]
    if (len(local) > MAX_LOCAL or not _EMAIL.fullmatch(address) or local.startswith(".") or local.endswith(".")
            or ".." in address):
        raise AddressError(f"{shown!r} is not an e-mail address")
    return address


MAX_COMMENT_DEPTH = 50  # "(" that the stdlib's parser may meet: it recurses into each, and 500 exhaust its stack


def parse_address_list(raw: str) -> list[tuple[str, str]]:
    """(name, address) pairs of a typed list such as `Ann <ann@x.com>, bob@y.org` (the stdlib's parser), or
    AddressError when the text nests comments deeper than any address does."""
    if raw.count("(") > MAX_COMMENT_DEPTH:
        raise AddressError("The addresses hold more parentheses than any address does: type them again.")
    return getaddresses([raw])
