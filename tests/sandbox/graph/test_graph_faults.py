"""Scripted Graph faults ("protocol": "graph"), Exchange Online's 4-request concurrency limit and the stats, seen
from the client's side."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from graph_client import GRAPH_SCOPE, Graph, confidential_app

from widget.sandbox import Sandbox
from widget.sandbox.graph.server import GraphFront

ALICE = "users/alice@contoso.com"
DELTA = "GET mailFolders/{id}/messages/delta"


def script(sandbox: Sandbox, **fault: object) -> None:
    response = requests.post(f"{sandbox.base_url}/sandbox/faults", json={"protocol": "graph", **fault}, timeout=5)
    assert response.status_code == 201, response.text


def error_of(response: requests.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and {"code", "message", "innerError"} <= set(body["error"])
    assert response.headers["Content-Type"].startswith("application/json")
    return body["error"]


@pytest.mark.parametrize(("kind", "status", "code"), [("http_429", 429, "TooManyRequests"),
                                                       ("http_503", 503, "ServiceUnavailable")])
def test_throttling_faults_say_when_to_retry(graph_sandbox: Sandbox, graph: Graph, kind: str, status: int,
                                             code: str) -> None:
    script(graph_sandbox, kind=kind, operation=DELTA, mailbox="alice@contoso.com", retry_after=7)
    assert graph.get(f"{ALICE}/mailFolders/inbox").status_code == 200  # another endpoint is not struck
    struck = graph.get(f"{ALICE}/mailFolders/inbox/messages/delta")
    assert struck.status_code == status and struck.headers["Retry-After"] == "7"
    assert error_of(struck)["code"] == code
    assert graph.get(f"{ALICE}/mailFolders/inbox/messages/delta").status_code == 200  # times=1: once


def test_a_delta_reset_answers_410_and_the_location_starts_over(graph_sandbox: Sandbox, graph: Graph) -> None:
    graph.ok("POST", f"{ALICE}/sendMail", {"message": {"subject": "One", "toRecipients": [
        {"emailAddress": {"address": "alice@contoso.com"}}]}}, status=202)
    _, delta_link, _ = graph.delta_round(f"{ALICE}/mailFolders/inbox/messages/delta")
    script(graph_sandbox, kind="delta_reset")
    # A first request carries no link: the reset waits for one that does.
    assert graph.get("users/bob@contoso.com/mailFolders/inbox/messages/delta").status_code == 200
    gone = graph.get(delta_link)
    assert gone.status_code == 410 and error_of(gone)["code"] == "SyncStateNotFound"
    entries, _, _ = graph.delta_round(gone.headers["Location"])
    assert [e["subject"] for e in entries] == ["One"]
    assert graph.get(delta_link).status_code == 200  # the fault was spent


def test_a_revoked_token_gets_401_until_msal_gets_a_new_one(graph_sandbox: Sandbox, front: GraphFront,
                                                            graph: Graph) -> None:
    script(graph_sandbox, kind="token_revoked")
    struck = graph.get(f"{ALICE}/mailFolders/inbox")
    assert struck.status_code == 401 and error_of(struck)["code"] == "InvalidAuthenticationToken"
    assert "Bearer" in struck.headers["WWW-Authenticate"]
    assert graph.get(f"{ALICE}/mailFolders/inbox").status_code == 401  # the old token stays revoked
    fresh = Graph.app_only(front)
    assert fresh.get(f"{ALICE}/mailFolders/inbox").status_code == 200


def test_a_withdrawn_consent_answers_403_and_new_tokens_grant_nothing(graph_sandbox: Sandbox, front: GraphFront,
                                                                      graph: Graph) -> None:
    script(graph_sandbox, kind="consent_revoked", mailbox="alice@contoso.com")
    struck = graph.get(f"{ALICE}/messages")
    assert struck.status_code == 403 and error_of(struck)["code"] == "ErrorAccessDenied"
    assert graph.get("users/bob@contoso.com/messages").status_code == 403
    result = confidential_app(front).acquire_token_for_client(GRAPH_SCOPE)
    assert Graph(front, result["access_token"], graph.session).get(f"{ALICE}/messages").status_code == 403


def test_a_delay_holds_the_answer_and_a_drop_hangs_up(graph_sandbox: Sandbox, graph: Graph) -> None:
    script(graph_sandbox, kind="delay", seconds=0.4, operation="mailFolders/{id}")
    started = time.monotonic()
    assert graph.get(f"{ALICE}/mailFolders/inbox").status_code == 200
    assert time.monotonic() - started >= 0.4
    script(graph_sandbox, kind="drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.get(f"{ALICE}/mailFolders/inbox")
    assert graph.get(f"{ALICE}/mailFolders/inbox").status_code == 200


def test_faults_for_graph_are_checked_when_scripted(graph_sandbox: Sandbox) -> None:
    url = f"{graph_sandbox.base_url}/sandbox/faults"
    for body, message in (({"protocol": "graph", "kind": "server_busy"}, "protocol graph"),
                          ({"protocol": "ftp", "kind": "drop"}, "'protocol' must be"),
                          ({"protocol": "graph", "kind": "http_429", "retry_after": -1}, "must not be negative")):
        response = requests.post(url, json=body, timeout=5)
        assert response.status_code == 400 and message in response.json()["error"]
    listed = requests.post(url, json={"protocol": "graph", "kind": "http_429"}, timeout=5).json()["faults"]
    assert listed[0]["protocol"] == "graph" and listed[0]["retry_after"] == 30


def test_a_fifth_concurrent_request_for_one_mailbox_gets_429(graph_sandbox: Sandbox, graph: Graph) -> None:
    script(graph_sandbox, kind="delay", seconds=1.0, mailbox="alice@contoso.com", times=4)
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        client = Graph(graph.front, graph.token, requests.Session())
        client.session.trust_env = False
        client.session.verify = graph.session.verify
        response = client.get(f"{ALICE}/mailFolders/inbox")
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while graph_sandbox.graph.stats.as_dict()["mailboxes"].get("alice@contoso.com", {}).get(
            "GET mailFolders/{id}", 0) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    fifth = graph.get(f"{ALICE}/mailFolders/inbox")
    other_mailbox = graph.get("users/bob@contoso.com/mailFolders/inbox")
    for thread in threads:
        thread.join()
    assert fifth.status_code == 429 and fifth.headers["Retry-After"]
    throttled = error_of(fifth)
    assert (throttled["code"], throttled["message"]) == ("ApplicationThrottled",
                                                         "Application is over its MailboxConcurrency limit.")
    assert other_mailbox.status_code == 200
    assert sorted(r.status_code for r in results) == [200, 200, 200, 200]


def test_stats_count_graph_requests_per_endpoint_and_mailbox(graph_sandbox: Sandbox, graph: Graph) -> None:
    graph.get(f"{ALICE}/mailFolders/inbox")
    graph.get(f"{ALICE}/mailFolders/sentitems")
    graph.get("users/bob@contoso.com/mailFolders/inbox/messages/delta")
    stats = requests.get(f"{graph_sandbox.base_url}/sandbox/stats", timeout=5).json()["graph"]
    assert stats["endpoints"]["GET mailFolders/{id}"] == 2
    assert stats["mailboxes"]["alice@contoso.com"] == {"GET mailFolders/{id}": 2}
    assert stats["mailboxes"]["bob@contoso.com"] == {DELTA: 1}
    assert stats["identity"]["token client_credentials"] == 1
    via_graph_port = graph.session.get(f"{graph.front.base_url}/sandbox/stats", timeout=5).json()
    assert via_graph_port["graph"]["endpoints"]["GET mailFolders/{id}"] == 2
