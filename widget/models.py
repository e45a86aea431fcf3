"""The widget's tables (SQLAlchemy 2.0 style). Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
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
    exchange_password: Mapped[str | None] = mapped_column(Text)  # encrypted with widget.secret_box
    status: Mapped[str] = mapped_column(String(20), default=UserStatus.NEW)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on sign-out and password change: sessions carrying an older number end.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    authorized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Set while a sync of this account runs (an atomic claim: an account never syncs twice at once).
    sync_claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_claimed_by: Mapped[str | None] = mapped_column(String(100))
    sync_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_outcome: Mapped[str | None] = mapped_column(String(500))
    # The last directory addition (DirectoryAddition.id) whose mail this mailbox has caught up on.
    caught_up_addition: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
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

    @property
    def password_refused(self) -> bool:
        """Exchange refused the stored password: nothing may try it again until the user gives a new one."""
        return self.has_password and self.status == UserStatus.NEEDS_PASSWORD

    def authorize(self, login: str, encrypted_password: str, now: datetime) -> None:
        """A password Exchange just accepted replaces the stored one; the account syncs (again) at once."""
        self.exchange_username = login
        self.exchange_password = encrypted_password
        self.status = UserStatus.AUTHORIZED
        self.authorized_at = self.sync_due_at = now

    def mailbox_unreachable_reason(self, impersonation: bool, service_refused: bool) -> str | None:
        """Why the widget will not reach this user's mailbox now, in words for the user; None when it may try.

        `impersonation`: the administrator's setting; `service_refused`: Exchange refused the service account's
        password (impersonated work stops until the administrator gives a new one)."""
        if self.is_admin and not self.has_password:
            return "Administrators have no Exchange mailbox in the widget: sign in as a user to do this."
        if self.password_refused:
            return "Exchange no longer accepts your stored password: update it first (Update Password)."
        if self.has_password:
            return None
        if not impersonation:
            return "Authorize with your Exchange password first."
        if service_refused:
            return ("Exchange refused the widget's service account, so nobody's mailbox can be reached through it "
                    "until your administrator updates its password.")
        return None

    def status_label(self, impersonation: bool, service_refused: bool = False) -> str:
        """The status shown to users and administrators."""
        if self.disabled:
            return "Disabled"
        if self.password_refused:
            return "Needs password"
        if self.has_password:
            return "Authorized"
        if impersonation:
            return "Paused: service account refused" if service_refused else "Impersonated"
        return "Not authorized"

    def note_refusal(self, refused_credentials: bool) -> None:
        """After Exchange answered a request for this user: a refused password (the user's own, or the service
        account's when impersonated) is never tried again. The user's own pauses this account until they give a new
        one; the service account's pauses every impersonated account until the administrator does. Committed."""
        if not refused_credentials:
            return
        if self.has_password:
            self.status = UserStatus.NEEDS_PASSWORD
            self.sync_due_at = None
            db.session.commit()
        else:
            from .service_account import mark_refused

            mark_refused()


class DirectoryAddition(db.Model):
    """An address the CRM directory learnt, whose past mail each mailbox catches up on at its next sync."""

    __tablename__ = "directory_additions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(320))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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


class CredentialBudget(db.Model):
    """The widget's count of failed sign-ins to one Exchange identity, kept below the directory's lockout threshold.

    `in_flight` counts attempts sent and not yet answered, so that parallel requests (any worker) cannot together
    pass the threshold; `last_attempt_at` starts the window again, as the directory's observation window does.
    """

    __tablename__ = "credential_budgets"

    identity: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    in_flight: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- the CRM directory ---------------------------------------------------------------------------------------------
CRM_MODULES = ("Contacts", "Leads", "Accounts", "Deals")


class CrmRecord(db.Model):
    """A record of the CRM (a contact, lead, account or deal), known by the CRM's own id."""

    __tablename__ = "crm_records"
    __table_args__ = (UniqueConstraint("module", "crm_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module: Mapped[str] = mapped_column(String(20))
    crm_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300), default="")
    # Relations by the CRM's ids, so that a record may arrive before the one it points to.
    account_crm_id: Mapped[str | None] = mapped_column(String(100), index=True)
    contact_crm_id: Mapped[str | None] = mapped_column(String(100), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CrmAddress(db.Model):
    """An email address of a CRM record (lower-cased)."""

    __tablename__ = "crm_addresses"
    __table_args__ = (UniqueConstraint("record_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("crm_records.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), index=True)


class ApiToken(db.Model):
    """A bearer token for the CRM's webhooks (only its SHA-256 is kept)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- synced mail ---------------------------------------------------------------------------------------------------
class FolderSync(db.Model):
    """Where the sync of one folder of one user's mailbox stands: the Exchange sync state of the last stored page.

    The state and the items of its page are committed in one transaction, so the state is never ahead of them.
    """

    __tablename__ = "folder_syncs"
    __table_args__ = (UniqueConstraint("user_id", "folder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    folder: Mapped[str] = mapped_column(String(200))  # a distinguished name (inbox, sentitems) or a folder name
    sync_state: Mapped[str | None] = mapped_column(Text)
    # A full pass (first sync, or after ErrorInvalidSyncStateData) deletes nothing until it completes: items
    # not seen by the pass that began at `pass_started_at` are removed only at its end.
    pass_number: Mapped[int] = mapped_column(Integer, default=0)
    pass_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Email(db.Model):
    """A message of a user's mailbox that the widget keeps (by default only mail that matches a CRM record)."""

    __tablename__ = "emails"
    __table_args__ = (
        UniqueConstraint("user_id", "item_id"),
        Index("ix_emails_user_received", "user_id", "received_at"),
        # A record's Emails list finds the user's emails among a record's by (user, id) and ranks and orders them
        # from this index alone, without reading the wide rows (bodies live in them) of mail it does not show.
        Index("ix_emails_user_listing", "user_id", "id", "received_at", "internet_message_id", "item_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(512))
    change_key: Mapped[str | None] = mapped_column(String(200))
    folder: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(10), default="received")  # "received" or "sent"
    subject: Mapped[str] = mapped_column(Text, default="")
    sender_address: Mapped[str] = mapped_column(String(320), default="")
    sender_name: Mapped[str] = mapped_column(String(300), default="")
    to_recipients: Mapped[list] = mapped_column(JSON, default=list)  # [[address, name], ...]
    cc_recipients: Mapped[list] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False)
    internet_message_id: Mapped[str | None] = mapped_column(String(500), index=True)
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    # Marked Private or Confidential in Outlook: its owner's alone, whatever the visibility setting.
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    attachments: Mapped[list] = mapped_column(JSON, default=list)  # [[name, size], ...]
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    # False until the body and attachment names are fetched: a sync fetches those of a folder's newest mail, and
    # opening any other email fetches its own (see widget.sync.bodies).
    body_fetched: Mapped[bool] = mapped_column(Boolean, default=False)
    seen_in_pass: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailAddress(db.Model):
    """Who an email is from and to (lower-cased), by which it is matched to CRM records."""

    __tablename__ = "email_addresses"
    # By address, with the email's id in the index: a record's mail is found without reading this table.
    __table_args__ = (UniqueConstraint("email_id", "address", "role"),
                      Index("ix_email_addresses_address_email", "address", "email_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_id: Mapped[int] = mapped_column(ForeignKey("emails.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(4))  # "from", "to" or "cc"


class SyncRun(db.Model):
    """One sync of one account: when, what changed, how many requests, and the error if any."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    folders: Mapped[list] = mapped_column(JSON, default=list)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(20), default="running")  # running, ok, error, throttled, ...
    progress: Mapped[str | None] = mapped_column(String(200))  # what a running sync is doing, for "Sync now"
    error: Mapped[str | None] = mapped_column(String(1000))
    skipped: Mapped[list | None] = mapped_column(JSON)  # items the sync left out, each a sentence saying why


# -- synced calendar and tasks -------------------------------------------------------------------------------------
class CalendarItem(db.Model):
    """A meeting or appointment of a user's calendar, or one occurrence of a recurring series.

    A single item and a series master are known by their Exchange item id; an occurrence by its own occurrence
    id, with `series_item_id` naming its master, so that the dashboard lists occurrences like single items.
    """

    __tablename__ = "calendar_items"
    __table_args__ = (UniqueConstraint("user_id", "item_id"), Index("ix_calendar_items_user_start", "user_id",
                                                                     "start_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(512))
    change_key: Mapped[str | None] = mapped_column(String(200))
    series_item_id: Mapped[str | None] = mapped_column(String(512), index=True)  # set on occurrences only
    # The iCalendar UID: one meeting's copies in colleagues' calendars, and a series' occurrences, share it.
    uid: Mapped[str | None] = mapped_column(String(300), index=True)
    is_recurring_master: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(20), default="appointment")  # "meeting" (has attendees) or "appointment"
    subject: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # the zone it was scheduled in (IANA name)
    organizer_address: Mapped[str] = mapped_column(String(320), default="")
    attendees: Mapped[list] = mapped_column(JSON, default=list)  # [[address, name, response], ...]
    reminder_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    reminder_minutes: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    is_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    is_private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # as for emails
    # When the widget last changed it (pushed to Exchange first); the conflict rule compares this with Exchange's.
    changed_in_widget_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_in_exchange_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_in_pass: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarAttendee(db.Model):
    """An attendee's or the organiser's address (lower-cased), by which meetings are matched to CRM records."""

    __tablename__ = "calendar_attendees"
    __table_args__ = (UniqueConstraint("calendar_item_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    calendar_item_id: Mapped[int] = mapped_column(ForeignKey("calendar_items.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), index=True)


class Task(db.Model):
    """A task of a user's Tasks folder."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("user_id", "item_id"), Index("ix_tasks_user_due", "user_id", "due_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    item_id: Mapped[str] = mapped_column(String(512))
    change_key: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(30), default="not_started")  # a TaskStatus
    is_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    importance: Mapped[str] = mapped_column(String(10), default="Normal")
    notes: Mapped[str] = mapped_column(Text, default="")
    changed_in_widget_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_in_exchange_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_in_pass: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
