"""The Graph metadata check itself: it passes what Graph documents and flags what the metadata forbids."""

from __future__ import annotations

import pytest
from graph_schema import GraphSchemaChecker, graph_session_checker


@pytest.fixture
def checker() -> GraphSchemaChecker:
    found = graph_session_checker()
    assert found is not None, "the Graph metadata is missing"
    return GraphSchemaChecker(found.metadata)


def test_it_passes_documented_bodies(checker: GraphSchemaChecker) -> None:
    message = {"@odata.etag": 'W/"x"', "id": "AAMk", "subject": "Hi", "isRead": False, "importance": "normal",
               "receivedDateTime": "2026-01-02T03:04:05Z", "toRecipients": [{"emailAddress": {"address": "a@b.c"}}]}
    assert checker.problems("message", message) == []
    assert checker.problems("Collection(message)", {"value": [message, {"id": "gone", "@removed": {
        "reason": "deleted"}}], "@odata.deltaLink": "https://127.0.0.1/x"}) == []
    assert checker.problems("action:sendMail", {"message": message, "saveToSentItems": False}) == []
    assert checker.problems("error", {"error": {"code": "ErrorItemNotFound", "message": "Not found.", "innerError": {
        "date": "2026-01-01T00:00:00Z", "request-id": "1", "client-request-id": "1"}}}) == []


@pytest.mark.parametrize(("odata_type", "body", "problem"), [
    ("message", {"id": "x", "isRead": "yes"}, "is not an Edm.Boolean"),
    ("message", {"id": "x", "importance": "urgent"}, "is not a member of importance"),
    ("mailFolder", {"id": "x", "colour": "red"}, "not a property of mailFolder"),
    ("event", {"id": "x", "start": {"dateTime": 5}}, "is not an Edm.String"),
    ("todoTask", {"id": "x", "status": "done"}, "is not a member of taskStatus"),
    ("message", {"id": "x", "receivedDateTime": "yesterday"}, "is not an Edm.DateTimeOffset"),
    ("message", {"id": "x", "@odata.type": "#microsoft.graph.event"}, "is not a message"),
    ("Collection(message)", {"value": [{"id": "x", "@removed": {"reason": "vanished"}}]}, "a removal is"),
    ("Collection(message)", {"value": [], "@odata.nextLink": "https://a", "@odata.deltaLink": "https://b"},
     "never both"),
    ("action:sendMail", {"message": {}, "urgent": True}, "not a parameter of sendMail"),
    ("error", {"error": {"code": "X"}}, "error.message"),
    ("batch", {"responses": [{"id": "1", "status": "200"}]}, "whole-number status"),
    ("batch", {"requests": [{"id": 1, "method": "GET", "url": "/me"}]}, "a step has a string id"),
])
def test_it_flags_what_the_metadata_forbids(checker: GraphSchemaChecker, odata_type: str, body: dict,
                                            problem: str) -> None:
    problems = checker.problems(odata_type, body)
    assert any(problem in text for text in problems), problems
    checker("response", odata_type, "GET test", body)
    assert checker.checked == 1 and len(checker.failures) == 1
