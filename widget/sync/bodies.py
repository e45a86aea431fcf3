"""Email bodies, fetched when they are first needed rather than with every page of a sync.

A page of changes carries no message bodies, so bodies cost requests of their own (up to 100 messages each).
Fetching every stored body during a first sync would more than double its requests for a mailbox of thousands
of matching messages, most of which nobody opens. So:

- a sync stores each message's summary (subject, people, dates, read flag, whether it has attachments) and then,
  per folder, fetches the bodies of the folder's newest stored messages that lack one: ONE GetItem of up to 100,
  so recent mail opens at once and a folder's sync costs at most one request more than its pages;
- opening any other email fetches its body then (one GetItem), and keeps it;
- a message changed in Exchange (another ChangeKey) has its body fetched again, the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..exchange.port import MailboxPort
from ..exchange.values import MessageBody
from ..extensions import db
from ..models import Email, User


def _apply_body(email: Email, body: MessageBody) -> None:
    """Keep a fetched body and its attachments' names and sizes."""
    email.body_html, email.body_text = body.html, body.text
    email.attachments = [list(pair) for pair in body.attachments]
    email.body_fetched = True


def fetch_bodies(emails: Sequence[Email], port: MailboxPort) -> list[Email]:
    """Fetch and keep the bodies of emails (GetItem batches of up to 100); the emails gone from Exchange meanwhile
    are returned (the next sync removes them). Not committed."""
    by_id = {email.item_id: email for email in emails}
    gone = []
    for item_id, body in port.bodies(list(by_id)):
        if body is None:
            gone.append(by_id[item_id])
        else:
            _apply_body(by_id[item_id], body)
    return gone


def prefetch_newest(user: User, folder: str, port: MailboxPort) -> int:
    """After a folder's pages: fetch the bodies that its newest stored emails lack (at most one request),
    committed. Returns how many were asked for.

    Only among the newest: a sync that found nothing new asks for nothing (older mail is fetched when opened).
    """
    newest = db.session.execute(
        db.select(Email.id, Email.body_fetched).where(Email.user_id == user.id, Email.folder == folder)
        .order_by(Email.received_at.desc(), Email.id.desc()).limit(port.bodies_per_request)).all()
    waiting_ids = [email_id for email_id, fetched in newest if not fetched]
    if waiting_ids:  # (the rows themselves only then: a sync with nothing new reads no body)
        waiting = db.session.scalars(db.select(Email).where(Email.id.in_(waiting_ids))).all()
        fetch_bodies(waiting, port)
        db.session.commit()
    return len(waiting_ids)


def fetch_on_open(email: Email, port: MailboxPort) -> bool:
    """Fetch the body of an email being opened whose body is not kept yet (one GetItem), committed. False when
    the message is gone from Exchange. ExchangeProblem when Exchange cannot be asked."""
    if email.body_fetched:
        return True
    gone = fetch_bodies([email], port)
    db.session.commit()
    return not gone
