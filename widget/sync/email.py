"""Email sync: Exchange → the widget, one page of changes at a time, each page committed with its state.

For each folder: ask for the next page since the stored sync state; decide which messages to keep (not
excluded; matching a CRM record unless the administrator stores all mail; inside the history window on a
first pass); then, in ONE transaction, upsert them, apply deletes and read flags, and store the page's new
sync state. Bodies are not part of a page: after the pages, one GetItem fetches those of the folder's newest
stored mail, and any other is fetched when it is opened (widget/sync/bodies.py). A crash between pages loses
nothing and duplicates nothing: the state stored is always that of the last stored page.

A full pass (the first sync, or after Exchange declared a sync state invalid) marks every message it sees;
only when it completes are the folder's messages that it did not see deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..exchange.port import MailboxPort
from ..exchange.values import MessageSummary, SyncPage
from ..extensions import db
from ..models import CrmAddress, Email, EmailAddress, FolderSync, User
from .bodies import prefetch_newest
from .fitting import fit, unstorable
from .pages import FolderResult, Progress, sync_folder
from .sent_copies import reconcile_sent_copy


@dataclass
class MailRules:
    """What the administrator decided about which mail the widget keeps."""

    excluded_addresses: frozenset[str] = frozenset()
    excluded_domains: frozenset[str] = frozenset()
    store_unmatched: bool = False
    history_days: int = 30
    crm_addresses: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, current: Any) -> MailRules:
        """The rules of the admin settings, with the CRM directory's addresses."""
        addresses = frozenset(db.session.scalars(db.select(CrmAddress.address).distinct()))
        return cls(frozenset(current.excluded_addresses), frozenset(current.excluded_domains),
                   current.store_unmatched_email, current.sync_history_days, addresses)

    def excluded_address(self, address: str) -> bool:
        """Mail to or from this address is never stored (an excluded address, or one of an excluded domain)."""
        return address in self.excluded_addresses or address.rpartition("@")[2] in self.excluded_domains

    def excluded(self, message: MessageSummary) -> bool:
        """Mail to or from an excluded address or domain is never stored."""
        return any(self.excluded_address(address) for address in message.addresses())

    def wanted(self, message: MessageSummary, owner: str, first_pass: bool, now: datetime) -> bool:
        """Whether a message not stored yet should be."""
        if self.excluded(message):
            return False
        if first_pass and message.received_at and message.received_at < now - timedelta(days=self.history_days):
            return False
        return self.store_unmatched or bool((message.addresses() - {owner}) & self.crm_addresses)


@dataclass
class MailSyncResult:
    """What a sync of one mailbox changed, folder by folder."""

    folders: list[FolderResult] = field(default_factory=list)

    @property
    def created(self) -> int:
        """Messages stored for the first time."""
        return sum(f.created for f in self.folders)

    @property
    def updated(self) -> int:
        """Messages changed (subject, read flag, ...)."""
        return sum(f.updated for f in self.folders)

    @property
    def deleted(self) -> int:
        """Messages removed (deleted or moved away in Exchange)."""
        return sum(f.deleted for f in self.folders)


def _summary_values(message: MessageSummary) -> dict[str, Any]:
    """An email's columns that a message's summary gives."""
    return {
        "change_key": message.change_key,
        "sender_address": fit(message.sender[0], Email.sender_address),
        "sender_name": fit(message.sender[1], Email.sender_name), "subject": fit(message.subject, Email.subject),
        "to_recipients": [list(pair) for pair in message.to], "cc_recipients": [list(pair) for pair in message.cc],
        "received_at": message.received_at, "sent_at": message.sent_at, "is_read": message.is_read,
        "internet_message_id": fit(message.internet_message_id, Email.internet_message_id),
        "has_attachments": message.has_attachments, "is_private": message.is_private,
    }


def _apply_summary(email: Email, message: MessageSummary) -> None:
    for name, value in _summary_values(message).items():
        setattr(email, name, value)


def _insert_new(user: User, folder: str, state: FolderSync, messages: list[MessageSummary]) -> list[int]:
    """Insert a page's new emails; their ids, in order.

    One plain executemany and then one SELECT of the ids, rather than the ORM's INSERT ... RETURNING of many
    rows: on PostgreSQL that is one statement of some 11,000 placeholders per page, which psycopg parses anew each
    time (a quarter of a first sync's time), where an executemany is one short statement, prepared once.
    """
    if not messages:
        return []
    direction = "sent" if folder == "sentitems" else "received"
    db.session.execute(db.insert(Email), [
        {"user_id": user.id, "item_id": message.item_id, "folder": folder, "direction": direction,
         "seen_in_pass": state.pass_number, "body_fetched": False, "attachments": [], **_summary_values(message)}
        for message in messages])
    ids = dict(db.session.execute(db.select(Email.item_id, Email.id).where(
        Email.user_id == user.id, Email.item_id.in_([message.item_id for message in messages]))).all())
    return [ids[message.item_id] for message in messages]


def _set_addresses(stored: list[tuple[int, MessageSummary]], *, new: bool) -> None:
    """The sender and recipients of a page's stored emails: one DELETE (unless they are new) and one INSERT, not a
    statement and a flush per email, which made up most of a first sync's time in the database."""
    if not stored:
        return
    if not new:
        db.session.execute(db.delete(EmailAddress).where(EmailAddress.email_id.in_([i for i, _ in stored])))
    rows = []
    for email_id, message in stored:
        roles = {(fit(address, EmailAddress.address), role) for address, role in (
            (message.sender[0], "from"), *((a, "to") for a, _ in message.to), *((a, "cc") for a, _ in message.cc))}
        rows += [{"email_id": email_id, "address": address, "role": role} for address, role in roles if address]
    if rows:
        db.session.execute(db.insert(EmailAddress), rows)


def apply_mail_page(user: User, folder: str, state: FolderSync, page: SyncPage, rules: MailRules, result: FolderResult,
                now: datetime) -> None:
    """Apply one page's changes to the stored emails (the pipeline stores the page's state with them)."""
    # A message sent from the widget is stored at once; its copy from Sent Items takes over that row.
    storable = []
    for message in page.changed:
        why = unstorable(Email, message.item_id, message.change_key)
        if why:
            result.skip(f"“{message.subject[:80]}”" if message.subject else "a message without subject", why)
        else:
            storable.append(message)
    page.changed = storable
    reconcile_sent_copy(user, folder, page.changed)
    first_pass = not state.pass_complete
    ids = [m.item_id for m in page.changed]
    existing = {e.item_id: e for e in db.session.scalars(
        db.select(Email).where(Email.user_id == user.id, Email.item_id.in_(ids)))} if ids else {}
    # (By item id: should a page bring a message twice, its last state is the one kept.)
    to_create = list({m.item_id: m for m in page.changed if m.item_id not in existing
                      and rules.wanted(m, user.email, first_pass, now)}.values())
    to_update = [m for m in page.changed if m.item_id in existing]

    created = list(zip(_insert_new(user, folder, state, to_create), to_create, strict=True))
    _set_addresses(created, new=True)
    result.created += len(created)
    updated: list[tuple[int, MessageSummary]] = []
    for message in to_update:
        email = existing[message.item_id]
        email.seen_in_pass = state.pass_number
        if email.change_key == message.change_key:
            email.is_private = message.is_private  # (rows stored before sensitivity was kept learn it on a pass)
            continue  # unchanged: a full pass sees every message again
        if rules.excluded(message):
            db.session.delete(email)
            result.deleted += 1
            continue
        _apply_summary(email, message)
        email.body_fetched = False  # the message changed: its body may have too (the old one shows until then)
        updated.append((email.id, message))
        result.updated += 1
    _set_addresses(updated, new=False)
    if page.deleted:
        gone = db.session.execute(db.delete(Email).where(Email.user_id == user.id, Email.item_id.in_(page.deleted)))
        result.deleted += gone.rowcount or 0
    flags = dict(page.read_flags)  # the last flag of an item wins
    if flags:
        for email in db.session.scalars(db.select(Email).where(Email.user_id == user.id,
                                                               Email.item_id.in_(list(flags)))):
            if email.is_read != flags[email.item_id]:
                email.is_read = flags[email.item_id]
                result.updated += 1


def _finish_full_pass(user: User, folder: str, state: FolderSync, result: FolderResult) -> None:
    stale = db.session.execute(db.delete(Email).where(
        Email.user_id == user.id, Email.folder == folder, Email.seen_in_pass < state.pass_number))
    result.deleted += stale.rowcount or 0


@dataclass
class MailFolderPass:
    """One mail folder's part of the page pipeline (pages.py)."""

    user: User
    folder: str
    port: MailboxPort
    rules: MailRules
    now: datetime
    result: FolderResult

    def read_page(self, sync_state: str | None) -> SyncPage:
        """The folder's next page of changes."""
        return self.port.sync_page(self.folder, sync_state)

    def apply_page(self, state: FolderSync, page: SyncPage) -> int:
        """Store the page's wanted new mail, its changes, deletes and read flags."""
        apply_mail_page(self.user, self.folder, state, page, self.rules, self.result, self.now)
        return len(page.changed) + len(page.deleted) + len(page.read_flags)

    def finish_full_pass(self, state: FolderSync) -> None:
        """Delete the folder's emails that the completed full pass did not see."""
        _finish_full_pass(self.user, self.folder, state, self.result)

    def after_pages(self, state: FolderSync, synced_before: datetime | None) -> None:
        """Fetch the bodies the folder's newest emails lack (one request at most)."""
        prefetch_newest(self.user, self.folder, self.port)


def sync_mail_folder(user: User, folder: str, port: MailboxPort, rules: MailRules, *,
                     progress: Progress | None = None, now: datetime | None = None) -> FolderResult:
    """Sync one mail folder until Exchange says it is up to date."""
    now = now or datetime.now(UTC)
    return sync_folder(user, MailFolderPass(user, folder, port, rules, now, FolderResult(folder=folder)), now=now,
                       progress=progress)


def sync_mail(user: User, port: MailboxPort, rules: MailRules, folders: list[str], *,
              progress: Progress | None = None) -> MailSyncResult:
    """Sync every mail folder of a user's mailbox."""
    result = MailSyncResult()
    for folder in folders:
        result.folders.append(sync_mail_folder(user, folder, port, rules, progress=progress))
    return result
