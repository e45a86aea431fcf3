"""The Graph adapter's mail: delta pages with their links, bodies, sending, a search by address, and what a
delta link Graph no longer knows means (against the sandbox's Graph front, with msal and requests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from graph_client import port_round

from widget.exchange.graph import mail
from widget.exchange.problems import SyncStateInvalid


def full_round(mailbox, folder="inbox", state=None):
    """Every page of one round of a mail folder."""
    return port_round(lambda at: mailbox.sync_page(folder, at), state)


def test_it_syncs_a_folder_in_pages_and_a_sync_without_news_costs_one_request(port, monkeypatch):
    alice, bob = port("alice@contoso.com"), port("bob@contoso.com")
    for n in range(3):
        assert alice.send(f"Offer {n}", f"Hello {n}", [("bob@contoso.com", "Bob Brown")], [], None) is None
    monkeypatch.setattr(mail, "PAGE_SIZE", 2)
    first = bob.sync_page("inbox", None)
    assert len(first.changed) == 2 and not first.done and first.sync_state.startswith("https://")
    changed, _, state = full_round(bob, state=first.sync_state)
    offers = sorted(m.subject for m in [*first.changed, *changed])
    assert offers == ["Offer 0", "Offer 1", "Offer 2"]
    message = first.changed[0]
    assert message.sender == ("alice@contoso.com", "Alice Adams") and message.to == [("bob@contoso.com", "Bob Brown")]
    assert message.received_at.tzinfo is UTC and message.change_key and not message.is_read

    before = bob.requests
    nothing = bob.sync_page("inbox", state)
    assert (nothing.changed, nothing.deleted, nothing.done, bob.requests - before) == ([], [], True, 1)
    sent, _, _ = full_round(alice, "sentitems")
    assert sorted(m.subject for m in sent) == offers  # the sent copies


def test_it_reports_deleted_messages_and_fetches_bodies_with_attachment_names(port, graph):
    bob = port("bob@contoso.com")
    port("alice@contoso.com").send("Contract", "Please sign.", [("bob@contoso.com", "")], [], None)
    changed, _, state = full_round(bob)
    item_id = changed[0].item_id
    draft = graph.ok("POST", "users/bob@contoso.com/messages", {"subject": "With a file"}, status=201)
    graph.ok("POST", f"users/bob@contoso.com/messages/{draft['id']}/attachments", {
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "terms.pdf", "contentBytes": "JVBERi0xLjQK"},
        status=201)
    bodies = dict(bob.bodies([item_id, draft["id"], "AAkALgImmNoSuchMessage"]))
    assert bodies[item_id].text == "Please sign." and bodies[item_id].attachments == []
    assert bodies[draft["id"]].attachments == [("terms.pdf", 9)]
    assert bodies["AAkALgImmNoSuchMessage"] is None
    assert bob.bodies_per_request == 10

    graph.ok("DELETE", f"users/bob@contoso.com/messages/{item_id}", status=204)
    _, deleted, _ = full_round(bob, state=state)
    assert deleted == [item_id]


def test_a_delta_link_graph_no_longer_knows_is_an_invalid_sync_state(sandbox, port):
    bob = port("bob@contoso.com")
    _, _, state = full_round(bob)
    response = requests.post(f"{sandbox.base_url}/sandbox/faults", json={"protocol": "graph", "kind": "delta_reset"},
                             timeout=5)
    assert response.status_code == 201
    with pytest.raises(SyncStateInvalid):
        bob.sync_page("inbox", state)
    with pytest.raises(SyncStateInvalid):  # a stored link to another host never gets the token
        bob.sync_page("inbox", "https://attacker.example/v1.0/users/bob/mailFolders/inbox/messages/delta")


def test_it_finds_the_messages_an_address_is_on_since_a_time(port):
    alice, bob = port("alice@contoso.com"), port("bob@contoso.com")
    alice.send("For Bob", "x", [("bob@contoso.com", "")], [], None)
    port("carol@contoso.com").send("From Carol", "y", [("bob@contoso.com", "")], [], None)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert [m.subject for m in bob.messages_with("inbox", "alice@contoso.com", since)] == ["For Bob"]
    assert bob.messages_with("inbox", "alice@contoso.com", datetime.now(UTC) + timedelta(hours=1)) == []


def test_a_message_id_graph_refuses_is_sent_without_one(port):
    alice, bob = port("alice@contoso.com"), port("bob@contoso.com")
    sent_with = alice.send("Hello", "Text", [("bob@contoso.com", "Bob")], [("carol@contoso.com", "")],
                           "<widget-1@contoso.com>")
    # The sandbox refuses a client's internetMessageId (400): the message goes again without it, once.
    assert sent_with is None and alice.requests == 2
    changed, _, _ = full_round(bob)
    assert [m.subject for m in changed] == ["Hello"]
    assert changed[0].internet_message_id not in (None, "<widget-1@contoso.com>")
    assert changed[0].cc == [("carol@contoso.com", "carol@contoso.com")]  # no name given: Graph shows the address
