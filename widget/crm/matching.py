"""Which synced mail belongs to which CRM record — decided at query time, so a directory change re-links past mail.

An email belongs to every record one of whose addresses is its sender or a recipient (EmailAddress joined with
CrmAddress, both lower-cased) — other than the address of the mailbox it was synced from, as the sync decides
what to keep. An account also shows its contacts' mail (contacts whose account_crm_id is the account's crm_id);
a deal its own, its account's and its contact's (not every contact of its account: a deal is about one
contact). Users see their own mail only, unless the administrator made email team-wide; copies of one message
(same Internet Message-ID) are listed once.

Mail sent from a record is stored at once as a "sent copy" placeholder (its item id starts with
SENT_PLACEHOLDER_PREFIX and it carries the Internet Message-ID the widget gave the message). When the sync
brings Exchange's own copy from Sent Items, `reconcile_sent_copy` turns the placeholder into that copy, so the
email keeps its id (an open link stays valid) and is stored once. Until then — or if a sync stored the copy
without reconciling it — the list shows the synced copy and hides the placeholder.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Row, Select, String, and_, case, cast, exists, func, or_, select, true
from sqlalchemy.orm import aliased, defer

from ..extensions import db
from ..models import (
    CRM_MODULES,
    CalendarAttendee,
    CalendarItem,
    CrmAddress,
    CrmRecord,
    Email,
    EmailAddress,
    FolderSync,
    User,
)
from ..text_search import LIKE_ESCAPE, contains

if TYPE_CHECKING:
    from ..exchange.values import MessageSummary

SENT_PLACEHOLDER_PREFIX = "widget-sent:"
SENT_FOLDER = "sentitems"
# A placeholder without a Message-ID of ours (Exchange refused to take it) matches a copy sent this close to it.
FUZZY_WINDOW = timedelta(minutes=10)


@dataclass
class RecordPage:
    """One page of a record's related list, newest first."""

    record: CrmRecord | None
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


@dataclass
class EmailPage(RecordPage):
    """One page of a record's emails, newest first."""

    emails: list[Email] = field(default_factory=list)


def find_record(module: str, crm_id: str) -> CrmRecord | None:
    """A CRM record by its module and the CRM's own id."""
    if module not in CRM_MODULES:
        return None
    return db.session.scalar(select(CrmRecord).where(CrmRecord.module == module, CrmRecord.crm_id == crm_id))


def related_records(record: CrmRecord) -> ColumnElement[bool]:
    """Which CRM records' addresses count as the record's own: itself, an account's contacts, a deal's account
    and contact."""
    clause = CrmRecord.id == record.id
    if record.module == "Accounts":
        clause = or_(clause, and_(CrmRecord.module == "Contacts", CrmRecord.account_crm_id == record.crm_id))
    elif record.module == "Deals":
        if record.account_crm_id:
            clause = or_(clause, and_(CrmRecord.module == "Accounts", CrmRecord.crm_id == record.account_crm_id))
        if record.contact_crm_id:
            clause = or_(clause, and_(CrmRecord.module == "Contacts", CrmRecord.crm_id == record.contact_crm_id))
    return clause


def record_addresses(record: CrmRecord) -> Select:
    """The addresses whose mail the record shows (a subquery)."""
    return (select(CrmAddress.address).join(CrmRecord, CrmRecord.id == CrmAddress.record_id)
            .where(related_records(record)))


def primary_address(record: CrmRecord) -> str:
    """The address a new email from the record goes to: the record's first address; for a deal without one, its
    contact's."""
    first = (select(CrmAddress.address).join(CrmRecord, CrmRecord.id == CrmAddress.record_id)
             .order_by(CrmAddress.id).limit(1))
    address = db.session.scalar(first.where(CrmRecord.id == record.id))
    if address is None and record.module == "Deals" and record.contact_crm_id:
        address = db.session.scalar(first.where(CrmRecord.module == "Contacts",
                                                CrmRecord.crm_id == record.contact_crm_id))
    return address or ""


def _visible_to(user: User, team_wide: bool) -> ColumnElement[bool]:
    return true() if team_wide else Email.user_id == user.id


def _copy_rank(user: User) -> ColumnElement[int]:
    """Copies of one message (same Internet Message-ID) — the widget's sent-copy placeholder and Exchange's copy of
    it, the Sent Items and Inbox copies of mail to oneself, or with team-wide visibility a colleague's copy of the
    same mail — are listed once: the user's own copy first, then a synced copy over a placeholder, then the copy
    stored first. Mail without a Message-ID is its own group."""
    group = func.coalesce(Email.internet_message_id, cast(Email.id, String))
    return func.row_number().over(partition_by=group, order_by=(
        case((Email.user_id == user.id, 0), else_=1),
        case((Email.item_id.startswith(SENT_PLACEHOLDER_PREFIX), 1), else_=0),
        Email.id,
    ))


def _search(query: str) -> ColumnElement[bool]:
    like = contains(query.strip())
    return or_(
        Email.subject.ilike(like, escape=LIKE_ESCAPE),
        Email.sender_name.ilike(like, escape=LIKE_ESCAPE),
        Email.sender_address.ilike(like, escape=LIKE_ESCAPE),
        exists().where(EmailAddress.email_id == Email.id, EmailAddress.address.ilike(like, escape=LIKE_ESCAPE)),
    )


def emails_for_record(user: User, module: str, crm_id: str, *, query: str | None = None, page: int = 1,
                      per_page: int = 25, team_wide: bool = False) -> EmailPage:
    """A page of the emails of a record (newest first) that `user` may see; search by subject, sender or address.

    One query finds the record, one reads the page with the total (a page past the last one costs a count and a
    second read). The rows come without their bodies, which a list does not show.
    """
    page, per_page = max(1, page), max(1, min(per_page, 100))
    record = find_record(module, crm_id)
    if record is None:
        return EmailPage(None, 0, 1, per_page)
    conditions = [Email.id.in_(_matched_ids(user, record, team_wide)), _visible_to(user, team_wide)]
    if query and query.strip():
        conditions.append(_search(query))
    ranked = select(Email.id, Email.received_at, _copy_rank(user).label("copy")).where(*conditions).subquery()
    listed = ranked.c.copy == 1

    def read(number: int) -> list[Row]:
        # The total comes with the page (a window count over every listed email, before LIMIT), and the page is
        # chosen among ids before any wide row is read.
        chosen = (select(ranked.c.id, func.count().over().label("total")).where(listed)
                  .order_by(ranked.c.received_at.desc().nulls_last(), ranked.c.id.desc())
                  .limit(per_page).offset((number - 1) * per_page).subquery())
        return list(db.session.execute(
            select(Email, chosen.c.total).join(chosen, chosen.c.id == Email.id)
            .order_by(Email.received_at.desc().nulls_last(), Email.id.desc())
            .options(defer(Email.body_html), defer(Email.body_text))
        ))

    rows = read(page)
    if not rows and page > 1:  # past the last page (the list shrank, or a typed URL): show the last one
        total = db.session.scalar(select(func.count()).select_from(ranked).where(listed)) or 0
        page = max(1, -(-total // per_page))
        rows = read(page) if total else []
    total = rows[0].total if rows else 0
    return EmailPage(record, total, page, per_page, emails=[email for email, _ in rows])


def _matched_ids(user: User, record: CrmRecord, team_wide: bool) -> Select:
    """The ids of the emails on `record` by an address other than their mailbox owner's own (as the sync decides
    what to keep): a colleague who is also a CRM contact does not put their whole mailbox on their record."""
    on_record = EmailAddress.address.in_(record_addresses(record))
    if not team_wide:
        # Only the user's own mail is listed, so its owner is the user: no join to learn the owner's address, and
        # the (address, email_id) index answers alone.
        return select(EmailAddress.email_id).where(on_record, EmailAddress.address != user.email)
    stored, owner = aliased(Email), aliased(User)
    return (select(EmailAddress.email_id).join(stored, stored.id == EmailAddress.email_id)
            .join(owner, owner.id == stored.user_id).where(on_record, EmailAddress.address != owner.email))


def visible_email(user: User, email_id: int, *, team_wide: bool = False) -> Email | None:
    """The email `user` may open: their own; with team-wide visibility also a colleague's that belongs to a CRM
    record by an address other than the colleague's own (a colleague's mail that matches no record stays private
    even then). None for anything else."""
    email = db.session.get(Email, email_id)
    if email is None or email.user_id == user.id:
        return email
    if not team_wide:
        return None
    owner = db.session.scalar(select(User.email).where(User.id == email.user_id))
    on_a_record = db.session.scalar(select(exists().where(
        EmailAddress.email_id == email.id, EmailAddress.address != owner,
        EmailAddress.address.in_(select(CrmAddress.address)))))
    return email if on_a_record else None



# -- meetings --------------------------------------------------------------------------------------------------------
@dataclass
class MeetingPage(RecordPage):
    """One page of a record's meetings and appointments, the latest first."""

    meetings: list[CalendarItem] = field(default_factory=list)


def meetings_for_record(user: User, module: str, crm_id: str, *, page: int = 1, per_page: int = 25,
                        team_wide: bool = False) -> MeetingPage:
    """A page of the calendar items one of whose attendees (or organiser) is an address of the record (as for
    email: an account's contacts, a deal's account and contact count too), other than the calendar owner's own
    address; the latest first. Recurring series show through their occurrences (never the series' masters). The
    user's own calendar only, unless `team_wide`: then each meeting once (the copies in colleagues' calendars share
    its UID and start), the user's own copy first."""
    page, per_page = max(1, page), max(1, min(per_page, 100))
    record = find_record(module, crm_id)
    if record is None:
        return MeetingPage(None, 0, 1, per_page)
    stored, owner = aliased(CalendarItem), aliased(User)
    matched = (select(CalendarAttendee.calendar_item_id).join(stored, stored.id == CalendarAttendee.calendar_item_id)
               .join(owner, owner.id == stored.user_id)
               .where(CalendarAttendee.address.in_(record_addresses(record)), CalendarAttendee.address != owner.email))
    group = func.coalesce(CalendarItem.uid, cast(CalendarItem.id, String))
    copy = func.row_number().over(partition_by=(group, CalendarItem.start_at), order_by=(
        case((CalendarItem.user_id == user.id, 0), else_=1), CalendarItem.id))
    visible = true() if team_wide else CalendarItem.user_id == user.id
    ranked = (select(CalendarItem.id, copy.label("copy"))
              .where(CalendarItem.id.in_(matched), CalendarItem.is_recurring_master.is_(False), visible).subquery())
    listed = ranked.c.copy == 1
    total = db.session.scalar(select(func.count()).select_from(ranked).where(listed)) or 0
    pages = max(1, -(-total // per_page))
    page = min(page, pages)
    meetings = db.session.scalars(
        select(CalendarItem).join(ranked, ranked.c.id == CalendarItem.id).where(listed)
        .order_by(CalendarItem.start_at.desc(), CalendarItem.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return MeetingPage(record, total, page, per_page, meetings=list(meetings))

# -- mail sent from a record -----------------------------------------------------------------------------------------
def new_message_id(sender: str) -> str:
    """A unique RFC 5322 Message-ID for a message the widget sends (the placeholder and Exchange's copy share it)."""
    domain = sender.rpartition("@")[2] or "exchange-widget.invalid"
    return f"<widget.{uuid.uuid4().hex}@{domain}>"


def record_sent_email(user: User, *, subject: str, body_text: str, to: Sequence[tuple[str, str]],
                      cc: Sequence[tuple[str, str]], message_id: str | None, sent_at: datetime | None = None) -> Email:
    """Store what was just sent through Exchange as a sent email, at once (committed); the next sync's copy of it
    is reconciled with it by `reconcile_sent_copy`."""
    sent_at = sent_at or datetime.now(UTC)
    if message_id:
        already = db.session.scalar(select(Email).where(
            Email.user_id == user.id, Email.folder == SENT_FOLDER, Email.internet_message_id == message_id))
        if already is not None:  # a sync running meanwhile stored Exchange's copy first
            return already
    # Seen by the folder's current pass, so that a full pass running now does not delete it at its end.
    current_pass = db.session.scalar(select(FolderSync.pass_number).where(
        FolderSync.user_id == user.id, FolderSync.folder == SENT_FOLDER)) or 0
    email = Email(
        user_id=user.id, item_id=f"{SENT_PLACEHOLDER_PREFIX}{uuid.uuid4().hex}", change_key=None,
        folder=SENT_FOLDER, direction="sent", subject=subject, sender_address=user.email.lower(),
        sender_name=user.display_name or "", to_recipients=[list(pair) for pair in to],
        cc_recipients=[list(pair) for pair in cc], received_at=sent_at, sent_at=sent_at, is_read=True,
        internet_message_id=message_id, has_attachments=False, attachments=[], body_html=None,
        body_text=body_text, body_fetched=True, seen_in_pass=current_pass,
    )
    db.session.add(email)
    db.session.flush()
    rows = {(user.email.lower(), "from")} | {(a.lower(), "to") for a, _ in to} | {(a.lower(), "cc") for a, _ in cc}
    db.session.add_all(EmailAddress(email_id=email.id, address=address, role=role) for address, role in rows)
    db.session.commit()
    return email


def _recipients(pairs: Iterable[Sequence[str]]) -> frozenset[str]:
    return frozenset(pair[0].lower() for pair in pairs if pair and pair[0])


def reconcile_sent_copy(user: User, folder: str, messages: Sequence[MessageSummary]) -> dict[str, Email]:
    """Claim the widget's sent-copy placeholders for Exchange's copies of them in a sync page.

    For the sync engine, as the first statement of widget/sync/email.py `_store_page`:
    `reconcile_sent_copy(user, folder, page.changed)`. Each claimed placeholder then carries Exchange's item id
    and no change key, so the engine's own query of stored items (which flushes first) finds it, and its update
    path fills in Exchange's fields and body: the email keeps its row and id, and no second row is created.
    A placeholder whose copy is stored already (a sync that ran between sending and storing) is deleted.
    Returns {Exchange item id: the claimed Email}. One query when the folder holds no placeholder; nothing for
    folders other than Sent Items.
    """
    if folder != SENT_FOLDER or not messages:
        return {}
    placeholders = db.session.scalars(select(Email).where(
        Email.user_id == user.id, Email.folder == folder, Email.item_id.startswith(SENT_PLACEHOLDER_PREFIX)
    ).order_by(Email.id)).all()
    if not placeholders:
        return {}
    ids = [m.item_id for m in messages]
    stored = set(db.session.scalars(select(Email.item_id).where(Email.user_id == user.id, Email.item_id.in_(ids))))
    by_message_id = {m.internet_message_id: m for m in messages if m.internet_message_id}
    claimed: dict[str, Email] = {}
    for placeholder in placeholders:
        message = by_message_id.get(placeholder.internet_message_id) if placeholder.internet_message_id else None
        if message is None and placeholder.internet_message_id is None:
            message = _fuzzy_copy(placeholder, messages, claimed)
        if message is None:
            continue
        if message.item_id in stored or message.item_id in claimed:
            db.session.delete(placeholder)
            continue
        placeholder.item_id = message.item_id
        placeholder.change_key = None  # differs from Exchange's: the engine refreshes the row from the copy
        claimed[message.item_id] = placeholder
    return claimed


def _fuzzy_copy(placeholder: Email, messages: Sequence[MessageSummary],
                claimed: dict[str, Email]) -> MessageSummary | None:
    """Exchange's copy of a placeholder sent without our Message-ID: same subject and recipients, sent within
    FUZZY_WINDOW of it."""
    wanted = (placeholder.subject, _recipients(placeholder.to_recipients), _recipients(placeholder.cc_recipients))
    for message in messages:
        if message.item_id in claimed or message.sent_at is None or placeholder.sent_at is None:
            continue
        if (message.subject, _recipients(message.to), _recipients(message.cc)) == wanted \
                and abs(message.sent_at - placeholder.sent_at) <= FUZZY_WINDOW:
            return message
    return None


__all__ = ["EmailPage", "MeetingPage", "emails_for_record", "meetings_for_record", "find_record", "primary_address",
           "reconcile_sent_copy", "record_sent_email", "visible_email", "new_message_id", "SENT_PLACEHOLDER_PREFIX"]
