"""What happens between mailboxes: mail delivery and meeting invitations, updates, cancellations and responses.

Only recipients inside the organisation get anything: mail to outside addresses leaves the sandbox.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from . import recurrence
from .items import Attendee, Body, Item, Mailbox
from .store import Folder, Sent, Store, User

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


def _meeting_message(store: Store, user: User | None, meeting: Item, element: str, subject_prefix: str = "",
                     body: Body | None = None, folder: Folder | None = None) -> Item:
    """A meeting message about `meeting` in `user`'s inbox, or (the organiser's saved copy) in `folder`."""
    props = {name: meeting.props[name] for name in MEETING_FIELDS if name in meeting.props}
    if body is not None:
        props["Body"] = body
    organizer: Mailbox = props["Organizer"]
    now = datetime.now(UTC)
    props.update(
        Subject=subject_prefix + (props.get("Subject") or ""),
        From=organizer,
        Sender=organizer,
        ToRecipients=[a.mailbox for a in meeting.props.get("RequiredAttendees") or []],
        CcRecipients=[a.mailbox for a in meeting.props.get("OptionalAttendees") or []],
        IsRead=user is None,
        DateTimeReceived=now,
        DateTimeSent=now,
        InternetMessageId=new_message_id(organizer.email.split("@")[-1]),
        IsOrganizer=user is None,
        ResponseType="NoResponseReceived" if user is not None else "Organizer",
    )
    if user is not None:
        props["ReceivedBy"] = user.mailbox
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
    target = folder if folder is not None else store.folder(user.email if user else "", "inbox")
    return store.add_item(target, element, props, when=now)


def save_cancellation(store: Store, meeting: Item, folder: Folder, body: Body | None = None) -> Item:
    """The organiser's copy of a meeting cancellation they sent, kept in `folder` (their Sent Items)."""
    return _meeting_message(store, None, meeting, "MeetingCancellation", "Canceled: ", body, folder)


def log_sent(store: Store, kind: str, meeting: Item, recipients: list[str], sender: str | None = None) -> None:
    """Note a meeting message in the store's delivery log (what `GET /sandbox/stats` lists under "sent"); the
    organiser sends it unless `sender` (an attendee's response) says otherwise."""
    if not recipients:
        return
    organizer = meeting.props.get("Organizer")
    sender = sender if sender is not None else organizer.email if organizer else ""
    store.sent.append(Sent(kind, sender, tuple(recipients),
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


def cancel_meeting(store: Store, meeting: Item, only: set[str] | None = None, *, body: Body | None = None) -> list[str]:
    """Cancel a meeting for its attendees: their copies are marked cancelled and free, and a cancellation arrives
    (with `body` as its text when the organiser wrote one). Every attendee cancelled for (outside ones too) is noted
    in the delivery log."""
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
        _meeting_message(store, store.users[email], meeting, "MeetingCancellation", "Canceled: ", body)
        cancelled.append(email)
    return cancelled


def cancel_as_organizer(store: Store, meeting: Item, *, body: Body | None = None,
                        saved_copy_folder: Folder | None = None) -> None:
    """The organiser cancels a meeting (EWS's CancelCalendarItem, Graph's cancel): it is cancelled for every attendee
    with `body` as the cancellation's text, and the organiser's item goes to Deleted Items. One occurrence of a
    series goes from the series, the attendees' too. With `saved_copy_folder` the cancellation sent is kept there."""
    if saved_copy_folder is not None:
        save_cancellation(store, meeting, saved_copy_folder, body)
    if meeting.id not in store.items:  # one occurrence of a series
        master = store.items[recurrence.master_id_of(meeting.id) or ""]
        delete_occurrence(master, meeting.props.get("OriginalStart") or meeting.props["Start"])
        store.touch(master)
        cancel_occurrence_for_attendees(store, master, meeting, body=body)
        return
    cancel_meeting(store, meeting, body=body)
    deleted_items = store.folder(store.folder_of(meeting).mailbox, "deleteditems")
    if store.folder_of(meeting) is deleted_items:
        store.remove_item(meeting)
    else:
        store.move_item(meeting, deleted_items)


# -- an attendee's response ----------------------------------------------------------------------------------------
# Per response (MyResponseType): the subject prefix and item class of the message the organiser gets.
RESPONSE_SUBJECTS = {"Accept": "Accepted: ", "Tentative": "Tentative: ", "Decline": "Declined: "}
RESPONSE_ITEM_CLASSES = {"Accept": "IPM.Schedule.Meeting.Resp.Pos", "Tentative": "IPM.Schedule.Meeting.Resp.Tent",
                         "Decline": "IPM.Schedule.Meeting.Resp.Neg"}


def organizer_item(store: Store, meeting: Item) -> Item | None:
    """The organiser's own item of a meeting (an attendee's copy or a meeting message names it by its UID)."""
    organizer = meeting.props.get("Organizer")
    if organizer is None or organizer.email not in store.users:
        return None
    for item in store.folder(organizer.email, "calendar").items.values():
        if item.props.get("UID") == meeting.props.get("UID") and item.props.get("IsOrganizer", True):
            return item
    return None


def attendee_copy(store: Store, mailbox: str, meeting: Item) -> Item | None:
    """An attendee's copy of a meeting in their calendar (or, declined, in Deleted Items), found from a meeting
    message by its UID."""
    for folder in ("calendar", "deleteditems"):
        for item in store.folder(mailbox, folder).items.values():
            if item.element == "CalendarItem" and item.props.get("UID") == meeting.props.get("UID"):
                return item
    return None


def _answered_attendees(props: dict[str, Any], attendee: str, response: str, when: datetime) -> dict[str, list]:
    """The attendee lists of a meeting's properties with one attendee's response noted; empty when none names them."""
    changed = {}
    for name in ("RequiredAttendees", "OptionalAttendees", "Resources"):
        attendees = list(props.get(name) or [])
        if any(entry.mailbox.email == attendee for entry in attendees):
            changed[name] = [entry._replace(response=response, last_response_time=when)
                             if entry.mailbox.email == attendee else entry for entry in attendees]
    return changed


def _my_response(props: dict[str, Any], response: str, when: datetime) -> dict[str, Any]:
    """What an attendee's copy (or occurrence) of a meeting shows once they answered."""
    changes: dict[str, Any] = {"MyResponseType": response, "AppointmentReplyTime": when}
    if response == "Tentative":
        changes["LegacyFreeBusyStatus"] = "Tentative"
    elif props.get("LegacyFreeBusyStatus") == "Tentative":
        changes["LegacyFreeBusyStatus"] = "Busy"
    return changes


def respond_to_meeting(store: Store, copy: Item, response: str, *, body: Body | None = None,
                       saved_copy_folder: Folder | None = None, send: bool = True) -> Item:
    """An attendee answers a meeting ("Accept", "Tentative" or "Decline"), as Exchange does: their copy shows the
    answer (a declined meeting goes to Deleted Items, which frees the slot, and comes back to the calendar when
    accepted after all), the meeting requests for it leave the inbox for Deleted Items, the organiser gets a response
    message and their item shows the attendee's response and its time (unless `send` is false: then the organiser
    learns nothing). With `saved_copy_folder` the response sent is kept there too. Returns the attendee's copy as it
    now is."""
    mailbox = store.folder_of(copy).mailbox
    now = datetime.now(UTC)
    copy.props.update(_my_response(copy.props, response, now))
    store.touch(copy)
    deleted_items = store.folder(mailbox, "deleteditems")
    requests = [item for folder in (store.folder(mailbox, "inbox"), deleted_items) for item in folder.items.values()
                if item.element == "MeetingRequest" and item.props.get("UID") == copy.props.get("UID")]
    for request in requests:
        if store.folder_of(request) is deleted_items:  # answered from Deleted Items: deleted for good, as in Exchange
            store.remove_item(request)
        else:
            store.move_item(request, deleted_items)
    if response == "Decline" and store.folder_of(copy) is not deleted_items:
        copy = store.move_item(copy, deleted_items)
    elif response != "Decline" and store.folder_of(copy) is deleted_items:  # accepted after all: back in the calendar
        copy = store.move_item(copy, store.folder(mailbox, "calendar"))
    if not send:
        return copy
    organizers = organizer_item(store, copy)
    if organizers is not None and (changed := _answered_attendees(organizers.props, mailbox, response, now)):
        organizers.props.update(changed)
        store.touch(organizers)
    _send_response(store, mailbox, copy, response, body, saved_copy_folder, now)
    return copy


def respond_to_occurrence(store: Store, master: Item, occurrence: Item, response: str, *, body: Body | None = None,
                          saved_copy_folder: Folder | None = None, send: bool = True) -> None:
    """An attendee answers one occurrence of a series: it becomes an exception of their series showing the answer
    (a declined one leaves their series), the organiser gets a response for that occurrence and their occurrence
    shows the attendee's response and its time (unless `send` is false)."""
    mailbox = store.folder_of(master).mailbox
    now = datetime.now(UTC)
    original = occurrence.props.get("OriginalStart") or occurrence.props["Start"]
    times = {"Start": occurrence.props["Start"], "End": occurrence.props["End"]}
    if response == "Decline":
        delete_occurrence(master, original)
    else:
        recurrence.set_exception(master, original, {**times, **_my_response(occurrence.props, response, now)})
    store.touch(master)
    if not send:
        return
    organizers = organizer_item(store, master)
    theirs = store.occurrence(recurrence.occurrence_id(organizers, original)) if organizers is not None else None
    if organizers is not None and theirs is not None and (
            changed := _answered_attendees(theirs.props, mailbox, response, now)):
        recurrence.set_exception(organizers, original, {"Start": theirs.props["Start"], "End": theirs.props["End"],
                                                        **changed})
        store.touch(organizers)
    _send_response(store, mailbox, occurrence, response, body, saved_copy_folder, now, recurrence_id=original)


def _send_response(store: Store, mailbox: str, meeting: Item, response: str, body: Body | None,
                   saved_copy_folder: Folder | None, now: datetime, recurrence_id: datetime | None = None) -> None:
    """The response message from attendee `mailbox` about `meeting` (or its occurrence at `recurrence_id`): in the
    organiser's inbox, in the delivery log, and kept in `saved_copy_folder` when given."""
    user = store.users[mailbox]
    organizer: Mailbox = meeting.props["Organizer"]
    props = {name: meeting.props[name] for name in ("Start", "End", "Location", "UID") if name in meeting.props}
    if recurrence_id is not None:
        props["RecurrenceId"] = recurrence_id
    elif "Recurrence" in meeting.props:
        props["Recurrence"] = meeting.props["Recurrence"]
    props.update(
        ItemClass=RESPONSE_ITEM_CLASSES[response],
        Subject=RESPONSE_SUBJECTS[response] + (meeting.props.get("Subject") or ""),
        Body=body or Body("Text", ""),
        ResponseType=response,
        IsOrganizer=False,
        ToRecipients=[organizer],
    )
    message_defaults(props, user.mailbox, now)
    log_sent(store, "response", meeting, [organizer.email], sender=mailbox)
    if organizer.email in store.users:
        owner = store.users[organizer.email]
        store.add_item(store.folder(owner.email, "inbox"), "MeetingResponse",
                       {**props, "IsRead": False, "ReceivedBy": owner.mailbox, "ReceivedRepresenting": owner.mailbox},
                       when=now)
    if saved_copy_folder is not None:
        store.add_item(saved_copy_folder, "MeetingResponse", {**props, "IsRead": True, "IsFromMe": True}, when=now)


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


def cancel_occurrence_for_attendees(store: Store, master: Item, occurrence: Item, *,
                                    body: Body | None = None) -> list[str]:
    """The organiser deleted one occurrence: it goes from the attendees' copies and a cancellation arrives (with
    `body` as its text, when given). Every attendee (outside ones too) is noted in the delivery log."""
    original = occurrence.props.get("OriginalStart") or occurrence.props["Start"]
    log_sent(store, "cancellation", occurrence, [a.mailbox.email for a in _attendees(occurrence.props)])
    cancelled = []
    for email, copy in attendee_copies(store, master).items():
        delete_occurrence(copy, original)
        store.touch(copy)
        _meeting_message(store, store.users[email], occurrence, "MeetingCancellation", "Canceled: ", body)
        cancelled.append(email)
    return cancelled
