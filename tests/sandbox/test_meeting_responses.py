"""Meeting response objects through exchangelib: the organiser's cancel(), the attendees' accept(),
tentatively_accept() and decline(), from their calendar or from the meeting request in their inbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import Attendee, CalendarItem, EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.errors import (
    ErrorCalendarIsCancelledForAccept,
    ErrorCalendarIsNotOrganizer,
    ErrorCalendarIsOrganizerForAccept,
    ErrorCalendarIsOrganizerForDecline,
    ErrorInvalidOperation,
)
from exchangelib.items import (
    SAVE_ONLY,
    SEND_ONLY,
    SEND_TO_ALL_AND_SAVE_COPY,
    MeetingCancellation,
    MeetingRequest,
    MeetingResponse,
)
from exchangelib.recurrence import DailyPattern, Recurrence

UTC_TZ = EWSTimeZone("UTC")
DAY = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)


def _at(hour: int) -> EWSDateTime:
    return EWSDateTime.from_datetime(DAY.replace(hour=hour)).astimezone(UTC_TZ)


def _invite(alice, subject: str = "Pricing review", **extra) -> CalendarItem:  # noqa: ANN001 - exchangelib Account
    """Alice invites Bob (required), Carol (optional) and someone outside the organisation."""
    meeting = CalendarItem(
        account=alice, folder=alice.calendar, subject=subject, start=_at(10), end=_at(11), location="Room 4",
        required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"), response_type="Unknown"),
                            Attendee(mailbox=Mailbox(email_address="lead@customer.example"), response_type="Unknown")],
        optional_attendees=[Attendee(mailbox=Mailbox(email_address="carol@contoso.com"), response_type="Unknown")],
        **extra,
    )
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    return meeting


def _calendar(account) -> list:  # noqa: ANN001 - exchangelib Account
    return list(account.calendar.view(start=_at(0), end=_at(0) + timedelta(days=3)))


def _messages(folder, kind: type) -> list:  # noqa: ANN001 - an exchangelib folder
    return [item for item in folder.all() if isinstance(item, kind)]


def _busy_types(account, email: str) -> list[str]:  # noqa: ANN001 - exchangelib Account
    """The busy types of `email`'s events on the meeting's day, by exchangelib's GetUserAvailability, once the
    merged view says the same of the meeting's hour (digit 10 of the day: 0 free, 1 tentative, 2 busy)."""
    (view,) = account.protocol.get_free_busy_info([(email, "Required", False)], _at(0), _at(0) + timedelta(days=1),
                                                  merged_free_busy_interval=60)
    types = [event.busy_type for event in view.calendar_events or []]
    assert view.merged[10] == {"Busy": "2", "Tentative": "1"}.get(types[0] if types else "Free", "0")
    return types


def _attendees(item) -> dict[str, tuple]:  # noqa: ANN001 - an exchangelib CalendarItem
    return {a.mailbox.email_address: (a.response_type, a.last_response_time)
            for a in [*(item.required_attendees or []), *(item.optional_attendees or [])]}


def test_it_cancels_a_meeting_for_every_attendee_and_removes_the_organisers_item(sandbox, account):
    alice, bob, carol = account("alice@contoso.com"), account("bob@contoso.com"), account("carol@contoso.com")
    meeting = _invite(alice)
    assert _busy_types(bob, "bob@contoso.com") == ["Busy"]

    alice.calendar.get(id=meeting.id).cancel(new_body="Postponed to next quarter.")

    for attendee in (bob, carol):
        [copy] = _calendar(attendee)
        assert copy.subject == "Canceled: Pricing review"
        assert copy.is_cancelled is True and copy.legacy_free_busy_status == "Free"
        [cancellation] = _messages(attendee.inbox, MeetingCancellation)
        assert cancellation.subject == "Canceled: Pricing review"
        assert cancellation.body == "Postponed to next quarter."
        assert cancellation.sender.email_address == "alice@contoso.com"
    assert _busy_types(alice, "bob@contoso.com") == ["Free"]
    assert _calendar(alice) == []
    assert [item.subject for item in alice.trash.all()] == ["Pricing review"]
    [saved] = _messages(alice.sent, MeetingCancellation)
    assert saved.subject == "Canceled: Pricing review"
    cancellations = [s for s in sandbox.store.sent if s.kind == "cancellation"]
    assert [sorted(s.recipients) for s in cancellations] == [
        ["bob@contoso.com", "carol@contoso.com", "lead@customer.example"]]


def test_only_the_organiser_can_cancel_a_meeting(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    _invite(alice)
    [copy] = _calendar(bob)
    with pytest.raises(ErrorCalendarIsNotOrganizer):
        copy.cancel()
    [still] = _calendar(bob)
    assert not still.is_cancelled and still.subject == "Pricing review"
    assert [item.subject for item in _calendar(alice)] == ["Pricing review"]


def test_it_cancels_one_occurrence_of_a_series_for_the_attendees(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    _invite(alice, "Stand-up", recurrence=Recurrence(pattern=DailyPattern(interval=1), start=DAY.date(),
                                                     number=3))
    second = _calendar(alice)[1]
    second.cancel(new_body="No stand-up on Wednesday.")
    assert [item.start for item in _calendar(alice)] == [_at(10), _at(10) + timedelta(days=2)]
    assert [item.start for item in _calendar(bob)] == [_at(10), _at(10) + timedelta(days=2)]
    [cancellation] = _messages(bob.inbox, MeetingCancellation)
    assert cancellation.subject == "Canceled: Stand-up" and cancellation.body == "No stand-up on Wednesday."
    [saved] = _messages(alice.sent, MeetingCancellation)
    assert saved.subject == "Canceled: Stand-up"


def test_an_attendee_answers_one_occurrence_of_a_series(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    _invite(alice, "Stand-up", recurrence=Recurrence(pattern=DailyPattern(interval=1), start=DAY.date(),
                                                     number=3))
    before = datetime.now(UTC).replace(microsecond=0)
    _calendar(bob)[1].accept()
    _calendar(bob)[2].decline()

    first, second = _calendar(bob)
    assert (first.my_response_type, second.my_response_type) == ("NoResponseReceived", "Accept")
    assert second.start == _at(10) + timedelta(days=1) and second.type == "Exception"
    assert sorted(m.subject for m in _messages(alice.inbox, MeetingResponse)) == [
        "Accepted: Stand-up", "Declined: Stand-up"]
    assert [_attendees(occurrence)["bob@contoso.com"][0] for occurrence in _calendar(alice)] == [
        "Unknown", "Accept", "Decline"]
    assert before <= _attendees(_calendar(alice)[1])["bob@contoso.com"][1] <= datetime.now(UTC)
    assert _attendees(_calendar(alice)[1])["carol@contoso.com"] == ("Unknown", None)
    assert [m.subject for m in _messages(bob.inbox, MeetingRequest)] == ["Stand-up"]  # the series is still open


def test_deleting_a_meeting_with_cancellations_keeps_a_copy_when_asked(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting = _invite(alice)
    meeting.delete(send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY)
    [copy] = _calendar(bob)
    assert copy.is_cancelled is True and copy.subject == "Canceled: Pricing review"
    [saved] = _messages(alice.sent, MeetingCancellation)
    assert saved.subject == "Canceled: Pricing review" and saved.is_read is True


@pytest.mark.parametrize(
    ("respond", "response_type", "subject", "item_class", "busy"),
    [
        ("accept", "Accept", "Accepted: Pricing review", "IPM.Schedule.Meeting.Resp.Pos", "Busy"),
        ("tentatively_accept", "Tentative", "Tentative: Pricing review", "IPM.Schedule.Meeting.Resp.Tent",
         "Tentative"),
    ],
)
def test_an_attendee_answers_from_their_calendar_and_the_organiser_sees_it(account, respond, response_type, subject,
                                                                           item_class, busy):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting = _invite(alice)
    [copy] = _calendar(bob)
    before = datetime.now(UTC).replace(microsecond=0)

    getattr(copy, respond)(body="Looking forward to it.")

    [answered] = _calendar(bob)
    assert answered.my_response_type == response_type and answered.legacy_free_busy_status == busy
    assert before <= answered.appointment_reply_time <= datetime.now(UTC)
    assert _busy_types(alice, "bob@contoso.com") == [busy]
    assert _messages(bob.inbox, MeetingRequest) == []
    assert [item.subject for item in _messages(bob.trash, MeetingRequest)] == ["Pricing review"]
    [sent] = _messages(bob.sent, MeetingResponse)
    assert sent.subject == subject
    [received] = _messages(alice.inbox, MeetingResponse)
    assert (received.subject, received.item_class) == (subject, item_class)
    assert received.sender.email_address == "bob@contoso.com" and received.body == "Looking forward to it."
    attendees = _attendees(alice.calendar.get(id=meeting.id))
    assert attendees["bob@contoso.com"][0] == response_type
    assert before <= attendees["bob@contoso.com"][1] <= datetime.now(UTC)
    assert attendees["carol@contoso.com"] == ("Unknown", None)


def test_a_declined_meeting_leaves_the_attendees_calendar_and_frees_the_slot(sandbox, account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting = _invite(alice)
    [copy] = _calendar(bob)
    copy.decline(message_disposition=SEND_ONLY)

    assert _calendar(bob) == []
    [declined] = [item for item in bob.trash.all() if isinstance(item, CalendarItem)]
    assert declined.subject == "Pricing review" and declined.my_response_type == "Decline"
    assert _busy_types(alice, "bob@contoso.com") == []
    assert _messages(bob.sent, MeetingResponse) == []  # SendOnly keeps no copy
    [received] = _messages(alice.inbox, MeetingResponse)
    assert received.subject == "Declined: Pricing review"
    assert _attendees(alice.calendar.get(id=meeting.id))["bob@contoso.com"][0] == "Decline"
    [logged] = [s for s in sandbox.store.sent if s.kind == "response"]
    assert (logged.sender, logged.recipients, logged.subject) == ("bob@contoso.com", ("alice@contoso.com",),
                                                                  "Pricing review")

    [request] = _messages(bob.trash, MeetingRequest)
    request.accept()  # changed their mind: the meeting is back in the calendar
    [back] = _calendar(bob)
    assert back.subject == "Pricing review" and back.my_response_type == "Accept"
    assert _busy_types(alice, "bob@contoso.com") == ["Busy"]
    assert [item for item in bob.trash.all() if isinstance(item, CalendarItem)] == []
    assert _attendees(alice.calendar.get(id=meeting.id))["bob@contoso.com"][0] == "Accept"


def test_an_attendee_answers_from_the_meeting_request_in_their_inbox(account):
    alice, carol = account("alice@contoso.com"), account("carol@contoso.com")
    meeting = _invite(alice)
    [request] = _messages(carol.inbox, MeetingRequest)
    request.tentatively_accept()

    [copy] = _calendar(carol)
    assert copy.my_response_type == "Tentative" and copy.legacy_free_busy_status == "Tentative"
    assert _messages(carol.inbox, MeetingRequest) == []
    assert _attendees(alice.calendar.get(id=meeting.id))["carol@contoso.com"][0] == "Tentative"
    [received] = _messages(alice.inbox, MeetingResponse)
    assert received.subject == "Tentative: Pricing review"

    [moved] = _messages(carol.trash, MeetingRequest)
    moved.accept()  # answering again from Deleted Items deletes the request for good
    assert _calendar(carol)[0].my_response_type == "Accept"
    assert _messages(carol.trash, MeetingRequest) == []
    assert _attendees(alice.calendar.get(id=meeting.id))["carol@contoso.com"][0] == "Accept"


def test_the_organiser_cannot_answer_and_nobody_accepts_a_cancelled_meeting(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting = _invite(alice)
    mine = alice.calendar.get(id=meeting.id)
    with pytest.raises(ErrorCalendarIsOrganizerForAccept):
        mine.accept()
    with pytest.raises(ErrorCalendarIsOrganizerForDecline):
        mine.decline()
    assert _messages(alice.inbox, MeetingResponse) == []

    mine.cancel()
    [copy] = _calendar(bob)
    with pytest.raises(ErrorCalendarIsCancelledForAccept):
        copy.accept()
    assert _calendar(bob)[0].my_response_type == "NoResponseReceived"


def test_it_refuses_a_response_kept_as_a_draft_and_changes_nothing(account):
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting = _invite(alice)
    [copy] = _calendar(bob)
    with pytest.raises(ErrorInvalidOperation, match="SendOnly or SendAndSaveCopy"):
        copy.accept(message_disposition=SAVE_ONLY, folder=bob.drafts)
    assert _calendar(bob)[0].my_response_type == "NoResponseReceived"
    assert list(bob.drafts.all()) == [] and _messages(alice.inbox, MeetingResponse) == []
    assert _attendees(alice.calendar.get(id=meeting.id))["bob@contoso.com"] == ("Unknown", None)
