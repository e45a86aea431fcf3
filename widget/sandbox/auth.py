"""HTTP authentication as an on-premises Exchange (IIS) does it: Basic per request, NTLM per connection.

NTLM authenticates a connection, not a request: once the three-leg handshake succeeds, later requests on
the same connection are accepted without an Authorization header, until the user's password changes.
The NTLM arithmetic is pyspnego's server side; it reads accounts from the file named by NTLM_USER_FILE,
which is process-wide, so each sandbox keeps its own file and points the variable at it under a lock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import spnego
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego._ntlm_raw.messages import Authenticate
from spnego.exceptions import SpnegoError

from .store import Store, User

LOCKED_OUT_TEXT = "The referenced account is currently locked out and may not be logged on to."
_NTLM_ENV_LOCK = threading.Lock()


@dataclass
class ConnectionAuth:
    """Authentication state of one HTTP connection."""

    ntlm_context: spnego.ContextProxy | None = None
    user_email: str | None = None
    password_version: int = -1


@dataclass
class AuthResult:
    """The outcome of checking one request: a user, or a 401 with the headers and body to send."""

    user: User | None = None
    challenge: str | None = None
    body: str = ""


class Authenticator:
    """Checks requests against the store's directory and counts failed logins per account."""

    def __init__(self, store: Store, schemes: tuple[str, ...] = ("NTLM", "Basic")):
        self.store = store
        self.schemes = schemes
        handle, name = tempfile.mkstemp(prefix="sandbox-ntlm-", suffix=".txt")
        os.close(handle)
        self.ntlm_user_file = Path(name)

    def close(self) -> None:
        """Remove the NTLM account file."""
        self.ntlm_user_file.unlink(missing_ok=True)

    def www_authenticate(self) -> list[str]:
        """The WWW-Authenticate values that name the enabled schemes."""
        return ["NTLM" if s == "NTLM" else 'Basic realm="sandbox"' for s in self.schemes]

    def check(self, header: str | None, connection: ConnectionAuth) -> AuthResult:
        """Authenticate one request; never raises for bad input."""
        if header:
            scheme, _, token = header.partition(" ")
            scheme = scheme.lower()
            if scheme == "basic" and "Basic" in self.schemes:
                return self._basic(token.strip())
            if scheme in ("ntlm", "negotiate") and "NTLM" in self.schemes:
                return self._ntlm(token.strip(), connection, scheme)
            return AuthResult()
        if connection.user_email:
            user = self.store.users.get(connection.user_email)
            if user and not user.locked and user.password_version == connection.password_version:
                return AuthResult(user=user)
            connection.user_email = None
        return AuthResult()

    def _failure(self, user: User | None) -> AuthResult:
        if user is None:
            return AuthResult()
        user.failed_logins += 1
        threshold = self.store.lockout_threshold
        if threshold and user.failed_logins >= threshold:
            user.locked = True
        return AuthResult(body=LOCKED_OUT_TEXT if user.locked else "")

    def _basic(self, token: str) -> AuthResult:
        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error:
            return AuthResult()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            # Clients (requests among them) send Basic credentials in Latin-1, which IIS accepts as well.
            text = raw.decode("latin-1")
        login, _, password = text.partition(":")
        user = self.store.find_user(login)
        if user is None:
            return AuthResult()
        return self.check_password(user, password)

    def check_password(self, user: User, password: str) -> AuthResult:
        """A password for `user`, checked as every sign-in checks it (Basic, and the Graph front's sign-in page): a
        locked account is refused, and a wrong password counts toward the lockout."""
        if user.locked:
            return AuthResult(body=LOCKED_OUT_TEXT)
        if not hmac.compare_digest(password.encode(), user.password.encode()):
            return self._failure(user)
        user.failed_logins = 0
        return AuthResult(user=user)

    def _write_user_file(self) -> None:
        # The smbpasswd form (hashes in hex) rather than DOMAIN:user:password, so that any password works,
        # one with a ':' or a line break included. DOMAIN\user and the UPN form (sent by clients as
        # "\user@domain") both sign in.
        lines = []
        for user in self.store.users.values():
            lm_hash, nt_hash = lmowfv1(user.password).hex().upper(), ntowfv1(user.password).hex().upper()
            for login in (f"{user.domain}\\{user.username}", user.email):
                lines.append(f"{login}:1000:{lm_hash}:{nt_hash}:[U]:LCT-00000000")
        self.ntlm_user_file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _ntlm(self, token: str, connection: ConnectionAuth, scheme: str) -> AuthResult:
        try:
            raw = base64.b64decode(token, validate=True)
        except binascii.Error:
            return AuthResult()
        message_type = int.from_bytes(raw[8:12], "little") if len(raw) >= 12 else 0
        label = "NTLM" if scheme == "ntlm" else "Negotiate"
        if message_type == 1:
            connection.user_email = None
            with _NTLM_ENV_LOCK:
                self._write_user_file()
                os.environ["NTLM_USER_FILE"] = str(self.ntlm_user_file)
                try:
                    connection.ntlm_context = spnego.server(protocol="ntlm")
                    challenge = connection.ntlm_context.step(raw)
                except SpnegoError:
                    return AuthResult()
            return AuthResult(challenge=f"{label} {base64.b64encode(challenge or b'').decode()}")
        if message_type != 3 or connection.ntlm_context is None:
            return AuthResult()
        try:
            message = Authenticate.unpack(raw)
            login = f"{message.domain_name}\\{message.user_name}" if message.domain_name else message.user_name
        except (ValueError, IndexError, UnicodeDecodeError):
            return AuthResult()
        context, connection.ntlm_context = connection.ntlm_context, None
        user = self.store.find_user(login or "")
        if user is None:
            return AuthResult()
        if user.locked:
            return AuthResult(body=LOCKED_OUT_TEXT)
        with _NTLM_ENV_LOCK:
            self._write_user_file()
            os.environ["NTLM_USER_FILE"] = str(self.ntlm_user_file)
            try:
                context.step(raw)
                accepted = context.complete
            except SpnegoError:
                accepted = False
        if not accepted:
            return self._failure(user)
        user.failed_logins = 0
        connection.user_email = user.email
        connection.password_version = user.password_version
        return AuthResult(user=user)
