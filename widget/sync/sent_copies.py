"""Mail sent from a record: stored at once as a "sent copy" placeholder, and reconciled with Exchange's own copy
when the sync brings it from Sent Items.

The placeholder's item id starts with SENT_PLACEHOLDER_PREFIX and it carries the Internet Message-ID the widget gave
the message. When the sync brings Exchange's copy, `reconcile_sent_copy` turns the placeholder into that copy, so
the email keeps its id (an open link stays valid) and is stored once. Until then — or if a sync stored the copy
without reconciling it — the Emails list shows the synced copy and hides the placeholder.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..extensions import db
from ..models import Email, EmailAddress, User
from .pages import current_pass

if TYPE_CHECKING:
    from ..exchange.values import MessageSummary

SENT_PLACEHOLDER_PREFIX = "widget-sent:"
SENT_FOLDER = "sentitems"
# A placeholder without a Message-ID of ours (Exchange refused to take it) matches a copy sent this close to it.
FUZZY_WINDOW = timedelta(minutes=10)


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
    seen_in_pass = current_pass(user, SENT_FOLDER)
    email = Email(
        user_id=user.id, item_id=f"{SENT_PLACEHOLDER_PREFIX}{uuid.uuid4().hex}", change_key=None,
        folder=SENT_FOLDER, direction="sent", subject=subject, sender_address=user.email.lower(),
        sender_name=user.display_name or "", to_recipients=[list(pair) for pair in to],
        cc_recipients=[list(pair) for pair in cc], received_at=sent_at, sent_at=sent_at, is_read=True,
        internet_message_id=message_id, has_attachments=False, attachments=[], body_html=None,
        body_text=body_text, body_fetched=True, seen_in_pass=seen_in_pass,
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

    For the sync engine, as the first statement of widget/sync/email.py `apply_mail_page`:
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


def send_from_widget(user: User, current: Any, *, subject: str, text: str, to: Sequence[tuple[str, str]],
                     cc: Sequence[tuple[str, str]]) -> Email:
    """Send a message through the user's mailbox (Exchange first, with a Message-ID of ours when it takes one, and a
    copy in Sent Items), then store it at once as the sent copy (committed). ExchangeProblem when the mailbox refused
    it; a refused password is noted on the account, never tried again."""
    from ..exchange.factory import mailbox_for
    from ..exchange.problems import ExchangeProblem

    try:
        message_id = mailbox_for(user, current).send(subject, text, list(to), list(cc), new_message_id(user.email))
    except ExchangeProblem as problem:
        user.note_refusal(problem.refused_credentials)
        raise
    return record_sent_email(user, subject=subject, body_text=text, to=to, cc=cc, message_id=message_id)
