"""One store, two fronts: what Graph changes, exchangelib sees on its next sync, and the other way round."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from exchangelib import EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, CalendarItem, MeetingCancellation, MeetingResponse, Message
from exchangelib.properties import Attendee
from exchangelib.recurrence import DailyPattern, Recurrence
from graph_client import Graph

ALICE = "users/alice@contoso.com"
BOB = "users/bob@contoso.com"


def _sync(folder) -> tuple[list, str]:  # noqa: ANN001 - an exchangelib folder
    """One full SyncFolderItems pass: the changes and the sync state after it."""
    changes = list(folder.sync_items(only_fields=["subject", "is_read"]))
    return changes, folder.item_sync_state


def test_mail_sent_over_graph_reaches_a_colleague_seen_by_sync_folder_items(account, graph: Graph) -> None:
    bob = account("bob@contoso.com")
    _, before = _sync(bob.inbox)
    graph.ok("POST", f"{ALICE}/sendMail", {"message": {
        "subject": "Contract draft", "body": {"contentType": "text", "content": "See attached."},
        "toRecipients": [{"emailAddress": {"address": "bob@contoso.com"}}]}}, status=202)
    bob.inbox.item_sync_state = before
    changes, _ = _sync(bob.inbox)
    created = [item for kind, item in changes if kind == "create"]
    assert [item.subject for item in created] == ["Contract draft"]
    assert created[0].is_read is False


def test_a_read_flag_set_over_ews_shows_once_on_the_next_graph_round(account, graph_sandbox, graph: Graph) -> None:
    alice = account("alice@contoso.com")
    Message(account=alice, folder=alice.inbox, subject="Flag me", body="x").save()
    Message(account=alice, folder=alice.inbox, subject="Leave me", body="y").save()
    entries, delta_link, _ = graph.delta_round(f"{ALICE}/mailFolders/inbox/messages/delta", 1)
    assert sorted(e["subject"] for e in entries) == ["Flag me", "Leave me"]
    item = alice.inbox.get(subject="Flag me")
    item.is_read = True
    item.save(update_fields=["is_read"])
    changes, delta_link, _ = graph.delta_round(delta_link)
    assert [(c["subject"], c["isRead"]) for c in changes] == [("Flag me", True)]
    assert graph.delta_round(delta_link)[0] == []


def test_a_change_over_graph_moves_the_ews_sync_state_on(account, graph: Graph) -> None:
    alice = account("alice@contoso.com")
    Message(account=alice, folder=alice.inbox, subject="Read over Graph", body="x").save()
    _, state = _sync(alice.inbox)
    message = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages")["value"][0]
    graph.ok("PATCH", f"{ALICE}/messages/{message['id']}", {"isRead": True})
    alice.inbox.item_sync_state = state
    changes, state = _sync(alice.inbox)
    assert [kind for kind, _ in changes] == ["read_flag_change"]
    assert graph.delete(f"{ALICE}/messages/{message['id']}").status_code == 204
    alice.inbox.item_sync_state = state
    changes, _ = _sync(alice.inbox)
    assert [kind for kind, _ in changes] == ["delete"]


def test_an_ews_meeting_is_in_the_attendees_calendar_view_and_busy_in_get_schedule(account, graph: Graph) -> None:
    alice = account("alice@contoso.com")
    utc = EWSTimeZone("UTC")
    day = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = EWSDateTime.from_datetime(day.replace(hour=10)).astimezone(utc)
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject="Pricing review", start=start,
                           end=start + timedelta(hours=1), location="Room 4",
                           required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"))])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    window = {"startDateTime": day.isoformat().replace("+00:00", "Z"),
              "endDateTime": (day + timedelta(days=1)).isoformat().replace("+00:00", "Z")}
    events = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]
    assert [(e["subject"], e["start"]["dateTime"], e["location"]["displayName"]) for e in events] == [
        ("Pricing review", day.replace(hour=10).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "Room 4")]
    assert events[0]["organizer"]["emailAddress"]["address"] == "alice@contoso.com"
    assert events[0]["isOrganizer"] is False and events[0]["type"] == "singleInstance"
    schedule = graph.ok("POST", f"{BOB}/calendar/getSchedule", {
        "schedules": ["bob@contoso.com", "nobody@contoso.com"],
        "startTime": {"dateTime": day.replace(hour=9).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "endTime": {"dateTime": day.replace(hour=12).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "availabilityViewInterval": 60})["value"]
    assert schedule[0]["scheduleId"] == "bob@contoso.com"
    assert schedule[0]["availabilityView"] == "020"
    assert [item["status"] for item in schedule[0]["scheduleItems"]] == ["busy"]
    assert schedule[1]["error"]["responseCode"] == "ErrorMailRecipientNotFound"


def test_an_ews_series_shows_over_graph_as_occurrences_and_exceptions_without_its_master(account,
                                                                                          graph: Graph) -> None:
    berlin = EWSTimeZone("Europe/Berlin")
    alice = account("alice@contoso.com")
    series = CalendarItem(account=alice, folder=alice.calendar, subject="Stand-up",
                          start=EWSDateTime(2027, 6, 1, 9, tzinfo=berlin),
                          end=EWSDateTime(2027, 6, 1, 10, tzinfo=berlin),
                          recurrence=Recurrence(pattern=DailyPattern(interval=1), start=date(2027, 6, 1), number=4))
    series.save()
    window = {"startDateTime": "2027-06-01T00:00:00Z", "endDateTime": "2027-06-08T00:00:00Z"}
    link = f"{ALICE}/calendarView/delta?startDateTime={window['startDateTime']}&endDateTime={window['endDateTime']}"
    _, delta_link, _ = graph.delta_round(link)
    second = list(alice.calendar.view(start=EWSDateTime(2027, 6, 1, tzinfo=berlin),
                                      end=EWSDateTime(2027, 6, 8, tzinfo=berlin)))[1]
    second.subject, second.start, second.end = ("Stand-up (moved)", EWSDateTime(2027, 6, 2, 15, tzinfo=berlin),
                                                EWSDateTime(2027, 6, 2, 16, tzinfo=berlin))
    second.save(update_fields=["subject", "start", "end"])
    view = graph.ok("GET", f"{ALICE}/calendarView", params=window)["value"]
    assert [(e["type"], e["subject"], e["start"]["dateTime"][:16]) for e in view] == [
        ("occurrence", "Stand-up", "2027-06-01T07:00"), ("exception", "Stand-up (moved)", "2027-06-02T13:00"),
        ("occurrence", "Stand-up", "2027-06-03T07:00"), ("occurrence", "Stand-up", "2027-06-04T07:00")]
    master = graph.ok("GET", f"{ALICE}/events/{view[0]['seriesMasterId']}")
    assert master["type"] == "seriesMaster" and master["recurrence"]["pattern"]["type"] == "daily"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 4
    # The series changed: the calendar view's next round gives what changed in the window.
    changes, _, _ = graph.delta_round(delta_link)
    assert "exception" in {c.get("type") for c in changes} and all(c.get("type") != "seriesMaster" for c in changes)


def _pricing_review(alice) -> tuple[CalendarItem, dict[str, str]]:  # noqa: ANN001 - an exchangelib Account
    """Alice invites Bob over EWS, a week from now; the meeting and a calendarView window of its day."""
    day = (datetime.now(UTC) + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    start = EWSDateTime.from_datetime(day.replace(hour=10)).astimezone(EWSTimeZone("UTC"))
    meeting = CalendarItem(account=alice, folder=alice.calendar, subject="Pricing review", start=start,
                           end=start + timedelta(hours=1),
                           required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"),
                                                        response_type="Unknown")])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    window = {"startDateTime": day.isoformat().replace("+00:00", "Z"),
              "endDateTime": (day + timedelta(days=1)).isoformat().replace("+00:00", "Z")}
    return meeting, window


def test_an_ews_response_shows_over_graph_on_both_sides(account, graph: Graph) -> None:
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    _, window = _pricing_review(alice)
    [bobs] = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]
    assert bobs["responseStatus"] == {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}
    before = datetime.now(UTC).replace(microsecond=0)

    [copy] = bob.calendar.all()
    copy.tentatively_accept()

    [bobs] = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]
    assert bobs["responseStatus"]["response"] == "tentativelyAccepted" and bobs["showAs"] == "tentative"
    assert before <= datetime.fromisoformat(bobs["responseStatus"]["time"]) <= datetime.now(UTC)
    [alices] = graph.ok("GET", f"{ALICE}/calendarView", params=window)["value"]
    [attendee] = alices["attendees"]
    assert attendee["emailAddress"]["address"] == "bob@contoso.com"
    assert attendee["status"]["response"] == "tentativelyAccepted"
    assert before <= datetime.fromisoformat(attendee["status"]["time"]) <= datetime.now(UTC)
    [response] = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages")["value"]
    assert response["@odata.type"] == "#microsoft.graph.eventMessage"
    assert (response["subject"], response["meetingMessageType"]) == ("Tentative: Pricing review",
                                                                     "meetingTenativelyAccepted")
    assert response["from"]["emailAddress"]["address"] == "bob@contoso.com"


def test_an_ews_cancellation_shows_over_graph(account, graph: Graph) -> None:
    alice = account("alice@contoso.com")
    meeting, window = _pricing_review(alice)
    alice.calendar.get(id=meeting.id).cancel()

    assert graph.ok("GET", f"{ALICE}/calendarView", params=window)["value"] == []
    [bobs] = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]
    assert (bobs["subject"], bobs["isCancelled"], bobs["showAs"]) == ("Canceled: Pricing review", True, "free")
    messages = graph.ok("GET", f"{BOB}/mailFolders/inbox/messages")["value"]
    assert sorted((m["meetingMessageType"], m["subject"]) for m in messages) == [
        ("meetingCancelled", "Canceled: Pricing review"), ("meetingRequest", "Pricing review")]


def test_a_graph_response_shows_over_ews_and_goes_unsent_when_asked(account, graph: Graph) -> None:
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    meeting, window = _pricing_review(alice)
    [bobs] = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]

    graph.ok("POST", f"{BOB}/events/{bobs['id']}/tentativelyAccept", {"sendResponse": False}, status=202)
    [copy] = bob.calendar.all()
    assert copy.my_response_type == "Tentative" and copy.legacy_free_busy_status == "Tentative"
    assert [a.response_type for a in alice.calendar.get(id=meeting.id).required_attendees] == ["Unknown"]
    assert [item for item in alice.inbox.all() if isinstance(item, MeetingResponse)] == []

    graph.ok("POST", f"{BOB}/events/{bobs['id']}/decline", {"Comment": "Out that day.", "SendResponse": True},
             status=202)
    assert list(bob.calendar.all()) == []
    [attendee] = alice.calendar.get(id=meeting.id).required_attendees
    assert attendee.response_type == "Decline" and attendee.last_response_time is not None
    [response] = [item for item in alice.inbox.all() if isinstance(item, MeetingResponse)]
    assert (response.subject, response.body) == ("Declined: Pricing review", "Out that day.")
    assert [item.subject for item in bob.sent.all()] == ["Declined: Pricing review"]


def test_a_graph_cancellation_shows_over_ews_and_only_the_organiser_may_cancel(account, graph: Graph) -> None:
    alice, bob = account("alice@contoso.com"), account("bob@contoso.com")
    _, window = _pricing_review(alice)
    [bobs] = graph.ok("GET", f"{BOB}/calendarView", params=window)["value"]
    refused = graph.request("POST", f"{BOB}/events/{bobs['id']}/cancel", json={"comment": "Not mine"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "Your request can't be completed. You need to be an organizer to cancel a meeting.")
    [alices] = graph.ok("GET", f"{ALICE}/calendarView", params=window)["value"]
    assert graph.request("POST", f"{ALICE}/events/{alices['id']}/accept", json={}).status_code == 400

    graph.ok("POST", f"{ALICE}/events/{alices['id']}/cancel", {"comment": "Postponed."}, status=202)
    [copy] = bob.calendar.all()
    assert copy.subject == "Canceled: Pricing review" and copy.is_cancelled is True
    [cancellation] = [item for item in bob.inbox.all() if isinstance(item, MeetingCancellation)]
    assert cancellation.body == "Postponed."
    assert list(alice.calendar.all()) == [] and [item.subject for item in alice.trash.all()] == ["Pricing review"]
