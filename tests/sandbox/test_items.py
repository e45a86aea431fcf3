"""Item operations through exchangelib: create (send, save, invite), get, update, delete, move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ews_client import sync_page
from exchangelib import (
    Attendee,
    CalendarItem,
    EWSDateTime,
    EWSTimeZone,
    FileAttachment,
    HTMLBody,
    Mailbox,
    Message,
    Task,
)
from exchangelib.errors import ErrorAccessDenied, ErrorInvalidIdMalformed, ErrorIrresolvableConflict, ErrorItemNotFound
from exchangelib.items import SEND_ONLY_TO_ALL, SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE

UTC_TZ = EWSTimeZone("UTC")


def _folder_items(sandbox, mailbox: str, folder: str) -> list:
    return list(sandbox.store.folder(mailbox, folder).items.values())


def _at(hour: int, day: int = 2) -> EWSDateTime:
    return EWSDateTime(2026, 12, day, hour, 0, tzinfo=UTC_TZ)


def test_it_saves_a_draft_that_is_sent_later(sandbox, any_account):
    alice = any_account("alice@contoso.com")
    draft = Message(
        account=alice,
        folder=alice.drafts,
        subject="Proposal",
        body="Draft text",
        to_recipients=[Mailbox(email_address="bob@contoso.com")],
    )
    draft.save()
    assert draft.id and draft.changekey
    fetched = alice.drafts.get(id=draft.id)
    assert fetched.subject == "Proposal" and fetched.is_draft is True
    assert _folder_items(sandbox, "bob@contoso.com", "inbox") == []

    fetched.send(save_copy=True)
    assert _folder_items(sandbox, "alice@contoso.com", "drafts") == []
    [received] = _folder_items(sandbox, "bob@contoso.com", "inbox")
    assert received.props["Subject"] == "Proposal" and received.props["IsRead"] is False
    assert [i.props["Subject"] for i in _folder_items(sandbox, "alice@contoso.com", "sentitems")] == ["Proposal"]


def test_it_delivers_a_sent_message_to_every_recipient_of_the_organisation(sandbox, account):
    alice = account("alice@contoso.com")
    Message(
        account=alice,
        subject="Quarterly numbers",
        body=HTMLBody("<p>See <b>attached</b></p>"),
        to_recipients=[Mailbox(email_address="bob@contoso.com"), Mailbox(email_address="buyer@customer.example")],
        cc_recipients=[Mailbox(email_address="carol@contoso.com")],
    ).send_and_save()
    for person in ("bob@contoso.com", "carol@contoso.com"):
        [copy] = _folder_items(sandbox, person, "inbox")
        assert copy.props["From"].email == "alice@contoso.com"
        assert copy.props["DateTimeReceived"] <= datetime.now(UTC)
    [sent] = _folder_items(sandbox, "alice@contoso.com", "sentitems")
    assert [box.email for box in sent.props["ToRecipients"]] == ["bob@contoso.com", "buyer@customer.example"]

    bob = account("bob@contoso.com")
    [(kind, item)] = sync_page(bob, bob.inbox, fields=("subject", "sender", "body")).changes
    full = bob.inbox.get(id=item.id)
    assert full.subject == "Quarterly numbers"
    assert full.sender.email_address == "alice@contoso.com"
    assert full.body == "<p>See <b>attached</b></p>" and isinstance(full.body, HTMLBody)
    assert full.text_body.strip() == "See attached"
    assert [r.email_address for r in full.cc_recipients] == ["carol@contoso.com"]


def test_it_sends_without_saving_a_copy(sandbox, account):
    alice = account("alice@contoso.com")
    message = Message(
        account=alice, subject="No copy", body="x", to_recipients=[Mailbox(email_address="bob@contoso.com")]
    )
    message.send(save_copy=False)
    assert _folder_items(sandbox, "alice@contoso.com", "sentitems") == []
    assert len(_folder_items(sandbox, "bob@contoso.com", "inbox")) == 1


def test_it_gets_items_in_batches_with_bodies_and_attachment_names(sandbox, account):
    alice = account("alice@contoso.com")
    ids = []
    for number in range(3):
        message = Message(account=alice, folder=alice.drafts, subject=f"Batch {number}", body=f"Body {number}")
        message.attach(FileAttachment(name=f"file{number}.txt", content=b"x" * (10 + number)))
        message.save()
        ids.append(message)
    fetched = list(alice.fetch(ids=ids))
    assert [m.subject for m in fetched] == ["Batch 0", "Batch 1", "Batch 2"]
    assert [m.body for m in fetched] == ["Body 0", "Body 1", "Body 2"]
    assert [(a.name, a.size) for a in fetched[2].attachments] == [("file2.txt", 12)]
    assert fetched[0].has_attachments is True
    assert sandbox.stats.operations["GetItem"] == 1


def test_it_answers_unknown_malformed_and_foreign_ids_per_item(sandbox, account):
    alice = account("alice@contoso.com")
    bob = account("bob@contoso.com")
    bobs = Message(account=bob, folder=bob.drafts, subject="Bob's", body="private")
    bobs.save()
    mine = Message(account=alice, folder=alice.drafts, subject="Mine", body="x")
    mine.save()
    gone = Message(account=alice, folder=alice.drafts, subject="Gone", body="x")
    gone.save()
    gone_id = gone.id
    gone.delete()
    results = list(alice.fetch(ids=[(mine.id, None), (gone_id, None), ("not-an-id", None)]))
    assert results[0].subject == "Mine"
    assert isinstance(results[1], ErrorItemNotFound)
    assert isinstance(results[2], ErrorInvalidIdMalformed)
    with pytest.raises(ErrorAccessDenied):
        list(alice.fetch(ids=[(bobs.id, None)]))


def test_it_updates_fields_with_a_new_change_key_each_time(sandbox, account):
    alice = account("alice@contoso.com")
    task = Task(account=alice, folder=alice.tasks, subject="Call back", body="About the quote")
    task.save()
    first_key = task.changekey
    task.subject = "Call back ACME"
    task.save(update_fields=["subject"])
    assert task.changekey != first_key
    task.body = None
    task.save(update_fields=["body"])
    fetched = alice.tasks.get(id=task.id)
    assert fetched.subject == "Call back ACME" and fetched.body is None
    assert fetched.changekey == task.changekey


def test_it_refuses_an_update_with_a_stale_change_key_when_asked_never_to_overwrite(sandbox, account):
    alice = account("alice@contoso.com")
    message = Message(account=alice, folder=alice.drafts, subject="v1", body="x")
    message.save()
    stale = alice.drafts.get(id=message.id)
    message.subject = "v2"
    message.save(update_fields=["subject"])
    stale.subject = "v3"
    with pytest.raises(ErrorIrresolvableConflict):
        stale.save(update_fields=["subject"], conflict_resolution="NeverOverwrite")
    assert alice.drafts.get(id=message.id).subject == "v2"
    stale.save(update_fields=["subject"], conflict_resolution="AlwaysOverwrite")
    assert alice.drafts.get(id=message.id).subject == "v3"


def test_it_completes_a_task(sandbox, account):
    alice = account("alice@contoso.com")
    task = Task(account=alice, folder=alice.tasks, subject="Send contract", due_date=datetime(2026, 12, 3).date())
    task.save()
    stored = sandbox.store.items[task.id]
    assert stored.props["Status"] == "NotStarted" and stored.props["PercentComplete"] == 0
    task.status = Task.COMPLETED
    task.percent_complete = Decimal(100)
    task.save(update_fields=["status", "percent_complete"])
    fetched = alice.tasks.get(id=task.id)
    assert fetched.status == "Completed" and fetched.is_complete is True and fetched.percent_complete == 100


@pytest.mark.parametrize(
    ("delete_type", "in_deleted_items"), [("HardDelete", 0), ("SoftDelete", 0), ("MoveToDeletedItems", 1)]
)
def test_it_deletes_items_in_each_way(sandbox, account, delete_type, in_deleted_items):
    alice = account("alice@contoso.com")
    message = Message(account=alice, folder=alice.drafts, subject="Bin me", body="x")
    message.save()
    {"HardDelete": message.delete, "SoftDelete": message.soft_delete, "MoveToDeletedItems": message.move_to_trash}[
        delete_type
    ]()
    assert _folder_items(sandbox, "alice@contoso.com", "drafts") == []
    assert len(_folder_items(sandbox, "alice@contoso.com", "deleteditems")) == in_deleted_items


def test_it_moves_an_item_to_another_folder_with_a_new_id(sandbox, account):
    alice = account("alice@contoso.com")
    message = Message(account=alice, folder=alice.drafts, subject="Move me", body="x")
    message.save()
    old_id = message.id
    message.move(alice.inbox)
    assert message.id != old_id
    assert [i.id for i in _folder_items(sandbox, "alice@contoso.com", "inbox")] == [message.id]
    with pytest.raises(ErrorItemNotFound):
        alice.drafts.get(id=old_id)


def test_it_puts_a_meeting_into_each_attendees_calendar_with_its_reminder(sandbox, account):
    alice = account("alice@contoso.com")
    meeting = CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Pipeline review",
        start=_at(14),
        end=_at(15),
        location="Room 1",
        reminder_is_set=True,
        reminder_minutes_before_start=15,
        required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"), response_type="Unknown")],
        optional_attendees=[Attendee(mailbox=Mailbox(email_address="lead@customer.example"), response_type="Unknown")],
    )
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    [copy] = _folder_items(sandbox, "bob@contoso.com", "calendar")
    assert copy.props["Subject"] == "Pipeline review"
    assert copy.props["Start"] == datetime(2026, 12, 2, 14, tzinfo=UTC)
    assert copy.props["ReminderMinutesBeforeStart"] == 15
    assert copy.props["Organizer"].email == "alice@contoso.com"
    [request] = _folder_items(sandbox, "bob@contoso.com", "inbox")
    assert request.element == "MeetingRequest"

    bob = account("bob@contoso.com")
    bobs = bob.calendar.get(id=copy.id)
    assert bobs.organizer.email_address == "alice@contoso.com"
    assert [a.mailbox.email_address for a in bobs.required_attendees] == ["bob@contoso.com"]
    assert bobs.legacy_free_busy_status == "Busy" and bobs.reminder_minutes_before_start == 15
    mine = alice.calendar.get(id=meeting.id)
    assert mine.is_meeting is True and mine.meeting_request_was_sent is True


def test_it_creates_an_appointment_that_invites_nobody(sandbox, account):
    alice = account("alice@contoso.com")
    appointment = CalendarItem(account=alice, folder=alice.calendar, subject="Dentist", start=_at(9), end=_at(10))
    appointment.save(send_meeting_invitations=SEND_TO_NONE)
    assert [i.props["Subject"] for i in _folder_items(sandbox, "alice@contoso.com", "calendar")] == ["Dentist"]
    for person in ("bob@contoso.com", "carol@contoso.com"):
        assert _folder_items(sandbox, person, "calendar") == [] and _folder_items(sandbox, person, "inbox") == []


def test_it_sends_no_invitation_when_told_not_to(sandbox, account):
    alice = account("alice@contoso.com")
    CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Quiet",
        start=_at(11),
        end=_at(12),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"), response_type="Unknown")],
    ).save(send_meeting_invitations=SEND_TO_NONE)
    assert _folder_items(sandbox, "bob@contoso.com", "calendar") == []


def test_it_updates_and_cancels_a_meeting_for_its_attendees(sandbox, account):
    alice = account("alice@contoso.com")
    meeting = CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Demo",
        start=_at(10),
        end=_at(11),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="carol@contoso.com"), response_type="Unknown")],
    )
    meeting.save(send_meeting_invitations=SEND_ONLY_TO_ALL)
    meeting.start, meeting.end = _at(12), _at(13)
    meeting.save(update_fields=["start", "end"], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    [copy] = _folder_items(sandbox, "carol@contoso.com", "calendar")
    assert copy.props["Start"] == datetime(2026, 12, 2, 12, tzinfo=UTC)

    meeting.delete(send_meeting_cancellations=SEND_ONLY_TO_ALL)
    assert copy.props["IsCancelled"] is True and copy.props["LegacyFreeBusyStatus"] == "Free"
    assert [i.element for i in _folder_items(sandbox, "carol@contoso.com", "inbox")] == [
        "MeetingRequest",
        "MeetingRequest",
        "MeetingCancellation",
    ]
    assert _folder_items(sandbox, "alice@contoso.com", "calendar") == []


def test_it_refuses_a_meeting_that_ends_before_it_starts(sandbox, account):
    alice = account("alice@contoso.com")
    start = datetime.now(UTC).replace(microsecond=0)
    item = CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Backwards",
        start=EWSDateTime.from_datetime(start),
        end=EWSDateTime.from_datetime(start - timedelta(hours=1)),
    )
    with pytest.raises(Exception, match="(?i)end"):
        item.save(send_meeting_invitations=SEND_TO_NONE)
    assert _folder_items(sandbox, "alice@contoso.com", "calendar") == []
