"""Deterministic contents for the sandbox: a demo organisation, and bulk mail for scale work.

Everything here draws from `random.Random` with a fixed seed and from an explicit `now`, so that the same
input gives the same store contents (subjects, addresses, times, order of creation). Item and folder ids
stay random: the store makes them, and nothing should depend on their value.

Seeded mail goes through the same helpers as mail the sandbox receives (delivery.message_defaults and
deliver_message), so that a client cannot tell a seeded message from one that arrived.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from .delivery import MEETING_FIELDS, calendar_defaults, deliver_message, message_defaults
from .items import Attachment, Attendee, Body, Item, Mailbox
from .store import Store, User

DEMO_DOMAIN = "contoso.com"
# Bumping the version changes every demo store; do it only when the demo's contents change on purpose.
DEMO_SEED = "exchange-widget-demo-v1"
BULK_SEED = "exchange-widget-bulk-v1"


class DemoAccount(NamedTuple):
    """A person (or service account) of the demo organisation, with a fixed password printed by the CLI."""

    email: str
    display_name: str
    password: str
    title: str
    can_impersonate: bool = False


class CrmPerson(NamedTuple):
    """An external correspondent that a demo CRM imports as a Contact or a Lead and matches by address."""

    name: str
    email: str
    company: str
    kind: str  # "Contact" or "Lead"


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("megan.bowen@contoso.com", "Megan Bowen", "Megan-demo-1", "Sales Director"),
    DemoAccount("alex.wilber@contoso.com", "Alex Wilber", "Alex-demo-1", "Account Executive"),
    DemoAccount("diego.siciliani@contoso.com", "Diego Siciliani", "Diego-demo-1", "Account Executive"),
    DemoAccount("lynne.robbins@contoso.com", "Lynne Robbins", "Lynne-demo-1", "Customer Success Manager"),
    DemoAccount("isaiah.langer@contoso.com", "Isaiah Langer", "Isaiah-demo-1", "Sales Engineer"),
)
DEMO_SERVICE_ACCOUNT = DemoAccount("svc-crm@contoso.com", "CRM Service", "Service-demo-1", "Service account",
                                   can_impersonate=True)

# (company, mail domain): customers (their people are Contacts) first, then prospects (Leads).
DEMO_COMPANIES: tuple[tuple[str, str], ...] = (
    ("Acme Corp", "acme-corp.example"),
    ("Northwind Traders", "northwind-traders.example"),
    ("Fabrikam", "fabrikam.example"),
    ("Woodgrove Bank", "woodgrove-bank.example"),
    ("Adventure Works", "adventure-works.example"),
    ("Tailspin Toys", "tailspin-toys.example"),
    ("Litware", "litware.example"),
    ("Blue Yonder Airlines", "blueyonder-airlines.example"),
)
_LEAD_COMPANIES = frozenset({"Tailspin Toys", "Litware", "Blue Yonder Airlines"})
_PEOPLE_BY_COMPANY: dict[str, tuple[str, ...]] = {
    "Acme Corp": ("Lena Fischer", "Marcus Reid", "Priya Raman"),
    "Northwind Traders": ("Tom Hansen", "Grace Okafor", "Luis Ortega"),
    "Fabrikam": ("Hannah Becker", "Samuel Osei"),
    "Woodgrove Bank": ("Olivia Grant", "Kenji Watanabe", "Amara Nwosu"),
    "Adventure Works": ("Ethan Cole", "Sofia Marino"),
    "Tailspin Toys": ("Noah Bennett", "Chloe Dubois"),
    "Litware": ("Ravi Patel", "Emma Lindqvist"),
    "Blue Yonder Airlines": ("Daniel Kim", "Isabel Santos"),
}


def _crm_people() -> tuple[CrmPerson, ...]:
    domains = dict(DEMO_COMPANIES)
    people = []
    for company, names in _PEOPLE_BY_COMPANY.items():
        kind = "Lead" if company in _LEAD_COMPANIES else "Contact"
        for name in names:
            email = f"{name.lower().replace(' ', '.')}@{domains[company]}"
            people.append(CrmPerson(name, email, company, kind))
    return tuple(people)


# Every external person the demo mail and meetings involve; a demo CRM imports these and matches mail to them.
DEMO_CRM_PEOPLE: tuple[CrmPerson, ...] = _crm_people()

# Senders that no CRM record matches: newsletters and notifications, as in any real inbox.
DEMO_OTHER_SENDERS: tuple[Mailbox, ...] = (
    Mailbox("news@saas-weekly.example", "SaaS Weekly"),
    Mailbox("noreply@travelbook.example", "TravelBook"),
    Mailbox("billing@cloudhost.example", "CloudHost Billing"),
)


@dataclass
class SeedSummary:
    """What a seeding added, for the CLI to print."""

    users: list[str] = field(default_factory=list)
    messages: int = 0
    calendar_items: int = 0
    tasks: int = 0


# -- demo mail ---------------------------------------------------------------------------------------------------
# (subject, opening line of the first message, opening line of a reply, attachment names offered)
_THREADS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("Pricing for the {company} renewal",
     "Our current agreement ends next quarter and we would like to review pricing for the renewal.",
     "Thanks for reaching out. I have attached the renewal pricing for the next two years.",
     ("Renewal-pricing-{slug}.pdf",)),
    ("Follow-up: product demo",
     "Thank you for the demo yesterday. The team had a few questions about reporting and user roles.",
     "Great questions. Reporting can be scheduled per team, and roles can be limited per module.",
     ()),
    ("Proposal for {company}",
     "As promised, here is our proposal. Let me know if anything needs to change before you share it.",
     "We have reviewed the proposal internally. Could you split the services into a separate line item?",
     ("Proposal-{slug}.pdf", "Statement-of-work-{slug}.docx")),
    ("Question about invoice INV-{number}",
     "We received invoice INV-{number} but the PO number on it does not match ours. Could you check?",
     "You are right, the PO number was wrong. A corrected invoice is attached.",
     ("INV-{number}.pdf",)),
    ("Contract redlines",
     "Our legal team has gone through the MSA. Their redlines are in the attached document.",
     "Thanks. Most of the changes are fine; I have commented on sections 7 and 12.",
     ("MSA-{slug}-redlines.docx",)),
    ("Request for quote: {seats} seats",
     "We are looking to add {seats} seats for our regional teams. Could you send a quote?",
     "Happy to help. The quote for {seats} seats, including onboarding, is attached.",
     ("Quote-Q-{number}.xlsx",)),
    ("Onboarding schedule",
     "Could we agree on the onboarding sessions for the new users? Mornings work best for us.",
     "Here is a proposed schedule: three sessions of 90 minutes over the next two weeks.",
     ()),
    ("Security questionnaire",
     "Our IT security team needs the attached questionnaire completed before we can proceed.",
     "Please find the completed questionnaire attached, along with our SOC 2 report summary.",
     ("Security-questionnaire-{slug}.xlsx",)),
    ("Support ticket #{number}: sign-in problem",
     "Several of our users cannot sign in since this morning. They see an 'account locked' message.",
     "The lockouts came from an old password saved on a shared device. The accounts are unlocked now.",
     ()),
    ("Quarterly business review",
     "Would you have time for our quarterly business review in the coming weeks?",
     "Certainly. I will bring the usage figures and the roadmap for the next two quarters.",
     ("QBR-{slug}.pptx",)),
    ("Introduction: {company} and Contoso",
     "A colleague suggested I get in touch. We are evaluating tools for our sales team.",
     "Thank you for the introduction. I would be glad to set up a short call to learn about your needs.",
     ()),
    ("Re-scheduling our call",
     "Something came up on my side. Could we move our call to later this week?",
     "No problem at all. Thursday afternoon works for me; I will send an updated invite.",
     ()),
)
_FOLLOW_UPS = (
    "Thanks, that helps. One more question: is the price fixed for the whole term?",
    "Sounds good. I will share this with my manager and come back to you by Friday.",
    "Just checking in on this. Do you need anything else from our side?",
    "Perfect, thank you for the quick turnaround.",
    "Could we go through this on a short call? I am free most afternoons this week.",
)
_INTERNAL_THREADS = (
    ("Pipeline review notes", "Here are my notes from this week's pipeline review. Please update your deals."),
    ("Forecast for this quarter", "Please send me your commit and best-case numbers by Thursday."),
    ("Lunch & learn: negotiation basics", "Next Wednesday we have a lunch & learn on negotiation. Join us!"),
    ("Handover: {company}", "I am taking over {company} from next month. Could we go through the account?"),
    ("Demo environment", "The demo environment will be down on Saturday for maintenance."),
)
_CONTENT_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_NEWSLETTER_HTML = (
    "<html><head><style>p {{ font-family: Arial; }} .cta {{ color: #fff; background: #0078d4; }}</style></head>"
    "<body><h1>{title}</h1><p>This week: five ways to shorten your sales cycle, and what buyers expect in "
    "{year}.</p><p><a class=\"cta\" href=\"https://saas-weekly.example/read?id={number}\">Read more</a></p>"
    "<img src=\"https://track.saas-weekly.example/open.gif?u={number}\" width=\"1\" height=\"1\" alt=\"\">"
    "<script>document.title = 'tracked';</script>"
    "<p style=\"font-size:10px\">You receive this because you subscribed. <a href=\"https://saas-weekly.example/"
    "unsubscribe\">Unsubscribe</a></p></body></html>"
)


class _Mail(NamedTuple):
    when: datetime
    sender: Mailbox
    to: list[Mailbox]
    cc: list[Mailbox]
    subject: str
    topic: str
    body: Body
    attachments: list[Attachment]
    conversation_id: str
    message_id: str
    in_reply_to: str | None
    read: bool


def _first_name(box: Mailbox) -> str:
    return (box.name or box.email).split()[0]


def _body(rng: random.Random, sender: Mailbox, sender_title: str, company: str, greet: str,
          lines: Iterable[str]) -> Body:
    """A body in the sender's voice: HTML two times out of three, as mail clients send it."""
    greeting = f"Hi {greet},"
    closing = rng.choice(("Best regards,", "Kind regards,", "Thanks,", "Cheers,"))
    signature = [sender.name, f"{sender_title}, {company}" if sender_title else company]
    paragraphs = list(lines)
    if rng.random() < 2 / 3:
        html = [f"<p>{greeting}</p>"]
        html += [f"<p>{p}</p>" for p in paragraphs]
        html.append(f"<p>{closing}<br>{'<br>'.join(signature)}</p>")
        return Body("HTML", "<html><body>" + "".join(html) + "</body></html>")
    return Body("Text", "\r\n\r\n".join([greeting, *paragraphs, closing + "\r\n" + "\r\n".join(signature)]))


def _rng_hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}X}"


def _attachment_id(rng: random.Random) -> str:
    return base64.b64encode(b"AAMk\x03" + rng.randbytes(30)).decode()


def _business_time(rng: random.Random, day: date) -> datetime:
    """A moment in working hours (08:00–18:00 UTC) of `day`, on a minute."""
    minutes = rng.randrange(8 * 60, 18 * 60)
    return datetime.combine(day, time(minutes // 60, minutes % 60), UTC)


def _next_business_moment(rng: random.Random, after: datetime) -> datetime:
    """A reply's time: some minutes to a day and a half later, moved into the next working hours."""
    moment = after + timedelta(minutes=rng.randrange(12, 36 * 60))
    if moment.weekday() >= 5 or not 8 <= moment.hour < 18:
        day = moment.date() + timedelta(days=1 if moment.hour >= 18 else 0)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        moment = max(_business_time(rng, day), moment)
    return moment


def _weekday_in_past(rng: random.Random, now: datetime, days: int) -> date:
    while True:
        day = (now - timedelta(days=rng.randrange(1, days))).date()
        if day.weekday() < 5:
            return day


def _demo_mail(rng: random.Random, now: datetime, accounts: list[User], titles: dict[str, str]) -> list[_Mail]:
    """Every message of the demo, in no particular order."""
    mails: list[_Mail] = []
    companies = [name for name, _ in DEMO_COMPANIES]
    people_by_company = {c: [p for p in DEMO_CRM_PEOPLE if p.company == c] for c in companies}
    # Everyone but the sales engineer owns companies; a colleague (often the engineer) is copied now and then.
    owners = [u for u in accounts if titles[u.email] != "Sales Engineer"]
    for index, company in enumerate(companies):
        owner = owners[index % len(owners)]
        helpers = [u for u in accounts if u is not owner]
        slug = company.replace(" ", "-")
        for _ in range(rng.randrange(7, 11)):
            subject_t, opening_t, reply_t, attachment_ts = rng.choice(_THREADS)
            values = {"company": company, "slug": slug, "number": rng.randrange(1000, 9999),
                      "seats": rng.choice((25, 40, 60, 120, 250))}
            topic = subject_t.format(**values)
            person = rng.choice(people_by_company[company])
            external = Mailbox(person.email, person.name)
            colleague = rng.choice(helpers) if rng.random() < 0.3 else None
            conversation_id = "AAQk" + _rng_hex(rng)
            inbound = rng.random() < 0.6
            when = _business_time(rng, _weekday_in_past(rng, now, 90))
            previous_id: str | None = None
            for turn in range(rng.choice((1, 2, 2, 3, 3, 4, 5))):
                if when >= now:
                    break
                from_external = inbound == (turn % 2 == 0)
                sender, recipient = (external, owner.mailbox) if from_external else (owner.mailbox, external)
                sender_title = "" if from_external else titles[owner.email]
                sender_company = company if from_external else "Contoso"
                if turn == 0:
                    lines = [opening_t.format(**values)]
                elif turn == 1:
                    lines = [reply_t.format(**values)]
                else:
                    lines = [rng.choice(_FOLLOW_UPS)]
                attachments = []
                if attachment_ts and turn < 2 and rng.random() < 0.5:
                    for name_t in attachment_ts:
                        name = name_t.format(**values)
                        attachments.append(Attachment(_attachment_id(rng), name,
                                                      _CONTENT_TYPES[name.rsplit(".", 1)[1]],
                                                      rng.randrange(40_000, 2_500_000)))
                message_id = f"<{_rng_hex(rng)}@{sender.email.split('@')[1]}>"
                mails.append(_Mail(
                    when=when, sender=sender, to=[recipient], cc=[colleague.mailbox] if colleague else [],
                    subject=("RE: " if turn else "") + topic, topic=topic,
                    body=_body(rng, sender, sender_title, sender_company, _first_name(recipient), lines),
                    attachments=attachments, conversation_id=conversation_id, message_id=message_id,
                    in_reply_to=previous_id, read=when < now - timedelta(days=2) or rng.random() < 0.5,
                ))
                previous_id = message_id
                when = _next_business_moment(rng, when)
    for _ in range(12):
        subject_t, text = rng.choice(_INTERNAL_THREADS)
        company = rng.choice(companies)
        sender = rng.choice(accounts)
        others = [u for u in accounts if u is not sender]
        to = rng.sample(others, rng.randrange(1, len(others) + 1))
        when = _business_time(rng, _weekday_in_past(rng, now, 60))
        mails.append(_Mail(
            when=when, sender=sender.mailbox, to=[u.mailbox for u in to], cc=[],
            subject=subject_t.format(company=company), topic=subject_t.format(company=company),
            body=_body(rng, sender.mailbox, titles[sender.email], "Contoso",
                       _first_name(to[0].mailbox) if len(to) == 1 else "all", [text.format(company=company)]),
            attachments=[], conversation_id="AAQk" + _rng_hex(rng), message_id=f"<{_rng_hex(rng)}@{DEMO_DOMAIN}>",
            in_reply_to=None, read=rng.random() < 0.8,
        ))
    for number in range(10):
        sender = DEMO_OTHER_SENDERS[number % len(DEMO_OTHER_SENDERS)]
        recipient = rng.choice(accounts)
        when = _business_time(rng, _weekday_in_past(rng, now, 90))
        if sender.email.startswith("news@"):
            subject = f"SaaS Weekly #{120 + number}: closing deals faster"
            body = Body("HTML", _NEWSLETTER_HTML.format(title=subject, year=now.year, number=number))
        elif sender.email.startswith("noreply@"):
            subject = f"Your booking confirmation TB-{rng.randrange(100000, 999999)}"
            body = Body("Text", "Your trip is confirmed.\r\n\r\nCheck-in opens 24 hours before departure.")
        else:
            subject = f"Your CloudHost invoice for {(when - timedelta(days=20)).strftime('%B %Y')}"
            body = Body("HTML", "<html><body><p>Your invoice is ready.</p><p>Amount due: "
                                f"${rng.randrange(80, 900)}.00</p></body></html>")
        mails.append(_Mail(
            when=when, sender=sender, to=[recipient.mailbox], cc=[], subject=subject, topic=subject, body=body,
            attachments=[], conversation_id="AAQk" + _rng_hex(rng),
            message_id=f"<{_rng_hex(rng)}@{sender.email.split('@')[1]}>", in_reply_to=None,
            read=rng.random() < 0.7,
        ))
    return mails


def _store_mail(store: Store, mail: _Mail) -> int:
    """Store one message as Exchange would: a sent copy for an internal sender, a received copy per recipient."""
    props: dict[str, Any] = {
        "Subject": mail.subject, "Body": mail.body, "ToRecipients": mail.to, "CcRecipients": mail.cc,
        "InternetMessageId": mail.message_id, "ConversationId": mail.conversation_id,
        "ConversationTopic": mail.topic, "IsDraft": False,
    }
    if mail.attachments:
        props["Attachments"] = mail.attachments
    if mail.in_reply_to:
        props["InReplyTo"] = mail.in_reply_to
        props["References"] = mail.in_reply_to
    message_defaults(props, mail.sender, mail.when)
    stored = 0
    sender = store.users.get(mail.sender.email)
    if sender is not None:
        store.add_item(store.folder(sender.email, "sentitems"), "Message",
                       {**props, "IsRead": True, "IsFromMe": True}, when=mail.when)
        stored += 1
    # deliver_message also hands the sender a copy when they are among the recipients, as Exchange does.
    for item in deliver_message(store, props, mail.when):
        item.props["IsRead"] = mail.read
        stored += 1
    return stored


# -- demo calendars and tasks ------------------------------------------------------------------------------------
class _Calendars:
    """Busy intervals per user, so that seeded meetings do not double-book anyone."""

    def __init__(self) -> None:
        self.busy: dict[str, list[tuple[datetime, datetime]]] = {}

    def free(self, emails: Iterable[str], start: datetime, end: datetime) -> bool:
        return all(end <= s or start >= e for email in emails for s, e in self.busy.get(email, []))

    def book(self, emails: Iterable[str], start: datetime, end: datetime) -> None:
        for email in emails:
            self.busy.setdefault(email, []).append((start, end))


def _add_meeting(store: Store, rng: random.Random, booked: _Calendars, organizer: User, subject: str,
                 start: datetime, minutes: int, *, internal: Sequence[User] = (), external: Sequence[CrmPerson] = (),
                 location: str = "", status: str = "Busy", body: str = "", created: datetime,
                 reminder: int | None = 15, all_day: bool = False) -> int:
    """An organizer's calendar item and the copies in the calendars of internal attendees; returns items added."""
    end = start + timedelta(minutes=minutes)
    responses = {u.email: rng.choice(("Accept", "Accept", "Accept", "Tentative")) for u in internal}
    attendees = [Attendee(organizer.mailbox, "Organizer")]
    attendees += [Attendee(u.mailbox, responses[u.email]) for u in internal]
    attendees += [Attendee(Mailbox(p.email, p.name), rng.choice(("Accept", "Accept", "Unknown", "Tentative")))
                  for p in external]
    props: dict[str, Any] = {
        "Subject": subject, "Start": start, "End": end, "Location": location, "LegacyFreeBusyStatus": status,
        "UID": _rng_hex(rng, 160), "IsAllDayEvent": all_day, "ReminderIsSet": reminder is not None,
        "ReminderMinutesBeforeStart": reminder if reminder is not None else 0,
    }
    if body:
        props["Body"] = Body("HTML", f"<html><body><p>{body}</p></body></html>")
    if internal or external:
        props["RequiredAttendees"] = attendees
        props["MeetingRequestWasSent"] = True
    calendar_defaults(props, organizer)
    store.add_item(store.folder(organizer.email, "calendar"), "CalendarItem", props, when=created)
    for user in internal:
        copy = {name: props[name] for name in MEETING_FIELDS if name in props}
        response = responses[user.email]
        copy.update(
            LegacyFreeBusyStatus="Tentative" if response == "Tentative" and status == "Busy" else status,
            MyResponseType=response, IsOrganizer=False, MeetingRequestWasSent=False, IsResponseRequested=True,
        )
        store.add_item(store.folder(user.email, "calendar"), "CalendarItem", copy, when=created)
    booked.book([organizer.email, *(u.email for u in internal)], start, end)
    return 1 + len(internal)


def _slot(rng: random.Random, day: date, minutes: int) -> datetime:
    """A start on the half hour inside working hours (09:00–17:00 UTC) for a meeting of `minutes`."""
    latest = 17 * 60 - minutes
    start = rng.randrange(9 * 60, latest + 1, 30)
    return datetime.combine(day, time(start // 60, start % 60), UTC)


def _demo_calendars(store: Store, rng: random.Random, now: datetime, accounts: list[User],
                    titles: dict[str, str]) -> int:
    """Two weeks of meetings, appointments, busy blocks, tentative holds and time out of office."""
    booked = _Calendars()
    added = 0
    days = [now.date() + timedelta(days=i) for i in range(15)]
    workdays = [d for d in days if d.weekday() < 5]
    created = now - timedelta(days=3)
    director = accounts[0]
    sellers = [u for u in accounts if titles[u.email] != "Sales Engineer"]
    engineer = next(u for u in accounts if titles[u.email] == "Sales Engineer")

    def future(start: datetime) -> bool:
        return start >= now

    # The director's weekly pipeline review with every seller, Monday 09:00.
    for day in workdays:
        start = datetime.combine(day, time(9, 0), UTC)
        if day.weekday() == 0 and future(start):
            added += _add_meeting(store, rng, booked, director, "Weekly pipeline review", start, 60,
                                  internal=[u for u in sellers if u is not director], location="Room 4.12",
                                  body="Bring your updated forecast.", created=created)
    # Time out of office: a day of leave for one person, a dentist appointment for another.
    # Not a Monday, so that the leave does not clash with the pipeline review.
    leave_day = next(d for d in workdays[len(workdays) // 2:] + workdays if d.weekday() != 0)
    person = accounts[2]
    added += _add_meeting(store, rng, booked, person, "Vacation", datetime.combine(leave_day, time(0, 0), UTC),
                          24 * 60, status="OOF", created=created, reminder=None, all_day=True)
    dentist = accounts[3]
    day = workdays[min(3, len(workdays) - 1)]
    added += _add_meeting(store, rng, booked, dentist, "Dentist", datetime.combine(day, time(14, 0), UTC), 90,
                          status="OOF", created=created, reminder=30)
    people_by_company: dict[str, list[CrmPerson]] = {}
    for p in DEMO_CRM_PEOPLE:
        people_by_company.setdefault(p.company, []).append(p)
    companies = list(people_by_company)
    for day in workdays:
        for user in accounts:
            # Customer meetings, sometimes with the sales engineer along.
            for _ in range(rng.randrange(0, 3)):
                company = rng.choice(companies)
                minutes = rng.choice((30, 45, 60, 60))
                start = _slot(rng, day, minutes)
                internal = [engineer] if user is not engineer and rng.random() < 0.35 else []
                emails = [user.email, *(u.email for u in internal)]
                if not future(start) or not booked.free(emails, start, start + timedelta(minutes=minutes)):
                    continue
                subject = rng.choice(("{c}: discovery call", "{c}: product demo", "{c}: pricing discussion",
                                      "{c}: quarterly business review", "{c}: onboarding session",
                                      "{c}: contract review"))
                location = rng.choice(("Microsoft Teams Meeting", "Microsoft Teams Meeting", f"{company} office",
                                       "Contoso HQ, Room 2.03"))
                attendees = rng.sample(people_by_company[company], rng.randrange(1, min(2, len(
                    people_by_company[company])) + 1))
                added += _add_meeting(store, rng, booked, user, subject.format(c=company), start, minutes,
                                      internal=internal, external=attendees, location=location,
                                      status="Tentative" if rng.random() < 0.15 else "Busy",
                                      body=f"Agenda: introductions, {company}'s goals, next steps.",
                                      created=created)
            # A focus block or a tentative hold now and then.
            if rng.random() < 0.4:
                minutes = rng.choice((60, 90, 120))
                start = _slot(rng, day, minutes)
                if future(start) and booked.free([user.email], start, start + timedelta(minutes=minutes)):
                    subject, status = rng.choice((("Focus time", "Busy"), ("Prepare proposals", "Busy"),
                                                  ("Hold: industry webinar", "Tentative")))
                    added += _add_meeting(store, rng, booked, user, subject, start, minutes, status=status,
                                          created=created, reminder=None)
    return added


_TASKS = (
    ("Send revised proposal to {company}", "NotStarted", 0, 3),
    ("Prepare the business review deck for {company}", "InProgress", 40, 6),
    ("Follow up on the security questionnaire with {company}", "WaitingOnOthers", 25, 2),
    ("Update opportunity notes after the {company} call", "Completed", 100, -2),
    ("Book onboarding trainer for {company}", "NotStarted", 0, 9),
    ("Check renewal date of {company}", "Deferred", 0, 14),
)


def _demo_tasks(store: Store, rng: random.Random, now: datetime, accounts: list[User]) -> int:
    """A few open (and one or two finished) tasks per person."""
    added = 0
    companies = [name for name, _ in DEMO_COMPANIES]
    for user in accounts:
        for subject_t, status, percent, due_in in rng.sample(_TASKS, rng.randrange(3, 5)):
            company = rng.choice(companies)
            due = datetime.combine(now.date() + timedelta(days=due_in), time(0, 0), UTC)
            created = now - timedelta(days=rng.randrange(3, 20), minutes=rng.randrange(0, 600))
            props: dict[str, Any] = {
                "Subject": subject_t.format(company=company),
                "Body": Body("Text", f"Account: {company}."),
                "Status": status, "PercentComplete": percent, "DueDate": due,
                "StartDate": datetime.combine(created.date(), time(0, 0), UTC),
                "Importance": "High" if due_in <= 3 and status != "Completed" else "Normal",
                "Sensitivity": "Normal", "ReminderIsSet": False,
            }
            if status == "Completed":
                props["CompleteDate"] = now - timedelta(days=1)
            store.add_item(store.folder(user.email, "tasks"), "Task", props, when=created)
            added += 1
    return added


def seed_demo(store: Store, now: datetime | None = None) -> SeedSummary:
    """Fill `store` with the demo organisation: five people of contoso.com and an impersonation service account
    (DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT), a few hundred messages over the last 90 days with the people of
    DEMO_CRM_PEOPLE in their inboxes and sent items, calendars for the next two weeks and a few tasks.

    The same `now` gives the same contents; without one, the current time (to the minute) is used.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    rng = random.Random(DEMO_SEED)
    summary = SeedSummary()
    with store.lock:
        accounts = []
        for account in (*DEMO_ACCOUNTS, DEMO_SERVICE_ACCOUNT):
            user = store.add_user(account.email, account.password, account.display_name,
                                  can_impersonate=account.can_impersonate)
            summary.users.append(user.email)
            if not account.can_impersonate:
                accounts.append(user)
        titles = {a.email: a.title for a in DEMO_ACCOUNTS}
        mails = _demo_mail(rng, now, accounts, titles)
        # Stored oldest first, so that each folder's change log runs in the order mail arrived.
        for mail in sorted(mails, key=lambda m: m.when):
            summary.messages += _store_mail(store, mail)
        summary.calendar_items = _demo_calendars(store, rng, now, accounts, titles)
        summary.tasks = _demo_tasks(store, rng, now, accounts)
    return summary


# -- bulk mail ---------------------------------------------------------------------------------------------------
_BULK_SUBJECTS = (
    "Order {n} confirmed", "Re: Quote {n}", "Invoice {n}", "Meeting notes {n}", "Re: Project update {n}",
    "Question about ticket {n}", "Weekly report {n}", "Fwd: Contract {n}", "Shipment {n} dispatched",
    "Re: Proposal {n}",
)
_BULK_BODIES = (
    Body("Text", "Hello,\r\n\r\nPlease find the details below. Let me know if you have any questions.\r\n\r\n"
                 "Best regards"),
    Body("HTML", "<html><body><p>Hello,</p><p>Thanks for your message. We will get back to you shortly.</p>"
                 "<p>Kind regards</p></body></html>"),
    Body("HTML", "<html><body><p>Hi,</p><p>Attached are the figures for this week. Revenue is up 4% and the "
                 "pipeline has grown by twelve deals.</p><p>Thanks</p></body></html>"),
)


def seed_messages(store: Store, mailbox: str, n: int, now: datetime | None = None, *, days: int = 365) -> int:
    """Deliver `n` received messages into the inbox of `mailbox`, spread over the last `days` days, oldest first.

    Meant for scale work (100,000 messages take a few seconds). Senders are the demo's CRM people and a few
    thousand made-up ones, so that some mail matches CRM records and most does not. Returns the number added.
    """
    user = store.users[mailbox.strip().lower()]
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    rng = random.Random(f"{BULK_SEED}|{user.email}|{n}")
    senders = [Mailbox(p.email, p.name) for p in DEMO_CRM_PEOPLE]
    senders += [Mailbox(f"sender{i}@company{i % 400}.example", f"Sender {i}") for i in range(3000)]
    to = [user.mailbox]
    step = timedelta(days=days) / max(n, 1)
    start = now - timedelta(days=days)
    # Shared objects are safe here: the sandbox replaces property values on update, it never mutates them,
    # and sharing keeps 100,000 messages small in memory and in a --store file.
    with store.lock:
        for i in range(n):
            when = (start + step * (i + 1)).replace(microsecond=0)
            number = 10000 + i
            subject = _BULK_SUBJECTS[i % len(_BULK_SUBJECTS)].format(n=number)
            sender = senders[rng.randrange(len(senders))]
            props: dict[str, Any] = {
                "Subject": subject, "Body": _BULK_BODIES[i % len(_BULK_BODIES)], "ToRecipients": to,
                "InternetMessageId": f"<{_rng_hex(rng)}@{sender.email.split('@')[1]}>",
                "ConversationId": "AAQk" + _rng_hex(rng), "ConversationTopic": subject.removeprefix("Re: "),
            }
            message_defaults(props, sender, when)
            items: list[Item] = deliver_message(store, props, when)
            # Older mail has been read, as in a real inbox.
            items[0].props["IsRead"] = i < n - 50
    return n


__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_COMPANIES",
    "DEMO_CRM_PEOPLE",
    "DEMO_DOMAIN",
    "DEMO_OTHER_SENDERS",
    "DEMO_SERVICE_ACCOUNT",
    "CrmPerson",
    "DemoAccount",
    "SeedSummary",
    "seed_demo",
    "seed_messages",
]
