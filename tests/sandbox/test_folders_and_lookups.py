"""Folder operations and the lookups: GetFolder, FindFolder, CreateFolder, ConvertId, ResolveNames, time zones."""

from __future__ import annotations

from exchangelib import Folder
from exchangelib.errors import (
    ErrorAccessDenied,
    ErrorFolderNotFound,
    ErrorInvalidIdMalformed,
    ErrorNameResolutionNoResults,
)
from exchangelib.fields import FieldPath
from exchangelib.folders import Calendar, DeletedItems, Drafts, Inbox, SentItems, Tasks
from exchangelib.properties import EWS_ID, AlternateId
from exchangelib.services import GetFolder, ResolveNames


def test_it_gets_every_distinguished_folder(any_account):
    alice = any_account("alice@contoso.com")
    assert alice.inbox.name == "Inbox" and isinstance(alice.inbox, Inbox)
    assert isinstance(alice.sent, SentItems) and alice.sent.name == "Sent Items"
    assert isinstance(alice.drafts, Drafts) and isinstance(alice.trash, DeletedItems)
    assert isinstance(alice.calendar, Calendar) and isinstance(alice.tasks, Tasks)
    assert alice.contacts.name == "Contacts"
    assert alice.msg_folder_root.name == "Top of Information Store"
    assert alice.inbox.parent.id == alice.msg_folder_root.id


def test_it_gets_folders_in_one_batch(sandbox, account):
    alice = account("alice@contoso.com")
    folders = [alice.inbox, alice.sent, alice.calendar, alice.tasks]
    before = sandbox.stats.operations["GetFolder"]
    name = FieldPath(field=Folder.get_field_by_fieldname("name"))
    found = list(GetFolder(account=alice).call(folders=folders, additional_fields=[name], shape="IdOnly"))
    assert [f.name for f in found] == ["Inbox", "Sent Items", "Calendar", "Tasks"]
    assert sandbox.stats.operations["GetFolder"] == before + 1


def test_it_counts_items_and_unread_items(sandbox, account):
    from ews_client import fill_inbox

    fill_inbox(sandbox.store, "alice@contoso.com", 4)
    alice = account("alice@contoso.com")
    alice.inbox.refresh()
    assert alice.inbox.total_count == 4 and alice.inbox.unread_count == 4


def test_it_creates_and_finds_folders_shallow_and_deep(account):
    alice = account("alice@contoso.com")
    customers = Folder(parent=alice.inbox, name="Customers")
    customers.save()
    Folder(parent=customers, name="ACME").save()
    shallow = [f.name for f in alice.inbox.children]
    assert shallow == ["Customers"]
    deep = sorted(f.name for f in alice.inbox.walk())
    assert deep == ["ACME", "Customers"]
    assert (alice.inbox / "Customers" / "ACME").name == "ACME"


def test_it_refuses_a_folder_of_another_mailbox_to_a_delegate(account):
    alice = account("alice@contoso.com")
    bob = account("bob@contoso.com")
    [result] = list(GetFolder(account=alice).call(folders=[bob.inbox], additional_fields=[], shape="IdOnly"))
    assert isinstance(result, ErrorAccessDenied)


def test_it_answers_an_unknown_folder_id_with_folder_not_found(account):
    alice = account("alice@contoso.com")
    ghost = Folder(root=alice.root, id="QUFNawJub3QgYSBmb2xkZXI=", changekey="x")
    [result] = list(GetFolder(account=alice).call(folders=[ghost], additional_fields=[], shape="IdOnly"))
    assert isinstance(result, ErrorFolderNotFound)


def test_it_converts_ids_of_known_items_only(sandbox, account):
    alice = account("alice@contoso.com")
    inbox_id = alice.inbox.id
    assert alice.protocol.version.build.major_version == 15  # ConvertId needs the protocol to know the version
    converted = list(
        alice.protocol.convert_ids(
            [
                AlternateId(id=inbox_id, format=EWS_ID, mailbox="alice@contoso.com"),
                AlternateId(id="DUMMY", format=EWS_ID, mailbox="alice@contoso.com"),
            ],
            destination_format="EntryId",
        )
    )
    assert converted[0].id == inbox_id and converted[0].format == "EntryId"
    assert isinstance(converted[1], ErrorInvalidIdMalformed)


def test_it_resolves_names_against_the_directory(account):
    alice = account("alice@contoso.com")
    assert alice.protocol.version.api_version == "Exchange2016"  # protocol-level services need the version known
    [bob] = alice.protocol.resolve_names(["bob"])
    assert bob.email_address == "bob@contoso.com" and bob.name == "Bob Brown"
    [carol] = alice.protocol.resolve_names(["carol@contoso.com"])
    assert carol.name == "Carol Chen"
    # Ambiguous names resolve to every match (prefixes of names, aliases and addresses), with a warning.
    several = list(ResolveNames(protocol=alice.protocol).call(unresolved_entries=["c"]))
    assert {m.email_address for m in several} == {"carol@contoso.com", "svc-crm@contoso.com"}
    [nobody] = alice.protocol.resolve_names(["nobody-by-that-name"])
    assert isinstance(nobody, ErrorNameResolutionNoResults)


def test_it_lists_server_time_zones(account):
    alice = account("alice@contoso.com")
    zones = {tz.id: tz.name for tz in alice.protocol.get_timezones(return_full_timezone_data=True)}
    assert "W. Europe Standard Time" in zones and "Pacific Standard Time" in zones and "UTC" in zones
    assert len(zones) > 100
