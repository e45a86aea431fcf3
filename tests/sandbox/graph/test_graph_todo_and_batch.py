"""To Do lists and tasks with their delta, and JSON $batch."""

from __future__ import annotations

from graph_client import Graph

ALICE = "users/alice@contoso.com"


def _default_list(graph: Graph) -> dict:
    lists = graph.ok("GET", f"{ALICE}/todo/lists")["value"]
    return next(entry for entry in lists if entry["wellknownListName"] == "defaultList")


def test_tasks_are_created_changed_and_deleted(graph: Graph) -> None:
    tasks = _default_list(graph)
    assert tasks["displayName"] == "Tasks"
    task = graph.ok("POST", f"{ALICE}/todo/lists/{tasks['id']}/tasks", {
        "title": "Call Contoso back", "importance": "high",
        "dueDateTime": {"dateTime": "2027-02-01T00:00:00", "timeZone": "UTC"}}, status=201)
    assert task["status"] == "notStarted" and task["importance"] == "high"
    assert task["dueDateTime"] == {"dateTime": "2027-02-01T00:00:00.0000000", "timeZone": "UTC"}
    done = graph.ok("PATCH", f"{ALICE}/todo/lists/{tasks['id']}/tasks/{task['id']}", {"status": "completed"})
    assert done["status"] == "completed" and "completedDateTime" in done
    assert graph.patch(f"{ALICE}/todo/lists/{tasks['id']}/tasks/{task['id']}", {"status": "done"}).status_code == 400
    assert graph.post(f"{ALICE}/todo/lists/{tasks['id']}/tasks", {"importance": "low"}).status_code == 400
    assert graph.delete(f"{ALICE}/todo/lists/{tasks['id']}/tasks/{task['id']}").status_code == 204
    assert graph.get(f"{ALICE}/todo/lists/{tasks['id']}/tasks/{task['id']}").status_code == 404
    created = graph.ok("POST", f"{ALICE}/todo/lists", {"displayName": "Follow-ups"}, status=201)
    assert created["wellknownListName"] == "none"
    assert graph.post(f"{ALICE}/todo/lists", {"displayName": "follow-ups"}).status_code == 409


def test_tasks_delta_gives_changes_and_removals(graph: Graph) -> None:
    tasks = _default_list(graph)
    base = f"{ALICE}/todo/lists/{tasks['id']}/tasks"
    made = [graph.ok("POST", base, {"title": f"Task {n}"}, status=201) for n in range(3)]
    entries, delta_link, pages = graph.delta_round(f"{base}/delta", 2)
    assert sorted(e["title"] for e in entries) == ["Task 0", "Task 1", "Task 2"] and pages == 2
    graph.ok("PATCH", f"{base}/{made[0]['id']}", {"title": "Task 0 (renamed)"})
    graph.delete(f"{base}/{made[1]['id']}")
    changes, delta_link, _ = graph.delta_round(delta_link)
    assert [c.get("title") for c in changes if "@removed" not in c] == ["Task 0 (renamed)"]
    assert [c["id"] for c in changes if "@removed" in c] == [made[1]["id"]]
    assert graph.delta_round(delta_link)[0] == []


def test_a_batch_runs_up_to_twenty_requests(graph: Graph) -> None:
    graph.ok("POST", f"{ALICE}/sendMail", {"message": {"subject": "Batch me", "toRecipients": [
        {"emailAddress": {"address": "alice@contoso.com"}}]}}, status=202)
    message = graph.ok("GET", f"{ALICE}/mailFolders/inbox/messages")["value"][0]
    batch = graph.ok("POST", "$batch", {"requests": [
        {"id": "1", "method": "GET", "url": f"/{ALICE}/messages/{message['id']}?$select=subject"},
        {"id": "2", "method": "PATCH", "url": f"/{ALICE}/messages/{message['id']}", "body": {"isRead": True},
         "headers": {"Content-Type": "application/json"}, "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/{ALICE}/messages/no-such-message"},
        {"id": "4", "method": "GET", "url": f"/{ALICE}/mailFolders/inbox", "dependsOn": ["3"]},
    ]})
    by_id = {r["id"]: r for r in batch["responses"]}
    assert by_id["1"]["status"] == 200 and by_id["1"]["body"]["subject"] == "Batch me"
    assert by_id["2"]["status"] == 200 and by_id["2"]["body"]["isRead"] is True
    assert by_id["3"]["status"] == 404 and by_id["3"]["body"]["error"]["code"] == "ErrorItemNotFound"
    assert by_id["4"]["status"] == 424
    too_many = graph.post("$batch", {"requests": [{"id": str(n), "method": "GET", "url": f"/{ALICE}"}
                                                  for n in range(21)]})
    assert too_many.status_code == 400 and "maximum of 20" in too_many.json()["error"]["message"]
    duplicate = graph.post("$batch", {"requests": [{"id": "1", "method": "GET", "url": f"/{ALICE}"}] * 2})
    assert duplicate.status_code == 400
