"""Scripted faults reach exchangelib as the exceptions a real Exchange server would cause."""

from __future__ import annotations

import time

import pytest
import requests
from ews_client import fill_inbox, sync_page
from exchangelib import BASIC, FaultTolerance
from exchangelib.errors import (
    ErrorInternalServerError,
    ErrorInvalidSyncStateData,
    ErrorMailboxMoveInProgress,
    ErrorServerBusy,
    ErrorTimeoutExpired,
    RateLimitError,
    UnauthorizedError,
)


def test_it_sends_server_busy_with_the_scripted_back_off(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018 - warm up: version and folder lookups are done
    sandbox.add_fault("server_busy", operation="GetFolder", mailbox="alice@contoso.com", back_off_ms=7250)
    with pytest.raises(ErrorServerBusy) as caught:
        alice.inbox.refresh()
    assert caught.value.back_off == 7.25
    alice.inbox.refresh()  # the fault fired once only


def test_it_sends_503_with_retry_after_which_exchangelib_honours(sandbox, account):
    alice = account("alice@contoso.com", retry_policy=FaultTolerance(max_wait=5))
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("http_503", operation="GetFolder", retry_after=1)
    started = time.monotonic()
    alice.inbox.refresh()
    assert time.monotonic() - started >= 1.0
    assert sandbox.faults.fired["http_503"] == 1

    sandbox.add_fault("http_503", operation="GetFolder", retry_after=60)
    with pytest.raises(RateLimitError) as caught:
        alice.inbox.refresh()
    assert caught.value.wait == 60


def test_it_sends_503_that_fails_fast_without_a_retry(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("http_503", operation="GetFolder", retry_after=5)
    with pytest.raises(ErrorServerBusy, match="503"):
        alice.inbox.refresh()


def test_it_sends_500_with_a_soap_fault(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("http_500", operation="GetFolder")
    with pytest.raises(ErrorInternalServerError):
        alice.inbox.refresh()


def test_it_delays_a_reply(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("delay", operation="GetFolder", seconds=0.6)
    started = time.monotonic()
    alice.inbox.refresh()
    assert time.monotonic() - started >= 0.6


def test_it_drops_the_connection(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("drop", operation="GetFolder")
    with pytest.raises(ErrorTimeoutExpired, match="Connection"):
        alice.inbox.refresh()
    alice.inbox.refresh()


def test_it_declares_a_sync_state_invalid(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 3)
    alice = account("alice@contoso.com")
    state = sync_page(alice, alice.inbox).sync_state
    sandbox.add_fault("invalid_sync_state", operation="SyncFolderItems", mailbox="alice@contoso.com")
    with pytest.raises(ErrorInvalidSyncStateData):
        sync_page(alice, alice.inbox, state)
    assert sync_page(alice, alice.inbox, state).changes == []


def test_it_reports_a_mailbox_move_in_progress(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("mailbox_move", operation="GetFolder", times=2)
    for _ in range(2):
        with pytest.raises(ErrorMailboxMoveInProgress):
            alice.inbox.refresh()
    alice.inbox.refresh()


def test_it_lets_calls_through_before_a_fault_scripted_with_after(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    sandbox.add_fault("mailbox_move", operation="GetFolder", mailbox="alice@contoso.com", after=2)
    sandbox.add_fault("server_busy", operation="GetFolder", mailbox="alice@contoso.com", back_off_ms=1000)
    with pytest.raises(ErrorServerBusy):  # the first call: the fault without `after`; it counts for the other
        alice.inbox.refresh()
    alice.inbox.refresh()
    with pytest.raises(ErrorMailboxMoveInProgress):  # the third matching call
        alice.inbox.refresh()
    alice.inbox.refresh()
    assert sandbox.faults.fired == {"server_busy": 1, "mailbox_move": 1}


def test_it_fails_a_get_item_with_a_response_message_the_schema_accepts(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 1)
    alice = account("alice@contoso.com")
    item_id = next(iter(sandbox.store.folder("alice@contoso.com", "inbox").items))
    sandbox.add_fault("mailbox_move", operation="GetItem", mailbox="alice@contoso.com")
    # The sandbox fixture fails the test at teardown if the failed GetItem reply lacks its <m:Items>.
    with pytest.raises(ErrorMailboxMoveInProgress):
        list(alice.fetch(ids=[(item_id, None)]))


@pytest.mark.parametrize("auth", ["NTLM", BASIC])
def test_it_changes_a_password_so_the_old_one_gets_401(sandbox, account, auth):
    alice = account("alice@contoso.com", auth=auth)
    alice.inbox.total_count  # noqa: B018 - an NTLM connection is now authenticated
    sandbox.add_fault("password_change", operation="GetFolder", mailbox="alice@contoso.com", password="New-pw-2")
    with pytest.raises(UnauthorizedError):
        alice.inbox.refresh()
    with pytest.raises(UnauthorizedError):
        alice.inbox.refresh()
    assert account("alice@contoso.com", auth=auth, password="New-pw-2").inbox.total_count == 0


def test_it_scripts_faults_through_the_control_api(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018
    reply = requests.post(
        f"{sandbox.base_url}/sandbox/faults",
        timeout=5,
        json=[
            {"kind": "server_busy", "operation": "GetFolder", "mailbox": "alice@contoso.com", "back_off_ms": 1500},
            {"kind": "mailbox_move", "operation": "GetFolder", "times": 3},
        ],
    )
    assert reply.status_code == 201
    assert [f["kind"] for f in reply.json()["faults"]] == ["server_busy", "mailbox_move"]
    assert len(requests.get(f"{sandbox.base_url}/sandbox/faults", timeout=5).json()["faults"]) == 2
    with pytest.raises(ErrorServerBusy) as caught:
        alice.inbox.refresh()
    assert caught.value.back_off == 1.5
    assert requests.delete(f"{sandbox.base_url}/sandbox/faults", timeout=5).json() == {"faults": []}
    alice.inbox.refresh()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"kind": "earthquake"}', "'kind' must be one of"),
        (b'{"kind": "server_busy", "times": 0}', "'times' must be a positive"),
        (b'{"kind": "server_busy", "after": -1}', "'after' must be a whole number"),
        (b'{"kind": "server_busy", "back_off_ms": "soon"}', "'back_off_ms' must be a int"),
        (b'{"kind": "drop", "colour": "red"}', "unknown field(s) for kind drop: colour"),
        (b"[1]", "a fault is a JSON object"),
    ],
)
def test_it_refuses_a_bad_fault_with_a_clear_400(sandbox, body, message):
    reply = requests.post(f"{sandbox.base_url}/sandbox/faults", data=body, timeout=5)
    assert reply.status_code == 400
    assert message in reply.json()["error"]
    assert requests.get(f"{sandbox.base_url}/sandbox/faults", timeout=5).json()["faults"] == []
