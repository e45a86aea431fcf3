"""Past mail of addresses the CRM directory just learnt: each mailbox catches up on them at its next sync.

The sync stores only mail that matches a record (the privacy default): mail from an address the directory did not
know was seen and left in Exchange. When the directory learns addresses, they are recorded (DirectoryAddition) and
every account that syncs is made due. Its next sync, after the ordinary pages, searches each mail folder for the
new addresses only, within the history window, and stores what matches; it never walks a folder again from the
start. A burst of directory changes (a CSV import, webhooks one after another) therefore costs each mailbox one
catch-up for all the addresses learnt since its last one. A folder whose full pass began in the same sync saw every
address already and is not searched. Too many addresses at once make the folder's next sync a full pass instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update

from ..exchange.port import MailboxPort
from ..exchange.values import SyncPage
from ..extensions import db
from ..models import DirectoryAddition, FolderSync, User, UserStatus
from .email import MailRules, apply_mail_page
from .pages import FolderResult, folder_state

MAX_ADDRESSES = 50  # addresses one catch-up searches for; more at once are cheaper as a full pass


def record_additions(addresses: Iterable[str], now: datetime) -> None:
    """The directory learnt these addresses: record them and make every account that syncs due now (in the caller's
    transaction)."""
    db.session.add_all(DirectoryAddition(address=address, added_at=now) for address in sorted(set(addresses)))
    db.session.execute(
        update(User)
        .where(User.disabled.is_(False), User.status != UserStatus.NEEDS_PASSWORD,
               or_(User.status == UserStatus.AUTHORIZED, User.sync_due_at.is_not(None)))
        .values(sync_due_at=now)
    )


def latest_addition() -> int:
    """The id of the newest addition (0: none yet)."""
    return db.session.scalar(db.select(func.max(DirectoryAddition.id))) or 0


def pending(user: User, upto: int | None = None) -> list[str]:
    """The addresses learnt since the user's mailbox last caught up (up to addition `upto`)."""
    query = db.select(DirectoryAddition.address).where(DirectoryAddition.id > (user.caught_up_addition or 0))
    if upto is not None:
        query = query.where(DirectoryAddition.id <= upto)
    return sorted(set(db.session.scalars(query)))


def catch_up(user: User, port: MailboxPort, folders: list[FolderResult], rules: MailRules, *, upto: int,
             now: datetime) -> None:
    """Search the user's mail folders for the addresses learnt since their last catch-up (up to addition `upto`)
    and store the matching mail of the history window; then the mailbox has caught up (committed)."""
    addresses = [a for a in pending(user, upto) if not rules.excluded_address(a)]
    searched = [result for result in folders if not result.fresh_pass]
    if addresses and searched:
        if len(addresses) > MAX_ADDRESSES:
            names = [result.folder for result in searched]
            db.session.execute(update(FolderSync).where(FolderSync.user_id == user.id, FolderSync.folder.in_(names))
                               .values(sync_state=None))
        else:
            since = now - timedelta(days=rules.history_days)
            for result in searched:
                state = folder_state(user, result.folder)
                for address in addresses:
                    found = port.messages_with(result.folder, address, since)
                    if found:
                        apply_mail_page(user, result.folder, state, SyncPage(changed=found, done=True), rules,
                                        result, now)
                        db.session.commit()
    user.caught_up_addition = max(upto, user.caught_up_addition or 0)
    db.session.commit()
    _forget_additions_everyone_has()


def _forget_additions_everyone_has() -> None:
    """Additions every account that syncs has caught up on are no longer needed."""
    oldest = db.session.scalar(db.select(func.min(User.caught_up_addition)).where(
        User.disabled.is_(False), User.is_admin.is_(False)))
    if oldest:
        db.session.execute(db.delete(DirectoryAddition).where(DirectoryAddition.id <= oldest))
        db.session.commit()
