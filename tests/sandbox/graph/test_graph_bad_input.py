"""Bad input to any Graph endpoint gets a 4xx with Graph's error body that says what is wrong, never a 500."""

from __future__ import annotations

import json

import pytest
from graph_client import Graph

from widget.sandbox.graph.routes import ROUTES

ALICE = "users/alice@contoso.com"
JUNK_BODIES = [b"[]", b"null", b"42", b'"text"', b"{", b"\xff\xfe", json.dumps({"subject": 5, "body": "x"}).encode(),
               json.dumps({"start": "tomorrow", "end": {"dateTime": 7}, "attendees": "bob"}).encode(),
               json.dumps({"attendees": [1, {"emailAddress": "x"}], "recurrence": {"pattern": 1}}).encode(),
               json.dumps({"message": "hello", "saveToSentItems": "yes", "schedules": [1] * 3}).encode(),
               json.dumps({"startTime": {"dateTime": "2026-01-01T00:00:00", "timeZone": "Mars/Base"},
                           "endTime": [], "availabilityViewInterval": True}).encode(),
               json.dumps({"title": ["x"], "status": {}, "dueDateTime": "x", "displayName": None}).encode(),
               json.dumps({"toRecipients": [{"emailAddress": {"address": "not an address"}}],
                           "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a",
                                            "contentBytes": "%%%"}], "destinationId": 3, "comment": 4}).encode(),
               json.dumps({"requests": [{"id": "1", "method": "GET", "url": "/$batch"},
                                        {"id": "2", "method": "GET", "url": "/me", "dependsOn": [{}]}]}).encode()]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method in ("POST", "PATCH")], ids=lambda r: r.name)
def test_junk_bodies_get_a_4xx_that_says_why(graph: Graph, route) -> None:  # noqa: ANN001 - a Route
    inbox = graph.ok("GET", f"{ALICE}/mailFolders/inbox")["id"]
    tasks = graph.ok("GET", f"{ALICE}/todo/lists")["value"][0]["id"]
    draft = graph.ok("POST", f"{ALICE}/messages", {"subject": "Draft"}, status=201)["id"]
    first = tasks if route.pattern.startswith("todo") else inbox if route.pattern.startswith("mailFolders") \
        else draft
    path = route.pattern.replace("{}", first, 1).replace("{}", draft)
    for body in JUNK_BODIES:
        response = graph.request(route.method, f"{ALICE}/{path}", data=body,
                                 headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, (route.name, body, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] and error["message"], (route.name, body)


def test_junk_batches_and_query_options_get_a_4xx(graph: Graph) -> None:
    for body in JUNK_BODIES:
        response = graph.request("POST", "$batch", data=body, headers={"Content-Type": "application/json"})
        if response.status_code == 200:  # a batch of bad steps: each step says what is wrong
            assert all(400 <= step["status"] < 500 for step in response.json()["responses"])
        else:
            assert response.status_code == 400, response.text
    for params in ({"$top": "x"}, {"$top": "-1"}, {"$skip": "1e3"}, {"$orderby": "subject; drop"},
                   {"$filter": "receivedDateTime ge not-a-date"}, {"$filter": "isRead eq 'yes' or 1 eq 1"}):
        response = graph.get(f"{ALICE}/messages", params=params)
        assert response.status_code == 400, (params, response.text)
    for prefer in ("odata.maxpagesize=abc", "odata.maxpagesize=0"):
        response = graph.get(f"{ALICE}/mailFolders/inbox/messages/delta", headers={"Prefer": prefer})
        assert response.status_code == 400
    assert graph.get(f"{ALICE}/nothing/here").status_code == 400
    assert graph.request("PUT", f"{ALICE}/messages").status_code == 405
    assert graph.patch(ALICE, {"displayName": "Mallory"}).status_code == 405
