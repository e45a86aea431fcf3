"""A widget database the size of a busy team's, for bench/web_load.py: users, a CRM directory, synced mail with
bodies and addresses, calendar items, tasks and a sync history.

Rows are written directly with the widget's models (Core inserts in batches: 50,000 emails through the real sync
would take minutes and measure the sync, not the pages), but shaped the way the sync stores them
(widget/sync/email.py): only mail that matches a CRM record, from Inbox (received) and Sent Items (sent), an
EmailAddress row per sender and recipient including the mailbox owner's own address, the same Internet Message-ID
on the copies that colleagues hold of one message, and bodies as Exchange gives them (Outlook-style HTML about a
third of the time, else plain text with the quoted thread).

Mail is spread over the CRM's people by a Zipf-like law (a few customers write a lot, most rarely write), so the
busiest contact has a couple of thousand emails across the team, like a key account's main contact.
"""

from __future__ import annotations

import base64
import bisect
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SEED = "exchange-widget-web-bench-v1"
BENCH_DOMAIN = "contoso.com"
TIME_ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "America/Chicago", "Asia/Singapore",
              "Europe/Paris", "America/Los_Angeles", "Australia/Sydney")
FIRST_NAMES = ("Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Liam",
               "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wes", "Yara",
               "Zoe", "Aiko", "Bruno", "Chen", "Dara", "Emil")
LAST_NAMES = ("Adams", "Berg", "Costa", "Dietrich", "Evans", "Fontaine", "Garcia", "Hoffmann", "Ivanova", "Jensen",
              "Kowalski", "Larsen", "Moreau", "Nakamura", "Olsen", "Petrov", "Quist", "Rossi", "Schmidt", "Tanaka",
              "Ulrich", "Varga", "Weber", "Xu", "Young", "Zimmer", "Novak", "Silva", "Murphy", "Kaur")
COMPANY_WORDS = ("Alpine", "Blue", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Iron", "Juniper",
                 "Kestrel", "Lumen", "Maple", "Nova", "Orbit", "Pioneer", "Quartz", "River", "Summit", "Titan")
COMPANY_KINDS = ("Logistics", "Foods", "Systems", "Health", "Retail", "Energy", "Media", "Capital", "Labs", "Works")
SUBJECTS = ("Pricing for the renewal", "Follow-up: product demo", "Proposal for {company}", "Question about invoice "
            "INV-{number}", "Contract redlines", "Request for quote: {number} seats", "Onboarding plan",
            "Meeting notes {number}", "Support ticket #{number}", "Quarterly business review", "Shipment {number}")
SENTENCES = (
    "Thanks for the call earlier today, it was good to go through the open points together.",
    "Our legal team has reviewed the agreement and has two small changes in section 7.",
    "Could you send the updated figures before Thursday so that we can share them with finance?",
    "The pilot went well: the regional team has asked to extend it to the other offices.",
    "I have attached the revised proposal, with the services split into a separate line item.",
    "We would like to add forty seats for the new support team starting next quarter.",
    "Please find below the summary of what we agreed and the next steps on both sides.",
    "The invoice shows the wrong PO number; could you reissue it with the one from our order?",
    "Let me know which time works for you next week and I will send an invitation.",
    "As discussed, the onboarding sessions can run in two groups of fifteen people each.",
)


@dataclass
class Sizes:
    """How much of each kind the database holds."""

    users: int = 8
    emails: int = 50_000
    records: int = 10_000
    calendar_items: int = 1_000
    tasks_per_user: int = 40
    sync_runs_per_user: int = 2_000


@dataclass
class Dataset:
    """What the benchmark needs to know of the generated data to build its requests."""

    users: list[tuple[str, str]]  # (email, Exchange password), in the sandbox too
    busiest_contact: str  # the CRM id of the Contact with the most mail
    busiest_contact_address: str
    busiest_account: str  # the CRM id of that contact's Account
    emails_to_open: dict[str, list[int]]  # per user, ids of their emails on the busiest contact (newest first)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The dataset as plain JSON (kept in the instance folder beside a reusable database)."""
        return {"users": self.users, "busiest_contact": self.busiest_contact,
                "busiest_contact_address": self.busiest_contact_address, "busiest_account": self.busiest_account,
                "emails_to_open": self.emails_to_open, "counts": self.counts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Dataset:
        """Read back what to_json wrote."""
        return cls([tuple(pair) for pair in data["users"]], data["busiest_contact"], data["busiest_contact_address"],
                   data["busiest_account"], {key: list(ids) for key, ids in data["emails_to_open"].items()},
                   dict(data["counts"]))


def bench_users(n: int) -> list[tuple[str, str, str]]:
    """(email, password, display name) of the benchmark's users; the sandbox gets the same accounts."""
    return [(f"bench{i:02d}@{BENCH_DOMAIN}", f"Bench-pw-{i:02d}", f"{FIRST_NAMES[i % 30]} {LAST_NAMES[(i * 7) % 30]}")
            for i in range(1, n + 1)]


# -- shapes of the data ----------------------------------------------------------------------------------------
@dataclass
class _Person:
    record_id: int
    module: str
    crm_id: str
    name: str
    address: str
    account_crm_id: str | None


class _Ids:
    """Zoho-style record ids (19 digits) and Exchange-style item ids and change keys."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_record = itertools.count(4876876000000100001)

    def record(self) -> str:
        return str(next(self.next_record))

    def item(self) -> str:
        return base64.b64encode(b"AAMkADE1" + self.rng.randbytes(106)).decode()

    def change_key(self) -> str:
        return base64.b64encode(b"CQAAABYA" + self.rng.randbytes(22)).decode()

    def message_id(self, domain: str) -> str:
        return f"<{self.rng.getrandbits(128):032x}@{domain}>"


def _outlook_html(rng: random.Random, greeting: str, paragraphs: Sequence[str], signature: Sequence[str],
                  quoted: str) -> str:
    """An HTML body the way Outlook writes one: a head full of mso styles, paragraphs in MsoNormal, a signature
    table with an inline image, and the previous message quoted below."""
    style = "".join(
        f"@font-face {{font-family:\"Font{i}\"; panose-1:2 15 5 2 2 2 4 3 2 4;}}\n"
        f"p.MsoStyle{i}, li.MsoStyle{i} {{margin:0cm; font-size:11.0pt; font-family:\"Calibri\",sans-serif;}}\n"
        for i in range(rng.randint(8, 20)))
    body = [f"<p class=\"MsoNormal\"><span lang=\"EN-GB\">{greeting}<o:p></o:p></span></p>"]
    body += [f"<p class=\"MsoNormal\"><span lang=\"EN-GB\" style=\"font-size:11.0pt\">{p}<o:p></o:p></span></p>"
             for p in paragraphs]
    rows = "".join(f"<tr><td style=\"padding:0cm 5.4pt\"><p class=\"MsoNormal\"><b><span style=\"color:#1F3864\">"
                   f"{line}</span></b></p></td></tr>" for line in signature)
    image = f"<img width=\"120\" height=\"40\" src=\"cid:image001.png@01DA{rng.getrandbits(32):08X}\" alt=\"Logo\">"
    link = f"<a href=\"https://www.example.com/r/{rng.getrandbits(40):x}\">www.example.com</a>"
    return (
        "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head><meta http-equiv=\"Content-Type\" "
        f"content=\"text/html; charset=utf-8\"><style><!--\n{style}--></style><!--[if gte mso 9]><xml>"
        "<o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" /></xml><![endif]--></head>"
        "<body lang=\"EN-GB\" link=\"#0563C1\" vlink=\"#954F72\"><div class=\"WordSection1\">"
        + "".join(body)
        + f"<table class=\"MsoNormalTable\" border=\"0\" cellpadding=\"0\">{rows}</table>{image}<p>{link}</p>"
        + "<div style=\"border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm\">"
        + f"<blockquote style=\"margin-left:30pt\">{quoted}</blockquote></div></div></body></html>"
    )


def _text_body(greeting: str, paragraphs: Sequence[str], signature: Sequence[str], quoted: str) -> str:
    return "\r\n\r\n".join([greeting, *paragraphs, "\r\n".join(signature),
                            "-----Original Message-----\r\n" + quoted.replace(". ", ".\r\n> ")])


class _Zipf:
    """Weighted choice of a rank: rank k (from 0) is picked with weight 1 / (k + 1) ** s."""

    def __init__(self, n: int, s: float) -> None:
        self.cumulative = list(itertools.accumulate(1 / (k + 1) ** s for k in range(n)))

    def pick(self, rng: random.Random) -> int:
        return bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])


def _batches(rows: Iterable[dict[str, Any]], size: int = 2_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# -- generation ------------------------------------------------------------------------------------------------
def generate(sizes: Sizes, now: datetime | None = None) -> Dataset:
    """Fill the (migrated, empty) database of the current app context; returns what the benchmark needs."""
    from sqlalchemy import insert

    from widget.extensions import db
    from widget.models import (
        CalendarAttendee,
        CalendarItem,
        CrmAddress,
        CrmRecord,
        Email,
        EmailAddress,
        FolderSync,
        SyncRun,
        Task,
        User,
        UserStatus,
    )

    rng = random.Random(SEED)
    ids = _Ids(rng)
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    counts: dict[str, int] = {}

    def put(model: Any, rows: Iterable[dict[str, Any]]) -> None:
        for batch in _batches(rows):
            db.session.execute(insert(model.__table__), batch)
            counts[model.__tablename__] = counts.get(model.__tablename__, 0) + len(batch)

    # Users: known to the widget, not yet authorized (the benchmark signs each in through /signin).
    accounts = bench_users(sizes.users)
    users = [User(email=email, display_name=name, status=UserStatus.NEW, time_zone=TIME_ZONES[i % len(TIME_ZONES)])
             for i, (email, _, name) in enumerate(accounts)]
    db.session.add_all(users)
    db.session.flush()
    user_ids = [user.id for user in users]
    owners = [(user.id, user.email, user.display_name) for user in users]

    # The CRM directory: a tenth Accounts, a tenth Deals, the rest Contacts (three in four) and Leads.
    n_accounts = sizes.records // 10
    n_deals = sizes.records // 10
    n_people = sizes.records - n_accounts - n_deals
    n_contacts = n_people * 3 // 4
    records: list[dict[str, Any]] = []
    addresses: list[dict[str, Any]] = []
    companies: list[tuple[str, str, str]] = []  # (crm id, name, mail domain)
    for i in range(n_accounts):
        name = f"{COMPANY_WORDS[i % 20]} {COMPANY_KINDS[(i // 20) % 10]} {i // 200 + 1}"
        domain = name.lower().replace(" ", "-") + ".example"
        companies.append((ids.record(), name, domain))
        records.append({"id": len(records) + 1, "module": "Accounts", "crm_id": companies[-1][0], "name": name,
                        "updated_at": now})
        if rng.random() < 0.3:
            addresses.append({"record_id": len(records), "address": f"info@{domain}"})
    people: list[_Person] = []
    contacts_of: dict[str, list[_Person]] = {}
    for i in range(n_people):
        first, last = FIRST_NAMES[rng.randrange(30)], LAST_NAMES[rng.randrange(30)]
        if i < n_contacts:
            account_id, _, domain = companies[rng.randrange(n_accounts)]
            module = "Contacts"
        else:
            account_id, domain, module = None, f"lead-{i}.example", "Leads"
        person = _Person(len(records) + 1, module, ids.record(), f"{first} {last}",
                         f"{first}.{last}.{i}@{domain}".lower(), account_id)
        people.append(person)
        if account_id:
            contacts_of.setdefault(account_id, []).append(person)
        records.append({"id": person.record_id, "module": module, "crm_id": person.crm_id, "name": person.name,
                        "account_crm_id": account_id, "updated_at": now})
        addresses.append({"record_id": person.record_id, "address": person.address})
        if rng.random() < 0.1:
            addresses.append({"record_id": person.record_id, "address": f"{first}{i}@mail.example".lower()})
    for i in range(n_deals):
        account_id = companies[rng.randrange(n_accounts)][0]
        contact = rng.choice(contacts_of[account_id]) if contacts_of.get(account_id) else None
        records.append({"id": len(records) + 1, "module": "Deals", "crm_id": ids.record(), "name": f"Deal {i + 1}",
                        "account_crm_id": account_id, "contact_crm_id": contact.crm_id if contact else None,
                        "updated_at": now})
    put(CrmRecord, records)
    put(CrmAddress, ({"id": n + 1, **row} for n, row in enumerate(addresses)))

    # Who writes how much: a random order of the people, the busiest first, and a Contact at the top.
    ranked = people[:]
    rng.shuffle(ranked)
    top = next(i for i, person in enumerate(ranked) if person.module == "Contacts")
    ranked[0], ranked[top] = ranked[top], ranked[0]
    zipf = _Zipf(len(ranked), 0.8)
    busiest = ranked[0]

    emails: list[dict[str, Any]] = []
    email_addresses: list[dict[str, Any]] = []
    on_busiest: dict[int, list[int]] = {uid: [] for uid in user_ids}

    def add_email(owner: tuple[int, str, str], sender: tuple[str, str], to: list[tuple[str, str]],
                  cc: list[tuple[str, str]], when: datetime, message: dict[str, Any], sent: bool,
                  correspondent: _Person) -> None:
        email_id = len(emails) + 1
        emails.append({
            "id": email_id, "user_id": owner[0], "item_id": ids.item(), "change_key": ids.change_key(),
            "folder": "sentitems" if sent else "inbox", "direction": "sent" if sent else "received",
            "sender_address": sender[0], "sender_name": sender[1], "to_recipients": [list(p) for p in to],
            "cc_recipients": [list(p) for p in cc], "received_at": when, "sent_at": when - timedelta(seconds=4),
            "is_read": sent or rng.random() < 0.95, "seen_in_pass": 1, "created_at": when, **message,
        })
        rows = {(sender[0], "from")} | {(a, "to") for a, _ in to} | {(a, "cc") for a, _ in cc}
        email_addresses.extend({"email_id": email_id, "address": address, "role": role} for address, role in rows)
        if correspondent is busiest:
            on_busiest[owner[0]].append(email_id)

    while len(emails) < sizes.emails:
        owner = owners[rng.randrange(len(owners))]
        person = ranked[zipf.pick(rng)]
        them = (person.address, person.name)
        me = (owner[1], owner[2])
        cc: list[tuple[str, str]] = []
        colleagues = [p for p in contacts_of.get(person.account_crm_id or "", []) if p is not person]
        if colleagues and rng.random() < 0.25:
            other = rng.choice(colleagues)
            cc.append((other.address, other.name))
        copy_for = owners[rng.randrange(len(owners))] if rng.random() < 0.1 else None
        if copy_for is not None and copy_for is not owner:
            cc.append((copy_for[1], copy_for[2]))
        else:
            copy_for = None
        sent = rng.random() < 0.4
        company = person.account_crm_id or person.address.split("@")[1]
        number = rng.randrange(1000, 99999)
        subject = ("Re: " if rng.random() < 0.5 else "") + rng.choice(SUBJECTS).format(company=company,
                                                                                       number=number)
        writer = me if sent else them
        greeting = f"Hi {(them if sent else me)[1].split()[0]},"
        paragraphs = [" ".join(rng.choices(SENTENCES, k=rng.randint(2, 5))) for _ in range(rng.randint(2, 5))]
        signature = [writer[1], "Contoso Ltd" if sent else company, f"+44 20 7946 {rng.randrange(10000):04d}"]
        quoted = " ".join(rng.choices(SENTENCES, k=rng.randint(3, 12)))
        html = rng.random() < 0.35
        attachments = ([[f"Document-{number}.pdf", rng.randrange(20_000, 4_000_000)]] if rng.random() < 0.12
                       else [])
        message = {
            "subject": subject, "internet_message_id": ids.message_id(writer[0].split("@")[1]),
            "body_html": _outlook_html(rng, greeting, paragraphs, signature, quoted) if html else None,
            "body_text": None if html else _text_body(greeting, paragraphs, signature, quoted),
            "has_attachments": bool(attachments), "attachments": attachments, "body_fetched": True,
        }
        when = now - timedelta(seconds=rng.randrange(365 * 86400))
        sender, to = (me, [them]) if sent else (them, [me])
        add_email(owner, sender, to, cc, when, message, sent, person)
        if copy_for is not None and len(emails) < sizes.emails:
            add_email(copy_for, sender, to, cc, when + timedelta(seconds=2), message, False, person)
    put(Email, emails)
    put(EmailAddress, ({"id": n + 1, **row} for n, row in enumerate(email_addresses)))

    # Calendars: per user three weekly series of eight occurrences, the rest single meetings and appointments.
    items: list[dict[str, Any]] = []
    attendees: list[dict[str, Any]] = []
    per_user = sizes.calendar_items // len(owners)
    for owner in owners:
        made = 0
        series = 0
        while made < per_user:
            day = (now + timedelta(days=rng.randint(-45, 45))).replace(hour=rng.randint(7, 16),
                                                                       minute=rng.choice((0, 30)), second=0)
            minutes = rng.choice((30, 30, 45, 60, 60, 90))
            invited = [ranked[zipf.pick(rng)] for _ in range(rng.randint(0, 4))]
            kind = "meeting" if invited else "appointment"
            base = {
                "user_id": owner[0], "kind": kind, "subject": rng.choice(SUBJECTS).format(company="Contoso",
                                                                                          number=made),
                "location": rng.choice(("Teams", "Room 4.12", "Customer site", "")), "is_all_day": False,
                "time_zone": TIME_ZONES[owner[0] % len(TIME_ZONES)], "organizer_address": owner[1],
                "attendees": [[p.address, p.name, "Unknown"] for p in invited], "reminder_enabled": True,
                "reminder_minutes": 15, "notes": rng.choice(SENTENCES), "is_cancelled": rng.random() < 0.05,
                "seen_in_pass": 1, "created_at": now, "change_key": ids.change_key(),
            }
            occurrences = 8 if series < 3 and per_user - made >= 9 else 1
            master_id = ids.item()
            if occurrences > 1:
                series += 1
                items.append({**base, "id": len(items) + 1, "item_id": master_id, "is_recurring_master": True,
                              "start_at": day, "end_at": day + timedelta(minutes=minutes)})
                made += 1
            for week in range(occurrences):
                start = day + timedelta(weeks=week)
                items.append({**base, "id": len(items) + 1, "item_id": ids.item() if occurrences > 1 else master_id,
                              "series_item_id": master_id if occurrences > 1 else None, "is_recurring_master": False,
                              "start_at": start, "end_at": start + timedelta(minutes=minutes)})
                made += 1
                attendees.extend({"calendar_item_id": len(items), "address": address}
                                 for address in {owner[1], *(p.address for p in invited)})
    put(CalendarItem, items)
    put(CalendarAttendee, ({"id": n + 1, **row} for n, row in enumerate(attendees)))

    put(Task, ({
        "user_id": owner[0], "item_id": ids.item(), "change_key": ids.change_key(),
        "subject": f"Call back {ranked[zipf.pick(rng)].name}", "due_at": now + timedelta(days=rng.randint(-10, 30)),
        "status": "completed" if done else "not_started", "is_complete": done,
        "completed_at": now - timedelta(days=1) if done else None, "importance": "Normal", "notes": "",
        "seen_in_pass": 1, "created_at": now,
    } for owner in owners for done in (rng.random() < 0.5 for _ in range(sizes.tasks_per_user))))
    # A week of syncs every five minutes, as the scheduler leaves them.
    put(SyncRun, ({
        "user_id": uid, "started_at": now - timedelta(minutes=5 * k), "finished_at": now - timedelta(minutes=5 * k - 1),
        "folders": ["inbox", "sentitems"], "created": rng.randrange(3), "updated": 0, "deleted": 0, "requests": 2,
        "outcome": "ok",
    } for uid in user_ids for k in range(sizes.sync_runs_per_user, 0, -1)))
    put(FolderSync, ({"user_id": uid, "folder": folder, "sync_state": "H4sIAAAAAAAEAO29B2AcSZ" * 8,
                      "pass_number": 1, "pass_complete": True, "last_synced_at": now}
                     for uid in user_ids for folder in ("inbox", "sentitems")))
    _advance_sequences(db)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of such an insert, and what a database in use has: statistics.
        # (SQLite keeps none unless told to, and the widget does not tell it: none are made there.)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            tables = ", ".join(table.name for table in db.metadata.sorted_tables)  # this schema's, no other
            connection.exec_driver_sql(f"VACUUM ANALYZE {tables}")

    newest_first = {uid: sorted(found, key=lambda e: emails[e - 1]["received_at"], reverse=True)
                    for uid, found in on_busiest.items()}
    return Dataset(
        users=[(email, password) for email, password, _ in accounts],
        busiest_contact=busiest.crm_id, busiest_contact_address=busiest.address,
        busiest_account=busiest.account_crm_id or "",
        emails_to_open={owner[1]: newest_first[owner[0]][:20] for owner in owners},
        counts={**counts, "emails on the busiest contact": sum(len(v) for v in on_busiest.values()),
                "html bodies": sum(1 for e in emails if e["body_html"] is not None)},
    )


def _advance_sequences(db: Any) -> None:
    """PostgreSQL: rows were written with explicit ids, so move each id sequence past them."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        return
    for table in ("crm_records", "crm_addresses", "emails", "email_addresses", "calendar_items",
                  "calendar_attendees"):
        db.session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT coalesce(max(id), 1) FROM {table}))"))
