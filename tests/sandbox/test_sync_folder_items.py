"""SyncFolderItems: paging over the change log, coalesced changes, and sync states that cannot be forged."""

from __future__ import annotations

import base64

import pytest
from ews_client import fill_inbox, sync_page
from exchangelib.errors import ErrorInvalidSyncStateData


def test_it_syncs_1200_messages_in_exactly_three_pages(sandbox, any_account):
    fill_inbox(sandbox.store, "alice@contoso.com", 1200)
    alice = any_account("alice@contoso.com")
    pages, state = [], None
    while True:
        page = sync_page(alice, alice.inbox, state)
        pages.append(page)
        state = page.sync_state
        if page.done:
            break
    assert [len(p.changes) for p in pages] == [512, 512, 176]
    assert [p.done for p in pages] == [False, False, True]
    subjects = [item.subject for p in pages for kind, item in p.changes]
    assert all(kind == "create" for p in pages for kind, _ in p.changes)
    assert sorted(subjects) == sorted(f"Message {n}" for n in range(1200))
    assert len(set(subjects)) == 1200
    assert sandbox.stats.by_mailbox_operation[("alice@contoso.com", "SyncFolderItems")] == 3
    # Nothing new: the next sync is empty and final.
    empty = sync_page(alice, alice.inbox, state)
    assert empty.changes == [] and empty.done


def test_it_reports_each_later_update_delete_and_read_flag_change_exactly_once(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 30)
    alice = account("alice@contoso.com")
    first = sync_page(alice, alice.inbox)
    items = {item.subject: item for _, item in first.changes}

    updated = alice.inbox.get(id=items["Message 1"].id)
    updated.subject = "Message 1 (edited)"
    updated.save(update_fields=["subject"])
    read = alice.inbox.get(id=items["Message 2"].id)
    read.is_read = True
    read.save(update_fields=["is_read"])
    alice.inbox.get(id=items["Message 3"].id).delete()
    fill_inbox(sandbox.store, "alice@contoso.com", 1)

    second = sync_page(alice, alice.inbox, first.sync_state)
    assert second.kinds() == {"update": 1, "read_flag_change": 1, "delete": 1, "create": 1}
    by_kind = {kind: value for kind, value in second.changes}
    assert by_kind["update"].subject == "Message 1 (edited)"
    assert by_kind["read_flag_change"][0].id == items["Message 2"].id and by_kind["read_flag_change"][1] is True
    assert by_kind["delete"].id == items["Message 3"].id
    assert second.done

    third = sync_page(alice, alice.inbox, second.sync_state)
    assert third.changes == []


def test_it_coalesces_changes_between_two_syncs(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 3)
    alice = account("alice@contoso.com")
    first = sync_page(alice, alice.inbox)
    target = next(item for _, item in first.changes if item.subject == "Message 0")
    # Several edits and a read flag change of one item show up once, as an update.
    for text in ("a", "b"):
        item = alice.inbox.get(id=target.id)
        item.subject = text
        item.save(update_fields=["subject"])
    item = alice.inbox.get(id=target.id)
    item.is_read = True
    item.save(update_fields=["is_read"])
    # An item created and deleted in between never shows.
    fill_inbox(sandbox.store, "alice@contoso.com", 1)
    fresh = next(i for i in alice.inbox.all() if i.subject == "Message 0" and i.id != target.id)
    fresh.delete()

    second = sync_page(alice, alice.inbox, first.sync_state)
    assert [(kind, getattr(value, "subject", None)) for kind, value in second.changes] == [("update", "b")]


def test_it_pages_changes_made_between_pages_without_losing_any(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 10)
    alice = account("alice@contoso.com")
    page = sync_page(alice, alice.inbox, max_changes=4)
    seen = [item.subject for _, item in page.changes]
    fill_inbox(sandbox.store, "alice@contoso.com", 2)
    while not page.done:
        page = sync_page(alice, alice.inbox, page.sync_state, max_changes=4)
        seen += [item.subject for _, item in page.changes]
    assert len(seen) == 12 and len(set(seen)) == 10  # the two new ones reuse subjects 0 and 1


def test_it_refuses_a_forged_sync_state(sandbox, account):
    alice = account("alice@contoso.com")
    first = sync_page(alice, alice.inbox)
    raw = bytearray(base64.b64decode(first.sync_state))
    raw[-1] ^= 1
    with pytest.raises(ErrorInvalidSyncStateData):
        sync_page(alice, alice.inbox, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(ErrorInvalidSyncStateData):
        sync_page(alice, alice.inbox, "bm90IGEgc3RhdGU=")


def test_it_refuses_a_sync_state_issued_for_another_folder(sandbox, account):
    alice = account("alice@contoso.com")
    inbox_state = sync_page(alice, alice.inbox).sync_state
    with pytest.raises(ErrorInvalidSyncStateData):
        sync_page(alice, alice.sent, inbox_state)
    bob = account("bob@contoso.com")
    with pytest.raises(ErrorInvalidSyncStateData):
        sync_page(bob, bob.inbox, inbox_state)


def test_it_returns_only_the_fields_asked_for(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 1)
    alice = account("alice@contoso.com")
    page = sync_page(alice, alice.inbox, fields=("subject",))
    item = page.changes[0][1]
    assert item.subject == "Message 0"
    assert item.body is None and item.sender is None


def test_it_gives_a_message_read_during_a_paged_first_sync_as_a_create(sandbox, account):
    # Read before its page came, an old message must still arrive whole: a client ignores a read flag change
    # of a message it never got, so reporting only that would lose the message.
    fill_inbox(sandbox.store, "alice@contoso.com", 10)
    alice = account("alice@contoso.com")
    page = sync_page(alice, alice.inbox, max_changes=4)
    given = {value.id: value.subject for _, value in page.changes}
    unseen = next(item for item in alice.inbox.all() if item.id not in given and item.subject == "Message 5")
    unseen.is_read = True
    unseen.save(update_fields=["is_read"])
    while not page.done:
        page = sync_page(alice, alice.inbox, page.sync_state, max_changes=4)
        given.update({value.id: value.subject for kind, value in page.changes if kind != "read_flag_change"})
    assert sorted(given.values()) == sorted(f"Message {n}" for n in range(10))
