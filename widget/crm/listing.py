"""A record's related lists: the page of its emails and of its meetings that a user may see, newest first.

An email belongs to every record one of whose addresses is its sender or a recipient (EmailAddress joined with
CrmAddress, both lower-cased) — other than the address of the mailbox it was synced from, as the sync decides what
to keep; decided at query time, so a directory change re-links past mail. An account also shows its contacts' mail
(contacts whose account_crm_id is the account's crm_id); a deal its own, its account's and its contact's. Who may
see what is crm/visibility.py's; copies of one message (same Internet Message-ID) are listed once, and a sent-copy
placeholder (sync/sent_copies.py) gives way to Exchange's own copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Row, Select, String, case, cast, exists, func, or_, select
from sqlalchemy.orm import aliased, defer

from ..extensions import db
from ..models import CalendarAttendee, CalendarItem, CrmRecord, Email, EmailAddress, User
from ..sync.sent_copies import SENT_PLACEHOLDER_PREFIX
from ..text_search import LIKE_ESCAPE, contains
from .records import find_record, record_addresses
from .visibility import mail_visible_to, meetings_visible_to


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
    conditions = [Email.id.in_(_matched_ids(user, record, team_wide)), mail_visible_to(user, team_wide)]
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
    visible = meetings_visible_to(user, team_wide)
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
