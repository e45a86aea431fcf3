"""No lockouts: the widget's budget of failed sign-ins per Exchange identity, below the directory's lockout threshold.

Active Directory locks an account after `threshold` failed sign-ins within its observation window (an
administrator setting of the widget mirrors both; 5 in 30 minutes by default). The widget lets at most
threshold - 1 failures per identity through in a window, counted in the application database so that every web
worker and process shares one count, whatever address, domain or client an attempt comes from:

- The identity is the account the login names, not the address typed: `CONTOSO\\victim`, `victim@contoso.com` and
  `OTHER\\victim` all count against "victim", since the directory may resolve each to the same account.
- An attempt is charged before it is sent (`in_flight`) and settled by its outcome, so that parallel requests
  cannot together go past the budget.
- A failure is kept until a whole window has passed since the last attempt (the directory's window starts again
  at each failure too); a sign-in Exchange accepts clears the failures, as the directory does.
- When the budget is spent the widget holds its own lock: every attempt is refused, with the same answer whether
  its password is right or not, until the window has passed; the refusal says when that is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, insert, select, update
from sqlalchemy.exc import IntegrityError

from .exchange.problems import ExchangeProblem
from .extensions import db
from .models import CredentialBudget, utcnow

# Outcomes that prove the directory never saw the password (nothing to count), and those where it accepted it but
# the widget still refuses (counted neither way, so that a refused sign-in never tells a right password by freeing
# the budget).
NOT_SENT = frozenset({"not_configured", "unreachable", "tls"})
ACCEPTED_BUT_REFUSED = frozenset({"access", "throttled", "mailbox_moving", "server"})


class CredentialsHeld(Exception):
    """The widget's own lock on an identity: no attempt is sent until `lifts_at`."""

    def __init__(self, lifts_at: datetime):
        super().__init__(f"held until {lifts_at.isoformat()}")
        self.lifts_at = lifts_at

    @property
    def message(self) -> str:
        """The refusal in words: the same for every attempt on a held identity, right password or not."""
        minutes = max(1, -(-int((self.lifts_at - utcnow()).total_seconds()) // 60))
        return (f"Too many failed sign-ins for this account. To keep Exchange from locking it, the widget tries no "
                f"more until {self.lifts_at:%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''}).")

    @property
    def retry_after(self) -> str:
        """Seconds until the lock lifts, for a Retry-After header."""
        return str(max(1, int((self.lifts_at - utcnow()).total_seconds()) + 1))


@dataclass(frozen=True)
class Policy:
    """The directory's lockout policy, as the administrator copied it into the widget's settings."""

    threshold: int
    window: timedelta

    @classmethod
    def from_settings(cls, current: object) -> Policy:
        """The policy of the admin settings."""
        return cls(int(current.lockout_threshold), timedelta(minutes=int(current.lockout_window_minutes)))

    @property
    def allowed_failures(self) -> int:
        """Failures per identity and window the widget lets through: one fewer than lock the account."""
        return max(self.threshold - 1, 0)


def identity_of(login: str) -> str:
    """The directory account a login names, for counting: the user name of DOMAIN\\user or of user@domain,
    compatibility-folded and case-folded (the directory compares names without case)."""
    name = login.strip().rsplit("\\", 1)[-1]
    name = name.rsplit("@", 1)[0] if "@" in name else name
    return unicodedata.normalize("NFKC", name).casefold()[:320] or "-"


def _reserve(identity: str, policy: Policy) -> None:
    now = utcnow()
    table = CredentialBudget.__table__
    row = table.c.identity == identity
    # Short transactions of their own, apart from the request's session: every worker sees them at once.
    with db.engine.connect() as connection:
        known = connection.execute(select(table.c.identity).where(row)).first() is not None
    if not known:
        try:
            with db.engine.begin() as connection:
                connection.execute(insert(table).values(identity=identity, failures=0, in_flight=0,
                                                        last_attempt_at=now))
        except IntegrityError:
            pass  # another worker made the row meanwhile
    with db.engine.begin() as connection:
        connection.execute(update(table).where(row, table.c.last_attempt_at < now - policy.window)
                           .values(failures=0, in_flight=0))
        taken = connection.execute(
            update(table).where(row, table.c.failures + table.c.in_flight < policy.allowed_failures)
            .values(in_flight=table.c.in_flight + 1, last_attempt_at=now)).rowcount
        if taken != 1:
            last = connection.execute(select(table.c.last_attempt_at).where(row)).scalar_one()
            raise CredentialsHeld(last + policy.window)


def _settle(identity: str, *, failed: bool, accepted: bool) -> None:
    table = CredentialBudget.__table__
    values = {"in_flight": case((table.c.in_flight > 0, table.c.in_flight - 1), else_=0)}
    if failed:
        values["failures"] = table.c.failures + 1
    elif accepted:
        values["failures"] = 0
    with db.engine.begin() as connection:
        connection.execute(update(table).where(table.c.identity == identity).values(**values))


@dataclass
class Attempt:
    """One credential check in progress; a caller that learns its outcome without an exception says so here."""

    failed: bool = False
    not_sent: bool = False


@contextmanager
def attempt(login: str, policy: Policy, *, also_failures: frozenset[str] = frozenset()) -> Iterator[Attempt]:
    """Send one credential check for `login` inside this block, if the budget allows (else CredentialsHeld).

    Leaving the block normally means Exchange accepted the credentials, unless the caller marked the Attempt
    failed (or not sent); an ExchangeProblem is settled by its kind (a refusal counts as a failure, a server that
    was never reached counts nothing) and raised on; any other error counts as a failure, since the directory may
    have seen the password. `also_failures` names kinds that count as failures here although the directory took
    the password: where a stranger must not learn from the budget that a guess was right.
    """
    identity = identity_of(login)
    _reserve(identity, policy)
    tried = Attempt()
    try:
        yield tried
    except ExchangeProblem as problem:
        failed = problem.kind in also_failures or problem.kind not in NOT_SENT | ACCEPTED_BUT_REFUSED
        _settle(identity, failed=failed, accepted=False)
        raise
    except BaseException:
        _settle(identity, failed=True, accepted=False)
        raise
    _settle(identity, failed=tried.failed, accepted=not (tried.failed or tried.not_sent))
