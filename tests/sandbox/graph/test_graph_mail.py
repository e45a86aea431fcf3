"""Graph's mail resources on the sandbox: users, mailFolders, messages, their delta, drafts, sending, attachments."""

from __future__ import annotations

import base64
import email
from datetime import UTC, datetime, timedelta

import pytest
import requests
from graph_client import Graph

from widget.sandbox import Sandbox
from widget.sandbox.seed import seed_messages

ALICE = "users/alice@contoso.com"
BOB = "users/bob@contoso.com"


def deliver(sandbox: Sandbox, subject: str, to: str = "alice@contoso.com", **fields: object) -> None:
    """Mail from outside the organisation, through the control API."""
    response = requests.post(f"{sandbox.base_url}/sandbox/deliver", json={
        "from": "Dana Diaz <dana@fabrikam.example>", "to": [to], "subject": subject, "text": f"About {subject}",
        **fields}, timeout=10)
    assert response.status_code == 201, response.text


def test_it_names_users_by_address_or_object_id(graph: Graph) -> None:
    alice = graph.ok("GET", ALICE)
    assert alice["mail"] == "alice@contoso.com" and alice["displayName"] == "Alice Adams"
    assert graph.ok("GET", f"users/{alice['id']}/mailFolders/inbox")["displayName"] == "Inbox"
    missing = graph.get("users/nobody@contoso.com")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert graph.get("users/nobody@contoso.com/messages").json()["error"]["code"] == "ErrorInvalidUser"
    assert graph.get("me/messages").status_code == 400  # /me needs a signed-in user


def test_it_lists_folders_by_well_known_name_and_makes_child_folders(graph: Graph) -> None:
    names = {f["displayName"] for f in graph.ok("GET", f"{ALICE}/mailFolders", params={"$top": "50"})["value"]}
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items"} <= names
    for well_known, display in (("inbox", "Inbox"), ("sentitems", "Sent Items"), ("drafts", "Drafts"),
                                ("deleteditems", "Deleted Items")):
        assert graph.ok("GET", f"{ALICE}/mailFolders/{well_known}")["displayName"] == display
    inbox = graph.ok("GET", f"{ALICE}/mailFolders/inbox")
    child = graph.ok("POST", f"{ALICE}/mailFolders/inbox/childFolders", {"displayName": "Clients"}, status=201)
    assert child["parentFolderId"] == inbox["id"]
    assert graph.post(f"{ALICE}/mailFolders/inbox/childFolders", {"displayName": "clients"}).status_code == 409
    listed = graph.ok("GET", f"{ALICE}/mailFolders/{inbox['id']}/childFolders")["value"]
    assert [f["displayName"] for f in listed] == ["Clients"]
    missing = graph.get(f"{ALICE}/mailFolders/nosuchfolder")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"


def test_messages_list_with_select_top_filter_and_order(graph_sandbox: Sandbox, graph: Graph) -> None:
    for number in range(5):
        deliver(graph_sandbox, f"Offer {number}", received=f"2026-03-0{number + 1}T10:00:00Z")
    page = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages", params={"$top": "2", "$select": "subject,isRead"})
    assert [m["subject"] for m in page["value"]] == ["Offer 4", "Offer 3"]  # newest first by default
    assert set(page["value"][0]) == {"@odata.etag", "id", "subject", "isRead"}
    rest = graph.ok("GET", page["@odata.nextLink"])
    assert [m["subject"] for m in rest["value"]] == ["Offer 2", "Offer 1"]
    oldest = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages", params={"$orderby": "receivedDateTime asc",
                                                                              "$top": "1"})
    assert oldest["value"][0]["subject"] == "Offer 0"
    recent = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages", params={
        "$filter": "receivedDateTime ge 2026-03-04T00:00:00Z and isRead eq false"})
    assert sorted(m["subject"] for m in recent["value"]) == ["Offer 3", "Offer 4"]
    bad = graph.get(f"{ALICE}/mailFolders/inbox/messages", params={"$filter": "subject has 'x'"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "ErrorInvalidUrlQueryFilter"
    assert graph.get(f"{ALICE}/messages", params={"$top": "0"}).status_code == 400


def test_a_message_is_read_marked_and_deleted_to_deleted_items(graph_sandbox: Sandbox, graph: Graph) -> None:
    deliver(graph_sandbox, "Quarterly numbers")
    message = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages")["value"][0]
    full = graph.ok("GET", f"{ALICE}/messages/{message['id']}")
    assert full["from"]["emailAddress"] == {"name": "Dana Diaz", "address": "dana@fabrikam.example"}
    assert full["body"] == {"contentType": "text", "content": "About Quarterly numbers"}
    assert full["isRead"] is False and full["internetMessageId"].startswith("<")
    updated = graph.ok("PATCH", f"{ALICE}/messages/{message['id']}", {"isRead": True})
    assert updated["isRead"] is True and updated["changeKey"] != full["changeKey"]
    refused = graph.patch(f"{ALICE}/messages/{message['id']}", {"subject": "Changed"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "ErrorInvalidPropertyUpdateSentMessage"
    assert graph.patch(f"{ALICE}/messages/{message['id']}", {"colour": "red"}).status_code == 400
    assert graph.delete(f"{ALICE}/messages/{message['id']}").status_code == 204
    assert graph.get(f"{ALICE}/messages/{message['id']}").status_code == 404
    deleted = graph.ok("GET", f"{ALICE}/mailFolders/deleteditems/messages")["value"]
    assert [m["subject"] for m in deleted] == ["Quarterly numbers"]
    assert graph.get(f"{BOB}/messages/{deleted[0]['id']}").status_code == 404  # not Bob's


def test_a_delta_round_pages_then_gives_only_changes(graph_sandbox: Sandbox, graph: Graph) -> None:
    for number in range(7):
        deliver(graph_sandbox, f"Lead {number}")
    first = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages/delta", params={"$select": "subject,isRead"},
                     headers={"Prefer": "odata.maxpagesize=3"})
    assert len(first["value"]) == 3 and "@odata.nextLink" in first and "@odata.deltaLink" not in first
    assert set(first["value"][0]) == {"@odata.etag", "id", "subject", "isRead"}
    # A client may ask for a page again (a lost answer): the same page comes back.
    again = graph.ok("GET", first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"})
    entries, delta_link, pages = graph.delta_round(first["@odata.nextLink"], 3)
    assert again["value"] == entries[:3]
    assert pages == 2 and delta_link
    subjects = [m["subject"] for m in first["value"] + entries]
    assert sorted(subjects) == sorted(f"Lead {n}" for n in range(7))
    assert set(entries[0]) == {"@odata.etag", "id", "subject", "isRead"}  # $select is kept in the links
    nothing, delta_link, _ = graph.delta_round(delta_link)
    assert nothing == []
    by_subject = {m["subject"]: m["id"] for m in first["value"] + entries}
    graph.ok("PATCH", f"{ALICE}/messages/{by_subject['Lead 1']}", {"isRead": True})
    assert graph.delete(f"{ALICE}/messages/{by_subject['Lead 2']}").status_code == 204
    deliver(graph_sandbox, "Lead 7")
    changes, delta_link, _ = graph.delta_round(delta_link)
    removed = [c for c in changes if "@removed" in c]
    assert removed == [{"id": by_subject["Lead 2"], "@removed": {"reason": "deleted"}}]
    changed = {c["subject"]: c for c in changes if "@removed" not in c}
    assert set(changed) == {"Lead 1", "Lead 7"} and changed["Lead 1"]["isRead"] is True


def test_a_delta_link_it_cannot_read_answers_410_with_where_to_start(graph: Graph) -> None:
    _, delta_link, _ = graph.delta_round(f"{ALICE}/mailFolders/inbox/messages/delta")
    forged = delta_link[:-6] + "AAAAAA"
    gone = graph.get(forged)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "SyncStateNotFound"
    restart = gone.headers["Location"]
    assert restart.endswith("/messages/delta") and restart.startswith("https://")
    assert graph.get(restart).status_code == 200
    other_folder = delta_link.replace("mailFolders/", "mailFolders/x").split("?")[0]
    assert graph.get(other_folder).status_code == 404


def test_a_first_round_filtered_on_received_time_keeps_its_filter(graph_sandbox: Sandbox, graph: Graph) -> None:
    for day in range(1, 6):
        deliver(graph_sandbox, f"Day {day}", received=f"2026-04-0{day}T09:00:00Z")
    entries, _, pages = graph.delta_round(f"{ALICE}/mailFolders/inbox/messages/delta?$filter=receivedDateTime+ge+"
                                          "2026-04-03T00:00:00Z", 1)
    assert sorted(m["subject"] for m in entries) == ["Day 3", "Day 4", "Day 5"] and pages >= 3
    refused = graph.get(f"{ALICE}/mailFolders/inbox/messages/delta", params={"$filter": "isRead eq false"})
    assert refused.status_code == 400


@pytest.mark.parametrize("page_size", [100, 1000])
def test_a_delta_over_ten_thousand_messages_gives_each_once(graph_sandbox: Sandbox, graph: Graph,
                                                           page_size: int) -> None:
    seed_messages(graph_sandbox.store, "alice@contoso.com", 10_000)
    inbox = graph_sandbox.store.folder("alice@contoso.com", "inbox")
    old = sorted(inbox.items.values(), key=lambda item: item.created)
    # Mail read after it arrived: its later change must not make it come twice in a round.
    for item in old[:30]:
        graph_sandbox.store.touch(item, read_flag_only=True)
    link = f"{ALICE}/mailFolders/inbox/messages/delta?$select=subject,isRead"
    seen: list[str] = []
    pages = 0
    for page in graph.rounds(link, page_size):
        pages += 1
        seen += [entry["id"] for entry in page["value"]]
        if pages == 3:  # while the round is under way, mail arrives and mail already given is read
            deliver(graph_sandbox, "Arrived during the round")
            graph.ok("PATCH", f"{ALICE}/messages/{seen[0]}", {"isRead": False})
        delta_link = page.get("@odata.deltaLink")
    assert len(seen) == len(set(seen)) == 10_000
    assert pages == 10_000 // page_size
    assert {graph_id for graph_id in seen} == {item.id.replace("/", "-").replace("+", "_") for item in old}
    # The next round gives what changed during the first, each once; then nothing.
    changes, delta_link, _ = graph.delta_round(delta_link, page_size)
    assert sorted((c["subject"], c["isRead"]) for c in changes) == sorted(
        [("Arrived during the round", False), (graph.ok("GET", f"{ALICE}/messages/{seen[0]}")["subject"], False)])
    assert graph.delta_round(delta_link)[0] == []


def test_send_mail_reaches_colleagues_and_sent_items(graph: Graph) -> None:
    message = {"subject": "Proposal", "body": {"contentType": "html", "content": "<p>Attached.</p>"},
               "toRecipients": [{"emailAddress": {"address": "bob@contoso.com"}}],
               "ccRecipients": [{"emailAddress": {"address": "partner@fabrikam.example", "name": "Partner"}}],
               "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "offer.txt",
                                "contentType": "text/plain", "contentBytes": base64.b64encode(b"42 EUR").decode()}]}
    response = graph.post(f"{ALICE}/sendMail", {"message": message})
    assert response.status_code == 202 and response.content == b""
    received = graph.ok("GET", f"{BOB}/mailFolders/inbox/messages")["value"]
    assert [(m["subject"], m["from"]["emailAddress"]["address"], m["hasAttachments"]) for m in received] == [
        ("Proposal", "alice@contoso.com", True)]
    attachments = graph.ok("GET", f"{BOB}/messages/{received[0]['id']}/attachments")["value"]
    assert base64.b64decode(attachments[0]["contentBytes"]) == b"42 EUR"
    raw = graph.get(f"{BOB}/messages/{received[0]['id']}/attachments/{attachments[0]['id']}/$value")
    assert raw.content == b"42 EUR"
    mime = email.message_from_bytes(graph.get(f"{BOB}/messages/{received[0]['id']}/$value").content)
    assert mime["Subject"] == "Proposal" and "alice@contoso.com" in mime["From"]
    sent = graph.ok("GET", f"{ALICE}/mailFolders/sentitems/messages")["value"]
    assert [m["subject"] for m in sent] == ["Proposal"]
    graph.ok("POST", f"{ALICE}/sendMail", {"message": {**message, "subject": "No copy"}, "saveToSentItems": False},
             status=202)
    assert len(graph.ok("GET", f"{ALICE}/mailFolders/sentitems/messages")["value"]) == 1
    spoofed = graph.post(f"{ALICE}/sendMail", {"message": {**message, "from": {"emailAddress": {
        "address": "ceo@contoso.com"}}}})
    assert spoofed.status_code == 403 and spoofed.json()["error"]["code"] == "ErrorSendAsDenied"
    no_one = graph.post(f"{ALICE}/sendMail", {"message": {"subject": "Nobody"}})
    assert no_one.status_code == 400 and no_one.json()["error"]["code"] == "ErrorInvalidRecipients"
    not_json = graph.request("POST", f"{ALICE}/sendMail", data=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_a_draft_gets_an_attachment_and_is_sent(graph: Graph) -> None:
    draft = graph.ok("POST", f"{ALICE}/messages", {"subject": "Draft", "toRecipients": [
        {"emailAddress": {"address": "carol@contoso.com"}}]}, status=201)
    assert draft["isDraft"] is True
    assert graph.ok("GET", f"{ALICE}/mailFolders/drafts/messages")["value"][0]["id"] == draft["id"]
    graph.ok("POST", f"{ALICE}/messages/{draft['id']}/attachments", {
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
        "contentBytes": base64.b64encode(b"A").decode()}, status=201)
    graph.ok("PATCH", f"{ALICE}/messages/{draft['id']}", {"subject": "Final"})
    assert graph.post(f"{ALICE}/messages/{draft['id']}/send").status_code == 202
    assert graph.ok("GET", f"{ALICE}/mailFolders/drafts/messages")["value"] == []
    got = graph.ok("GET", "users/carol@contoso.com/mailFolders/inbox/messages")["value"]
    assert [(m["subject"], m["hasAttachments"]) for m in got] == [("Final", True)]


def test_replies_and_forwards_are_drafts_addressed_as_documented(graph_sandbox: Sandbox, graph: Graph) -> None:
    requests.post(f"{graph_sandbox.base_url}/sandbox/deliver", json={
        "from": "dana@fabrikam.example", "to": ["alice@contoso.com", "bob@contoso.com"],
        "cc": ["carol@contoso.com"], "subject": "Kick-off", "text": "Hello"}, timeout=10)
    original = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages")["value"][0]

    def addresses(message: dict, field: str) -> list[str]:
        return [r["emailAddress"]["address"] for r in message[field]]

    reply = graph.ok("POST", f"{ALICE}/messages/{original['id']}/createReply", {}, status=201)
    assert reply["subject"] == "RE: Kick-off" and addresses(reply, "toRecipients") == ["dana@fabrikam.example"]
    reply_all = graph.ok("POST", f"{ALICE}/messages/{original['id']}/createReplyAll", {"comment": "Thanks"},
                         status=201)
    assert addresses(reply_all, "toRecipients") == ["dana@fabrikam.example", "bob@contoso.com"]
    assert addresses(reply_all, "ccRecipients") == ["carol@contoso.com"]
    forward = graph.ok("POST", f"{ALICE}/messages/{original['id']}/createForward", {
        "toRecipients": [{"emailAddress": {"address": "carol@contoso.com"}}]}, status=201)
    assert forward["subject"] == "FW: Kick-off" and forward["isDraft"] is True
    assert forward["conversationId"] == original["conversationId"]


def test_immutable_ids_survive_a_move(graph_sandbox: Sandbox, graph: Graph) -> None:
    deliver(graph_sandbox, "Keep me")
    immutable = {"Prefer": 'IdType="ImmutableId"'}
    message = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages", headers=immutable)["value"][0]
    archive = graph.ok("POST", f"{ALICE}/mailFolders/msgfolderroot/childFolders", {"displayName": "Archive"},
                       status=201)
    moved = graph.ok("POST", f"{ALICE}/messages/{message['id']}/move", {"destinationId": archive["id"]},
                     headers=immutable, status=201)
    assert moved["id"] == message["id"] and moved["parentFolderId"] == archive["id"]
    assert graph.ok("GET", f"{ALICE}/messages/{message['id']}", headers=immutable)["subject"] == "Keep me"
    rest_id = graph.ok("GET", f"{ALICE}/mailFolders/{archive['id']}/messages")["value"][0]["id"]
    assert rest_id != message["id"]


def test_received_times_are_utc_timestamps(graph_sandbox: Sandbox, graph: Graph) -> None:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    deliver(graph_sandbox, "Timed", received=when.isoformat())
    message = graph.ok("GET", f"{ALICE}/messages")["value"][0]
    assert message["receivedDateTime"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_delta_with_immutable_ids_names_a_moved_message_by_the_same_id(graph_sandbox: Sandbox,
                                                                         graph: Graph) -> None:
    deliver(graph_sandbox, "Moving on")
    immutable = {"Prefer": 'IdType="ImmutableId", odata.maxpagesize=50'}
    archive = graph.ok("POST", f"{ALICE}/mailFolders/msgfolderroot/childFolders", {"displayName": "Archive"},
                       status=201)
    inbox_round = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages/delta", headers=immutable)
    archive_round = graph.ok("GET", f"{ALICE}/mailFolders/{archive['id']}/messages/delta", headers=immutable)
    (message,) = inbox_round["value"]
    graph.ok("POST", f"{ALICE}/messages/{message['id']}/move", {"destinationId": archive["id"]}, headers=immutable,
             status=201)
    left = graph.ok("GET", inbox_round["@odata.deltaLink"], headers=immutable)["value"]
    arrived = graph.ok("GET", archive_round["@odata.deltaLink"], headers=immutable)["value"]
    assert left == [{"id": message["id"], "@removed": {"reason": "deleted"}}]
    assert [(m["id"], m["subject"]) for m in arrived] == [(message["id"], "Moving on")]


def test_a_flag_and_the_focused_inbox_are_kept(graph_sandbox: Sandbox, graph: Graph) -> None:
    deliver(graph_sandbox, "Follow up")
    message = graph.ok("GET", f"{ALICE}/messages")["value"][0]
    assert message["flag"] == {"flagStatus": "notFlagged"} and message["inferenceClassification"] == "focused"
    graph.ok("PATCH", f"{ALICE}/messages/{message['id']}", {"flag": {"flagStatus": "flagged"},
                                                             "inferenceClassification": "other"})
    again = graph.ok("GET", f"{ALICE}/messages/{message['id']}")
    assert again["flag"] == {"flagStatus": "flagged"} and again["inferenceClassification"] == "other"
    assert graph.patch(f"{ALICE}/messages/{message['id']}", {"flag": {"flagStatus": "urgent"}}).status_code == 400
