"""What happens between mailboxes: mail delivery and meeting invitations, updates and cancellations.

Only recipients inside the organisation get anything: mail to outside addresses leaves the sandbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from . import recurrence
from .items import Attendee, Item, Mailbox
from .store import Sent, Store, User

SENT_LOG_LIMIT = 1000  # the delivery log keeps the latest meeting messages only (a demo store lives long)

# Properties an attendee's copy of a meeting shares with the organizer's item.
MEETING_FIELDS = (
    "Subject",
    "Body",
    "Start",
    "End",
    "IsAllDayEvent",
    "Location",
    "Organizer",
    "RequiredAttendees",
    "OptionalAttendees",
    "Resources",
    "Recurrence",
    "UID",
    "ReminderIsSet",
    "ReminderMinutesBeforeStart",
    "StartTimeZone",
    "EndTimeZone",
    "MeetingTimeZone",
    "Importance",
    "Sensitivity",
    "Categories",
)


def new_message_id(domain: str) -> str:
    """An RFC 5322 Message-ID in Exchange's style."""
    return f"<{uuid.uuid4().hex.upper()}@{domain}>"


def message_defaults(props: dict[str, Any], sender: Mailbox, when: datetime) -> dict[str, Any]:
    """Fill what Exchange sets on a message it stores or sends."""
    props.setdefault("From", sender)
    props.setdefault("Sender", props["From"])
    props.setdefault("InternetMessageId", new_message_id(sender.email.split("@")[-1]))
    props.setdefault("ConversationId", "AAQk" + uuid.uuid4().hex)
    props.setdefault("ConversationTopic", props.get("Subject", ""))
    props.setdefault("DateTimeSent", when)
    props.setdefault("DateTimeReceived", when)
    props.setdefault("Importance", "Normal")
    props.setdefault("Sensitivity", "Normal")
    return props


def recipients_of(props: dict[str, Any]) -> list[Mailbox]:
    """Everyone a message goes to, each once."""
    seen: dict[str, Mailbox] = {}
    for name in ("ToRecipients", "CcRecipients", "BccRecipients"):
        for box in props.get(name) or []:
            seen.setdefault(box.email, box)
    return list(seen.values())


def deliver_message(store: Store, props: dict[str, Any], received: datetime | None = None) -> list[Item]:
    """Put a received copy of a message into the inbox of each recipient of the organisation."""
    when = received or datetime.now(UTC)
    delivered = []
    for box in recipients_of(props):
        user = store.users.get(box.email)
        if user is None:
            continue
        copy = {k: v for k, v in props.items() if k != "BccRecipients"}
        copy.update(
            IsRead=False,
            IsDraft=False,
            DateTimeReceived=when,
            ReceivedBy=user.mailbox,
            ReceivedRepresenting=user.mailbox,
        )
        delivered.append(store.add_item(store.folder(user.email, "inbox"), "Message", copy, when=when))
    return delivered


def send_message(store: Store, sender: str, props: dict[str, Any], *, save_copy: bool = True) -> Item | None:
    """Send a message from mailbox `sender`: delivered to the organisation's recipients, with a copy in the sender's
    Sent Items unless `save_copy` is false (that copy is returned). The caller removes the draft, if any."""
    now = datetime.now(UTC)
    props = dict(props)
    props.update(IsDraft=False, DateTimeSent=now, DateTimeReceived=now)
    deliver_message(store, props, now)
    if not save_copy:
        return None
    return store.add_item(store.folder(sender, "sentitems"), "Message", {**props, "IsRead": True})


def calendar_defaults(props: dict[str, Any], organizer: User) -> dict[str, Any]:
    """Fill what Exchange sets on a calendar item it stores."""
    props.setdefault("UID", uuid.uuid4().hex.upper())
    props.setdefault("Organizer", organizer.mailbox)
    props.setdefault("LegacyFreeBusyStatus", "Busy")
    props.setdefault("IsAllDayEvent", False)
    props.setdefault("ReminderIsSet", True)
    props.setdefault("ReminderMinutesBeforeStart", 15)
    props.setdefault("Importance", "Normal")
    props.setdefault("Sensitivity", "Normal")
    props.setdefault("MyResponseType", "Organizer")
    props.setdefault("IsOrganizer", True)
    return props


def _attendees(props: dict[str, Any]) -> list[Attendee]:
    return list(props.get("RequiredAttendees") or []) + list(props.get("OptionalAttendees") or [])


def attendee_copies(store: Store, organizer_item: Item) -> dict[str, Item]:
    """The copies of a meeting in attendees' calendars, by attendee address."""
    uid = organizer_item.props.get("UID")
    organizer = organizer_item.props.get("Organizer")
    copies = {}
    for user in store.users.values():
        if organizer is not None and user.email == organizer.email:
            continue
        for item in store.folder(user.email, "calendar").items.values():
            if item.props.get("UID") == uid and item is not organizer_item:
                copies[user.email] = item
    return copies


def _meeting_message(store: Store, user: User, meeting: Item, element: str, subject_prefix: str = "") -> Item:
    props = {name: meeting.props[name] for name in MEETING_FIELDS if name in meeting.props}
    organizer: Mailbox = props["Organizer"]
    now = datetime.now(UTC)
    props.update(
        Subject=subject_prefix + (props.get("Subject") or ""),
        From=organizer,
        Sender=organizer,
        ToRecipients=[a.mailbox for a in meeting.props.get("RequiredAttendees") or []],
        CcRecipients=[a.mailbox for a in meeting.props.get("OptionalAttendees") or []],
        IsRead=False,
        DateTimeReceived=now,
        DateTimeSent=now,
        ReceivedBy=user.mailbox,
        InternetMessageId=new_message_id(organizer.email.split("@")[-1]),
        IsOrganizer=False,
        ResponseType="NoResponseReceived",
    )
    for name in (
        "RequiredAttendees",
        "OptionalAttendees",
        "Resources",
        "ReminderIsSet",
        "ReminderMinutesBeforeStart",
        "StartTimeZone",
        "EndTimeZone",
        "MeetingTimeZone",
    ):
        if element == "MeetingCancellation":
            props.pop(name, None)
    return store.add_item(store.folder(user.email, "inbox"), element, props, when=now)


def log_sent(store: Store, kind: str, meeting: Item, recipients: list[str]) -> None:
    """Note a meeting message in the store's delivery log (what `GET /sandbox/stats` lists under "sent")."""
    if not recipients:
        return
    organizer = meeting.props.get("Organizer")
    store.sent.append(Sent(kind, organizer.email if organizer else "", tuple(recipients),
                           meeting.props.get("Subject") or "", datetime.now(UTC)))
    del store.sent[:-SENT_LOG_LIMIT]


def send_invitations(store: Store, meeting: Item, only: set[str] | None = None, *,
                     kind: str = "invitation") -> list[str]:
    """Invite the attendees of the organisation: a copy in their calendar (and free/busy) and a request in their
    inbox. Every attendee named (outside ones too) is noted in the delivery log. Returns the addresses invited."""
    log_sent(store, kind, meeting, [a.mailbox.email for a in _attendees(meeting.props)
                                     if only is None or a.mailbox.email in only])
    invited = []
    existing = attendee_copies(store, meeting)
    for attendee in _attendees(meeting.props):
        user = store.users.get(attendee.mailbox.email)
        if user is None or (only is not None and user.email not in only):
            continue
        props = {name: meeting.props[name] for name in MEETING_FIELDS if name in meeting.props}
        props.update(
            LegacyFreeBusyStatus=meeting.props.get("LegacyFreeBusyStatus", "Busy"),
            MyResponseType="NoResponseReceived",
            IsOrganizer=False,
            MeetingRequestWasSent=False,
            IsResponseRequested=True,
        )
        copy = existing.get(user.email)
        if copy is None:
            store.add_item(store.folder(user.email, "calendar"), "CalendarItem", props)
        else:
            copy.props.update(props)
            store.touch(copy)
        _meeting_message(store, user, meeting, "MeetingRequest")
        invited.append(user.email)
    meeting.props["MeetingRequestWasSent"] = True
    return invited


def cancel_meeting(store: Store, meeting: Item, only: set[str] | None = None) -> list[str]:
    """Cancel a meeting for its attendees: their copies are marked cancelled and free, and a cancellation arrives.
    Every attendee cancelled for (outside ones too) is noted in the delivery log."""
    # Attendees removed from a meeting are cancelled for by name (`only`): they are no longer among its attendees.
    log_sent(store, "cancellation", meeting, sorted(only) if only is not None
             else [a.mailbox.email for a in _attendees(meeting.props)])
    cancelled = []
    for email, copy in attendee_copies(store, meeting).items():
        if only is not None and email not in only:
            continue
        copy.props.update(
            IsCancelled=True, LegacyFreeBusyStatus="Free", Subject="Canceled: " + (copy.props.get("Subject") or "")
        )
        store.touch(copy)
        _meeting_message(store, store.users[email], meeting, "MeetingCancellation", "Canceled: ")
        cancelled.append(email)
    return cancelled


# -- one occurrence of a series ------------------------------------------------------------------------------------
def delete_occurrence(master: Item, original_start: datetime) -> None:
    """Note an occurrence of a series as deleted (by its original start); the caller touches the master."""
    deleted = list(master.props.get("DeletedOccurrences") or [])
    if original_start not in deleted:
        deleted.append(original_start)
    master.props["DeletedOccurrences"] = deleted
    recurrence.drop_exception(master, original_start)


def update_occurrence_for_attendees(store: Store, master: Item, original_start: datetime,
                                    changes: dict[str, Any]) -> list[str]:
    """The organiser changed one occurrence: the attendees' copies of the series get the same exception and an
    update arrives. Every attendee (outside ones too) is noted in the delivery log."""
    occurrence = store.occurrence(recurrence.occurrence_id(master, original_start))
    if occurrence is None:
        return []
    log_sent(store, "update", occurrence, [a.mailbox.email for a in _attendees(occurrence.props)])
    updated = []
    for email, copy in attendee_copies(store, master).items():
        recurrence.set_exception(copy, original_start, changes)
        store.touch(copy)
        _meeting_message(store, store.users[email], occurrence, "MeetingRequest")
        updated.append(email)
    return updated


def cancel_occurrence_for_attendees(store: Store, master: Item, occurrence: Item) -> list[str]:
    """The organiser deleted one occurrence: it goes from the attendees' copies and a cancellation arrives. Every
    attendee (outside ones too) is noted in the delivery log."""
    original = occurrence.props.get("OriginalStart") or occurrence.props["Start"]
    log_sent(store, "cancellation", occurrence, [a.mailbox.email for a in _attendees(occurrence.props)])
    cancelled = []
    for email, copy in attendee_copies(store, master).items():
        delete_occurrence(copy, original)
        store.touch(copy)
        _meeting_message(store, store.users[email], occurrence, "MeetingCancellation", "Canceled: ")
        cancelled.append(email)
    return cancelled
