"""Graph's calendar on the sandbox: events and invitations, transactionId, series and instances, calendarView and
its delta, getSchedule, Prefer: outlook.timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests
from graph_client import Graph

from widget.sandbox import Sandbox

ALICE = "users/alice@contoso.com"
BOB = "users/bob@contoso.com"
DAY = (datetime.now(UTC) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


def at(hours: float, day: datetime = DAY) -> dict[str, str]:
    """A dateTimeTimeZone in UTC, `hours` after midnight of `day`."""
    return {"dateTime": (day + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def window(days: int = 1, day: datetime = DAY) -> dict[str, str]:
    return {"startDateTime": day.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": (day + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def meeting(subject: str = "Demo", attendees: tuple[str, ...] = ("bob@contoso.com",), **extra: object) -> dict:
    return {"subject": subject, "start": at(14), "end": at(15), "location": {"displayName": "Room 1"},
            "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees], **extra}


def test_an_event_with_attendees_invites_them(graph_sandbox: Sandbox, graph: Graph) -> None:
    event = graph.ok("POST", f"{ALICE}/events", meeting(attendees=("bob@contoso.com", "guest@fabrikam.example")),
                     status=201)
    assert event["isOrganizer"] is True and event["type"] == "singleInstance" and event["iCalUId"]
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == ["bob@contoso.com",
                                                                          "guest@fabrikam.example"]
    invitation = graph.ok("GET", f"{BOB}/mailFolders/inbox/messages")["value"][0]
    assert invitation["@odata.type"] == "#microsoft.graph.eventMessage"
    assert invitation["meetingMessageType"] == "meetingRequest" and invitation["subject"] == "Demo"
    copy = graph.ok("GET", f"{BOB}/calendarView", params=window())["value"]
    assert [(e["subject"], e["iCalUId"], e["isOrganizer"]) for e in copy] == [("Demo", event["iCalUId"], False)]
    sent = requests.get(f"{graph_sandbox.base_url}/sandbox/stats", timeout=5).json()["sent"]
    assert sent[-1]["kind"] == "invitation" and sent[-1]["to"] == ["bob@contoso.com", "guest@fabrikam.example"]


def test_an_event_without_attendees_is_an_appointment(graph: Graph) -> None:
    graph.ok("POST", f"{ALICE}/events", meeting("Dentist", attendees=()), status=201)
    assert graph.ok("GET", f"{BOB}/mailFolders/inbox/messages")["value"] == []


def test_a_retried_post_with_a_transaction_id_makes_one_event(graph: Graph) -> None:
    first = graph.ok("POST", f"{ALICE}/events", meeting(transactionId="crm-42"), status=201)
    second = graph.ok("POST", f"{ALICE}/events", meeting(transactionId="crm-42"), status=201)
    assert first["id"] == second["id"] and first["transactionId"] == "crm-42"
    assert len(graph.ok("GET", f"{ALICE}/events")["value"]) == 1
    assert len(graph.ok("GET", f"{BOB}/mailFolders/inbox/messages")["value"]) == 1


def test_changes_send_updates_and_a_delete_sends_cancellations(graph: Graph) -> None:
    event = graph.ok("POST", f"{ALICE}/events", meeting(attendees=("bob@contoso.com", "carol@contoso.com")),
                     status=201)
    graph.ok("PATCH", f"{ALICE}/events/{event['id']}", {"subject": "Demo (moved)", "start": at(16), "end": at(17),
                                                         "attendees": [{"emailAddress": {
                                                             "address": "bob@contoso.com"}, "type": "required"}]})
    bob_copy = graph.ok("GET", f"{BOB}/calendarView", params=window())["value"][0]
    assert bob_copy["subject"] == "Demo (moved)" and bob_copy["start"]["dateTime"].startswith(
        (DAY + timedelta(hours=16)).strftime("%Y-%m-%dT%H:%M"))
    carol = graph.ok("GET", "users/carol@contoso.com/mailFolders/inbox/messages")["value"]
    assert "meetingCancelled" in [m.get("meetingMessageType") for m in carol]
    assert graph.delete(f"{ALICE}/events/{event['id']}").status_code == 204
    assert graph.get(f"{ALICE}/events/{event['id']}").status_code == 404
    bob_copy = graph.ok("GET", f"{BOB}/calendarView", params=window())["value"][0]
    assert bob_copy["isCancelled"] is True
    assert graph.patch(f"{ALICE}/events/{event['id']}", {"subject": "x"}).status_code == 404
    bad = graph.post(f"{ALICE}/events", {"subject": "No times"})
    assert bad.status_code == 400


def test_a_series_shows_occurrences_not_its_master(graph: Graph) -> None:
    series = graph.ok("POST", f"{ALICE}/events", meeting("Stand-up", attendees=(), recurrence={
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": DAY.date().isoformat(), "numberOfOccurrences": 4}}), status=201)
    assert series["type"] == "seriesMaster" and series["recurrence"]["range"]["numberOfOccurrences"] == 4
    view = graph.ok("GET", f"{ALICE}/calendarView", params=window(7))["value"]
    assert [e["type"] for e in view] == ["occurrence"] * 4
    assert {e["seriesMasterId"] for e in view} == {series["id"]}
    instances = graph.ok("GET", f"{ALICE}/events/{series['id']}/instances", params=window(2))["value"]
    assert len(instances) == 2
    assert graph.delete(f"{ALICE}/events/{view[1]['id']}").status_code == 204
    assert len(graph.ok("GET", f"{ALICE}/calendarView", params=window(7))["value"]) == 3
    assert graph.get(f"{ALICE}/calendarView").status_code == 400  # no window


def test_calendar_view_delta_follows_a_fixed_window(graph: Graph) -> None:
    inside = [graph.ok("POST", f"{ALICE}/events", {"subject": f"In {n}", "start": at(9 + n), "end": at(10 + n)},
                       status=201) for n in range(3)]
    link = f"{ALICE}/calendarView/delta?startDateTime={window()['startDateTime']}&endDateTime=" \
           f"{window()['endDateTime']}"
    entries, delta_link, pages = graph.delta_round(link, 2)
    assert sorted(e["subject"] for e in entries) == ["In 0", "In 1", "In 2"] and pages == 2
    graph.ok("PATCH", f"{ALICE}/events/{inside[0]['id']}", {"start": at(30), "end": at(31)})  # leaves the window
    graph.delete(f"{ALICE}/events/{inside[1]['id']}")
    graph.ok("PATCH", f"{ALICE}/events/{inside[2]['id']}", {"subject": "In 2 (renamed)"})
    graph.ok("POST", f"{ALICE}/events", {"subject": "Later", "start": at(50), "end": at(51)}, status=201)
    changes, delta_link, _ = graph.delta_round(delta_link)
    removed = sorted(c["id"] for c in changes if "@removed" in c)
    assert removed == sorted([inside[0]["id"], inside[1]["id"]])
    assert [c["subject"] for c in changes if "@removed" not in c] == ["In 2 (renamed)"]
    assert graph.delta_round(delta_link)[0] == []


def test_outlook_timezone_sets_the_zone_of_event_times(graph: Graph) -> None:
    graph.ok("POST", f"{ALICE}/events", {"subject": "Zoned", "start": {"dateTime": "2027-01-15T09:00:00",
                                                                        "timeZone": "W. Europe Standard Time"},
                                          "end": {"dateTime": "2027-01-15T10:00:00", "timeZone": "Europe/Berlin"}},
             status=201)
    params = {"startDateTime": "2027-01-15T00:00:00Z", "endDateTime": "2027-01-16T00:00:00Z"}
    utc = graph.ok("GET", f"{ALICE}/calendarView", params=params)["value"][0]
    assert utc["start"] == {"dateTime": "2027-01-15T08:00:00.0000000", "timeZone": "UTC"}
    berlin = graph.ok("GET", f"{ALICE}/calendarView", params=params,
                      headers={"Prefer": 'outlook.timezone="W. Europe Standard Time"'})["value"][0]
    assert berlin["start"] == {"dateTime": "2027-01-15T09:00:00.0000000", "timeZone": "W. Europe Standard Time"}
    unknown = graph.get(f"{ALICE}/calendarView", params=params, headers={"Prefer": 'outlook.timezone="Mars/Base"'})
    assert unknown.status_code == 400


def test_get_schedule_keeps_to_its_limits(graph: Graph) -> None:
    base = {"startTime": at(8), "endTime": at(18), "availabilityViewInterval": 30}
    too_many = graph.post(f"{ALICE}/calendar/getSchedule", {**base, "schedules": [
        f"person{n}@contoso.com" for n in range(101)]})
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "ErrorMailboxDataArrayTooBig"
    too_long = graph.post(f"{ALICE}/calendar/getSchedule", {
        "schedules": ["bob@contoso.com"], "startTime": at(0), "endTime": at(0, DAY + timedelta(days=63))})
    assert too_long.status_code == 400
    bad_interval = graph.post(f"{ALICE}/calendar/getSchedule", {**base, "schedules": ["bob@contoso.com"],
                                                                 "availabilityViewInterval": 4})
    assert bad_interval.status_code == 400
    free = graph.ok("POST", f"{ALICE}/calendar/getSchedule", {**base, "schedules": ["carol@contoso.com"]})
    info = free["value"][0]
    assert info["availabilityView"] == "0" * 20
    assert info["workingHours"]["daysOfWeek"] == ["monday", "tuesday", "wednesday", "thursday", "friday"]
    assert info["workingHours"]["startTime"] == "08:00:00.0000000"


def test_get_schedule_keeps_a_private_items_subject_to_its_owner(graph: Graph) -> None:
    graph.ok("POST", "users/carol@contoso.com/events", {"subject": "Doctor", "sensitivity": "private",
                                                        "location": {"displayName": "Clinic"},
                                                        "start": at(9), "end": at(10)}, status=201)
    graph.ok("POST", "users/carol@contoso.com/events", {"subject": "Pipeline review", "start": at(11),
                                                        "end": at(12), "showAs": "tentative"}, status=201)
    info = graph.ok("POST", f"{ALICE}/calendar/getSchedule", {
        "schedules": ["carol@contoso.com"], "startTime": at(8), "endTime": at(13), "availabilityViewInterval": 60})
    items = info["value"][0]["scheduleItems"]
    assert info["value"][0]["availabilityView"] == "02010"
    assert [(i["isPrivate"], i.get("subject"), i.get("location"), i["status"]) for i in items] == [
        (True, None, None, "busy"), (False, "Pipeline review", "", "tentative")]
