"""A record's Emails list reads one page in a fixed number of SQL statements, whatever the record's mail, without the
bodies of the emails it lists; a page past the end shows the last page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from contoso import PASSWORDS
from sqlalchemy import event

from widget.extensions import db
from widget.models import CrmAddress, CrmRecord, Email, EmailAddress, User

ALICE, LENA = "alice@contoso.com", "lena@acme.example"
LIST = "/crm/Contacts/C-1/emails"


def store_mail(app, owner: str, subjects: list[str]) -> None:
    """Emails from Lena in `owner`'s inbox, one hour apart (the first the oldest), stored as the sync stores them."""
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.email == owner))
        for number, subject in enumerate(subjects):
            when = start + timedelta(hours=number)
            email = Email(user_id=user_id, item_id=f"item-{subject}", folder="inbox", subject=subject,
                          sender_address=LENA, sender_name="Lena Fischer", to_recipients=[[owner, ""]],
                          received_at=when, sent_at=when, internet_message_id=f"<{subject}@acme.example>",
                          body_html=f"<p>{subject}</p>", body_fetched=True)
            db.session.add(email)
            db.session.flush()
            db.session.add_all([EmailAddress(email_id=email.id, address=LENA, role="from"),
                                EmailAddress(email_id=email.id, address=owner, role="to")])
        db.session.commit()


def lena_is_a_contact(app) -> None:
    """Lena, CRM contact C-1."""
    with app.app_context():
        lena = CrmRecord(module="Contacts", crm_id="C-1", name="Lena Fischer")
        db.session.add(lena)
        db.session.flush()
        db.session.add(CrmAddress(record_id=lena.id, address=LENA))
        db.session.commit()


def listed(reply) -> list[str]:
    """The subjects of the list, in order."""
    assert reply.status_code == 200
    return re.findall(r'<a class="subject" href="[^"]*">([^<]*)</a>', reply.get_data(as_text=True))


@contextmanager
def statements(app) -> Iterator[list[str]]:
    """The SQL statements run meanwhile."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_it_reads_a_records_list_in_the_same_few_statements_however_much_mail_and_without_bodies(
        app, client, sign_in):
    assert sign_in(ALICE, PASSWORDS[ALICE]).status_code == 302
    lena_is_a_contact(app)
    store_mail(app, ALICE, ["first", "second"])
    client.get(LIST)
    with statements(app) as few:
        assert listed(client.get(LIST)) == ["second", "first"]
    store_mail(app, ALICE, [f"more {n:02d}" for n in range(60)])
    with statements(app) as many:
        assert listed(client.get(LIST)) == [f"more {n:02d}" for n in range(59, 34, -1)]

    assert len(many) == len(few) <= 5  # settings, the signed-in user, the record, then one read of the page
    assert not any("body_html" in statement or "body_text" in statement for statement in many)


def test_it_shows_the_last_page_when_asked_for_a_page_past_the_end(app, client, sign_in):
    assert sign_in(ALICE, PASSWORDS[ALICE]).status_code == 302
    lena_is_a_contact(app)
    store_mail(app, ALICE, [f"update {n:02d}" for n in range(30)])

    reply = client.get(LIST, query_string={"page": 9})
    assert listed(reply) == [f"update {n:02d}" for n in range(4, -1, -1)]
    assert "Page 2 of 2" in reply.get_data(as_text=True) and "30 emails" in reply.get_data(as_text=True)
