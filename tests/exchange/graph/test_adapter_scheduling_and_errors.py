"""The Graph adapter's free/busy and people search, and what each failure of Graph or the identity platform becomes
(ExchangeProblem kinds as over EWS, never a raw error), against the sandbox's Graph front."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from graph_client import adapter_config, register_app

from widget.exchange.graph.adapter import GraphMailboxPort
from widget.exchange.graph.client import MAILBOX_CONCURRENCY
from widget.exchange.problems import ExchangeProblem
from widget.exchange.values import AvailabilityProblem, BusyType, EventFields

BERLIN = ZoneInfo("Europe/Berlin")
DAY = (datetime.now(BERLIN) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)


def script(sandbox, **fault):
    response = requests.post(f"{sandbox.base_url}/sandbox/faults", json={"protocol": "graph", **fault}, timeout=5)
    assert response.status_code == 201, response.text


def test_free_busy_is_one_get_schedule_for_the_owner_and_the_people(port):
    bob = port("bob@contoso.com")
    bob.create_event(EventFields("Busy hour", "", DAY + timedelta(hours=10), DAY + timedelta(hours=11), False,
                                 "Europe/Berlin", (), None, ""), invite=False)
    alice = port()
    answer = alice.free_busy(["bob@contoso.com", "nobody@elsewhere.example"], DAY, DAY + timedelta(days=1))
    assert alice.requests == 1 and [a.email for a in answer.attendees] == [
        "alice@contoso.com", "bob@contoso.com", "nobody@elsewhere.example"]
    slots = dict(zip(answer.intervals(), answer.attendee("bob@contoso.com").statuses, strict=True))
    assert slots[(DAY + timedelta(hours=10), DAY + timedelta(hours=10, minutes=30))] == BusyType.BUSY
    assert slots[(DAY + timedelta(hours=9), DAY + timedelta(hours=9, minutes=30))] == BusyType.FREE
    event = answer.attendee("bob@contoso.com").events[0]
    assert (event.subject, event.start, event.busy_type) == ("Busy hour", DAY + timedelta(hours=10), BusyType.BUSY)
    assert event.start.tzinfo == BERLIN
    hours = answer.attendee("bob@contoso.com").working_hours
    assert hours is not None and 1 in hours.periods[0].weekdays
    assert answer.attendee("nobody@elsewhere.example").problem == AvailabilityProblem.UNKNOWN_PERSON
    assert set(answer.attendee("alice@contoso.com").statuses) == {BusyType.FREE}


def test_people_are_found_by_the_start_of_their_name_or_address(sandbox, front, port):
    register_app(sandbox, client_id="people-app", secret="People-secret-1",
                 permissions=["Calendars.Read", "User.Read.All"])
    finder = GraphMailboxPort(adapter_config(front, "people-app", "People-secret-1"), "alice@contoso.com")
    assert finder.resolve_people("Car") == [("carol@contoso.com", "Carol Chen")]
    assert finder.resolve_people("bob@") == [("bob@contoso.com", "Bob Brown")]
    assert finder.resolve_people("O'Brien") == [] and finder.resolve_people("  ") == []
    with pytest.raises(ExchangeProblem) as refused:  # the default app was not granted User.Read.All
        port().resolve_people("Car")
    assert refused.value.kind == "access"


@pytest.mark.parametrize(("client_id", "secret", "kind", "words"), [
    ("5f0c2f5e-6c1b-4a8e-9a57-2c1f0e7d1a01", "Wrong-secret", "credentials", "client secret"),
    ("00000000-0000-0000-0000-00000000dead", "Whatever-1", "credentials", "client id"),
])
def test_refused_credentials_say_what_is_wrong_and_keep_the_secret_out(front, client_id, secret, kind, words):
    mailbox = GraphMailboxPort(adapter_config(front, client_id, secret), "alice@contoso.com")
    with pytest.raises(ExchangeProblem) as refused:
        mailbox.check_inbox()
    assert refused.value.kind == kind and refused.value.refused_credentials
    assert words in refused.value.message and secret not in refused.value.message
    assert mailbox.requests == 0  # refused at the token: Graph never asked


def test_an_unknown_tenant_is_named(front):
    config = adapter_config(front)
    mailbox = GraphMailboxPort(type(config)(**{**config.__dict__, "tenant": "fabrikam.onmicrosoft.com"}),
                               "alice@contoso.com")
    with pytest.raises(ExchangeProblem) as unknown:
        mailbox.check_inbox()
    assert unknown.value.kind == "not_configured" and "fabrikam.onmicrosoft.com" in unknown.value.message


def test_a_mailbox_outside_the_apps_scope_and_an_unknown_one_are_access_problems(sandbox, front, port):
    register_app(sandbox, client_id="scoped-app", secret="Scoped-secret-1", mailboxes=["bob@contoso.com"])
    scoped = adapter_config(front, "scoped-app", "Scoped-secret-1")
    GraphMailboxPort(scoped, "bob@contoso.com").check_inbox()
    with pytest.raises(ExchangeProblem) as denied:
        GraphMailboxPort(scoped, "alice@contoso.com").check_inbox()
    assert denied.value.kind == "access" and "RBAC" in denied.value.message
    with pytest.raises(ExchangeProblem) as missing:
        port("nobody@contoso.com").check_inbox()
    assert missing.value.kind == "access" and "no mailbox" in missing.value.message


@pytest.mark.parametrize("kind", ["http_429", "http_503"])
def test_throttling_is_reported_with_the_servers_back_off_and_never_slept_on(sandbox, port, kind):
    script(sandbox, kind=kind, operation="GET mailFolders/{id}/messages/delta", mailbox="alice@contoso.com",
           retry_after=42)
    alice = port()
    started = datetime.now(UTC)
    with pytest.raises(ExchangeProblem) as busy:
        alice.sync_page("inbox", None)
    assert busy.value.kind == "throttled" and busy.value.back_off == 42
    assert datetime.now(UTC) - started < timedelta(seconds=5)
    assert alice.sync_page("inbox", None).done  # struck once


def test_an_unreachable_graph_is_reported_as_such(front):
    config = adapter_config(front)
    mailbox = GraphMailboxPort(type(config)(**{**config.__dict__, "base_url": "https://127.0.0.1:9/v1.0"}),
                               "alice@contoso.com")
    with pytest.raises(ExchangeProblem) as down:
        mailbox.check_inbox()
    assert down.value.kind == "unreachable"


def test_at_most_four_requests_are_in_flight_per_mailbox(sandbox, port):
    # Each request to Alice's inbox is held for a while: more threads than slots must queue, not be refused (the
    # sandbox answers a fifth concurrent request with 429, as Exchange Online does).
    script(sandbox, kind="delay", operation="GET mailFolders/{id}", mailbox="alice@contoso.com", seconds=0.3,
           times=MAILBOX_CONCURRENCY * 2)
    alice = port()
    alice.check_inbox()  # the token first, so that the threads only wait for Graph
    failures = []

    def read() -> None:
        try:
            alice.check_inbox()
        except ExchangeProblem as problem:
            failures.append(problem.kind)

    threads = [threading.Thread(target=read) for _ in range(MAILBOX_CONCURRENCY * 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and alice.requests == 1 + MAILBOX_CONCURRENCY * 2
