"""The sandbox's JSON control API: stats, users, passwords and mail from the internet."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from ews_client import sync_page
from exchangelib.errors import UnauthorizedError


def _api(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{sandbox.base_url}/sandbox/{path}", timeout=5, **kwargs)


def test_it_counts_requests_per_operation_and_mailbox(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.refresh()
    stats = _api(sandbox, "GET", "stats").json()
    assert stats["operations"]["GetFolder"] >= 1
    assert stats["mailboxes"]["alice@contoso.com"] >= 1
    assert stats["mailbox_operations"]["alice@contoso.com"]["GetFolder"] >= 1
    assert stats["http_requests"] > stats["operations"]["GetFolder"]  # the NTLM handshake costs requests too
    assert stats["failed_logins"] == {} and stats["locked"] == []


def test_it_counts_a_request_held_by_a_delay_as_received_before_it_is_performed(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.refresh()  # signed in, so that what follows is the one request
    before = _api(sandbox, "GET", "stats").json()["mailbox_operations"]["alice@contoso.com"]["GetFolder"]
    assert _api(sandbox, "POST", "faults", json={"kind": "delay", "operation": "GetFolder", "seconds": 1.0,
                                                 "mailbox": "alice@contoso.com"}).status_code == 201
    worker = threading.Thread(target=alice.inbox.refresh)
    worker.start()
    deadline = time.monotonic() + 0.8
    held = None
    while time.monotonic() < deadline and held is None:
        stats = _api(sandbox, "GET", "stats").json()
        if stats["mailbox_requests_received"]["alice@contoso.com"]["GetFolder"] == before + 1:
            held = stats["mailbox_operations"]["alice@contoso.com"]["GetFolder"]
    worker.join()
    assert held == before  # in flight: received, not performed yet
    stats = _api(sandbox, "GET", "stats").json()
    assert stats["mailbox_operations"]["alice@contoso.com"]["GetFolder"] == before + 1
    assert stats["mailbox_requests_received"]["alice@contoso.com"]["GetFolder"] == before + 1


def test_it_adds_a_user_who_can_sign_in_at_once(sandbox, account):
    reply = _api(
        sandbox,
        "POST",
        "users",
        json={"email": "Dave@Contoso.com", "password": "Dave-pw-1", "display_name": "Dave Diaz"},
    )
    assert reply.status_code == 201
    assert reply.json() == {
        "email": "dave@contoso.com",
        "username": "dave",
        "domain": "CONTOSO",
        "display_name": "Dave Diaz",
    }
    dave = account("dave@contoso.com", password="Dave-pw-1")
    assert dave.inbox.total_count == 0
    again = _api(sandbox, "POST", "users", json={"email": "dave@contoso.com", "password": "x"})
    assert again.status_code == 409 and "already exists" in again.json()["error"]


def test_it_changes_a_password_so_the_old_one_stops_working(sandbox, account):
    alice = account("alice@contoso.com")
    alice.inbox.refresh()
    reply = _api(sandbox, "POST", "users/alice@contoso.com/password", json={"password": "Changed-pw-9"})
    assert reply.status_code == 200
    with pytest.raises(UnauthorizedError):
        alice.inbox.refresh()
    assert account("alice@contoso.com", password="Changed-pw-9").inbox.total_count == 0
    assert _api(sandbox, "POST", "users/nobody@contoso.com/password", json={"password": "x"}).status_code == 404


def test_it_delivers_mail_from_the_internet_as_received_mail(sandbox, account):
    reply = _api(
        sandbox,
        "POST",
        "deliver",
        json={
            "from": "Pat Buyer <pat.buyer@acme.example>",
            "to": ["alice@contoso.com", "outsider@elsewhere.example"],
            "cc": {"email": "bob@contoso.com", "name": "Bob Brown"},
            "subject": "Order 1234",
            "html": "<p>Please confirm</p>",
            "received": "2026-11-20T10:30:00Z",
        },
    )
    assert reply.status_code == 201
    assert reply.json() == {"delivered": ["alice@contoso.com", "bob@contoso.com"]}
    alice = account("alice@contoso.com")
    [(kind, item)] = sync_page(alice, alice.inbox).changes
    message = alice.inbox.get(id=item.id)
    assert (message.subject, message.sender.email_address, message.sender.name) == (
        "Order 1234",
        "pat.buyer@acme.example",
        "Pat Buyer",
    )
    assert message.is_draft is False and message.is_read is False
    assert message.datetime_received.isoformat() == "2026-11-20T10:30:00+00:00"
    assert message.body == "<p>Please confirm</p>"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("users", b"[]", "must be a JSON object"),
        ("users", b'{"email": "x@contoso.com"}', "'password' must be a non-empty string"),
        ("users", b'{"email": "not-an-address", "password": "p"}', "is not an e-mail address"),
        ("deliver", b'{"from": "a@b.example", "subject": "s"}', "at least one recipient"),
        ("deliver", b'{"from": "nobody", "to": "alice@contoso.com"}', "invalid address"),
        ("deliver", b'{"from": "a@b.example", "to": "x@elsewhere.example"}', "none of the recipients"),
        ("deliver", b'{"from": "a@b.example", "to": "alice@contoso.com", "received": "yesterday"}', "ISO 8601"),
        ("deliver", b"\xff\xfe", "not valid JSON"),
        ("users/alice@contoso.com/password", b'{"password": ""}', "'password' must be a non-empty string"),
    ],
)
def test_it_refuses_bad_requests_with_a_clear_400_and_changes_nothing(sandbox, path, body, message):
    before = (len(sandbox.store.users), len(sandbox.store.items), sandbox.store.users["alice@contoso.com"].password)
    reply = _api(sandbox, "POST", path, data=body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]
    assert (
        len(sandbox.store.users),
        len(sandbox.store.items),
        sandbox.store.users["alice@contoso.com"].password,
    ) == before


def test_it_answers_unknown_control_paths_with_404(sandbox):
    reply = _api(sandbox, "GET", "nothing-here")
    assert reply.status_code == 404 and "no such control endpoint" in reply.json()["error"]
