"""One store, two fronts: what Graph changes, exchangelib sees on its next sync, and the other way round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exchangelib import EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, CalendarItem, Message
from exchangelib.properties import Attendee
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
