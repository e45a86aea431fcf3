"""The state of the service account that impersonates users: whether Exchange refused its password.

A refused service password must not be tried again by every impersonated account's sync (a handful of syncs would
lock the service account out of Active Directory, and every user with it). So the first refusal stops all
impersonated work at once: no request is made with that password until the administrator saves a new one that
Exchange accepts, which resumes every impersonated account. The state is a row of the settings table (not an
administrator's setting: nobody edits it), shared by every process.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import g

from .extensions import db
from .models import Setting, User

REFUSED_KEY = "state:service_password_refused_at"
REFUSED_MESSAGE = ("Exchange refused the widget's service account. Your administrator must update its password "
                   "(Settings → Impersonation); syncing resumes then.")


def refused() -> bool:
    """Whether Exchange refused the service account's password and no accepted one was saved since (read once per
    request)."""
    if "service_refused" not in g:
        g.service_refused = db.session.get(Setting, REFUSED_KEY) is not None
    return g.service_refused


def mark_refused(now: datetime | None = None) -> None:
    """Exchange refused the service password: stop every impersonated account's work (committed)."""
    if db.session.get(Setting, REFUSED_KEY) is None:
        db.session.add(Setting(key=REFUSED_KEY, value=(now or datetime.now(UTC)).isoformat()))
    db.session.execute(db.update(User).where(User.exchange_password.is_(None)).values(sync_due_at=None))
    db.session.commit()
    g.service_refused = True


def resume(now: datetime | None = None) -> int:
    """A service password Exchange accepted is saved: every impersonated account (enabled, not an administrator)
    syncs again at once. Returns how many. Committed."""
    row = db.session.get(Setting, REFUSED_KEY)
    if row is not None:
        db.session.delete(row)
    result = db.session.execute(db.update(User).where(
        User.exchange_password.is_(None), User.disabled.is_(False), User.is_admin.is_(False),
    ).values(sync_due_at=now or datetime.now(UTC)))
    db.session.commit()
    g.service_refused = False
    return result.rowcount or 0
