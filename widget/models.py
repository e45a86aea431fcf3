"""The widget's tables (SQLAlchemy 2.0 style). Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store timezone-aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class UserStatus:
    """What a user's Exchange access looks like (the admin Users page shows it)."""

    NEW = "new"  # known to the widget, never authorized
    AUTHORIZED = "authorized"  # a verified password is stored
    NEEDS_PASSWORD = "needs_password"  # Exchange refused the stored password; sync is paused


class User(UserMixin, db.Model):
    """A CRM user of the widget, or an administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Administrators sign in with a local password (hashed); users with their Exchange password.
    admin_password_hash: Mapped[str | None] = mapped_column(String(255))
    exchange_username: Mapped[str | None] = mapped_column(String(320))
    exchange_password: Mapped[str | None] = mapped_column(Text)  # encrypted with widget.secrets
    status: Mapped[str] = mapped_column(String(20), default=UserStatus.NEW)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on sign-out and password change: sessions carrying an older number end.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    authorized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_outcome: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session: the user and the session version it was issued for."""
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        """Disabled users cannot sign in, and their sessions end."""
        return not self.disabled

    @property
    def has_password(self) -> bool:
        """Whether an Exchange password is stored for background sync."""
        return self.exchange_password is not None


class Setting(db.Model):
    """One administrator setting (see widget/settings.py for the typed view of them)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class LaunchNonce(db.Model):
    """A launch token's nonce, kept until the token expires, so that no token is used twice."""

    __tablename__ = "launch_nonces"

    nonce: Mapped[str] = mapped_column(String(100), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
