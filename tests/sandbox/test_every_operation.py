"""Every operation of the sandbox, driven through exchangelib in every way the widget can connect:
as the user (DELEGATE) and as the service account (IMPERSONATION), with NTLM and with Basic, and once with
nothing given but the URL and the credentials (auth_type=None, version=None)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from contoso import PASSWORDS
from ews_client import fill_inbox, sync_page
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    NTLM,
    Account,
    Attendee,
    CalendarItem,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    FailFast,
    Folder,
    Mailbox,
    Message,
    Task,
)
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY
from exchangelib.properties import EWS_ID, AlternateId

from widget.exchange.ews.availability import get_availability

MAILBOX_OPERATIONS = {
    "GetFolder",
    "FindFolder",
    "CreateFolder",
    "SyncFolderItems",
    "FindItem",
    "GetItem",
    "CreateItem",
    "UpdateItem",
    "DeleteItem",
    "MoveItem",
    "SendItem",
}
PROTOCOL_OPERATIONS = {"ConvertId", "GetUserAvailability", "GetServerTimeZones", "ResolveNames"}
ZONE = EWSTimeZone("Europe/Amsterdam")


@pytest.fixture(params=["delegate-ntlm", "delegate-basic", "impersonation-ntlm", "impersonation-basic", "discovered"])
def carol(request, sandbox, account) -> Account:
    """Carol's mailbox, connected the way the parameter says."""
    if request.param == "discovered":
        config = Configuration(
            service_endpoint=sandbox.url,
            credentials=Credentials("carol@contoso.com", PASSWORDS["carol@contoso.com"]),
            auth_type=None,
            version=None,
            retry_policy=FailFast(),
        )
        return Account("carol@contoso.com", config=config, autodiscover=False, access_type=DELEGATE)
    access, auth = request.param.split("-")
    return account(
        "carol@contoso.com",
        access={"delegate": DELEGATE, "impersonation": IMPERSONATION}[access],
        auth={"ntlm": NTLM, "basic": BASIC}[auth],
    )


def test_it_answers_every_operation_in_every_connection_mode(sandbox, carol):
    fill_inbox(sandbox.store, "carol@contoso.com", 5)

    # Folders: GetFolder, FindFolder, CreateFolder.
    assert carol.inbox.total_count == 5
    projects = Folder(parent=carol.inbox, name="Projects")
    projects.save()
    assert [f.name for f in carol.inbox.children] == ["Projects"]

    # Items: SyncFolderItems, FindItem, GetItem.
    page = sync_page(carol, carol.inbox)
    assert len(page.changes) == 5 and page.done
    newest = carol.inbox.all().order_by("-datetime_received")[0]
    assert newest.subject == "Message 4" and newest.body == "Body of message 4"

    # UpdateItem, MoveItem, DeleteItem.
    newest.is_read = True
    newest.save(update_fields=["is_read"])
    newest.move(projects)
    assert projects.all().count() == 1
    carol.inbox.all().order_by("datetime_received")[0].delete()
    kinds = sync_page(carol, carol.inbox, page.sync_state).kinds()
    assert kinds == {"delete": 2}  # one moved away, one deleted

    # CreateItem (message saved, then SendItem), calendar item with an invitation, task.
    draft = Message(
        account=carol,
        folder=carol.drafts,
        subject="Offer",
        body="Our offer",
        to_recipients=[Mailbox(email_address="bob@contoso.com")],
    )
    draft.save()
    draft.send()
    assert [i.props["Subject"] for i in sandbox.store.folder("bob@contoso.com", "inbox").items.values()] == ["Offer"]
    start = EWSDateTime.from_datetime(
        datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    ).astimezone(ZONE)
    CalendarItem(
        account=carol,
        folder=carol.calendar,
        subject="Kick-off",
        start=start,
        end=start + timedelta(hours=1),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="bob@contoso.com"), response_type="Unknown")],
    ).save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    Task(account=carol, folder=carol.tasks, subject="Prepare kick-off").save()
    assert [t.subject for t in carol.tasks.all()] == ["Prepare kick-off"]

    # The protocol-level operations: ConvertId, ResolveNames, GetServerTimeZones, GetUserAvailability.
    assert carol.protocol.version.build.major_version == 15
    [converted] = carol.protocol.convert_ids(
        [AlternateId(id=carol.inbox.id, format=EWS_ID, mailbox="carol@contoso.com")], destination_format="EntryId"
    )
    assert converted.id == carol.inbox.id
    [bob] = carol.protocol.resolve_names(["Bob Brown"])
    assert bob.email_address == "bob@contoso.com"
    assert any(tz.id == "W. Europe Standard Time" for tz in carol.protocol.get_timezones())
    availability = get_availability(
        carol.protocol,
        ["bob@contoso.com", "carol@contoso.com"],
        start.replace(hour=0),
        start.replace(hour=0) + timedelta(days=1),
    )
    bobs = availability.attendees[0]
    assert bobs.error is None and any(e.start == start and e.busy_type == "Busy" for e in bobs.events)

    done = {op for (mailbox, op) in sandbox.stats.by_mailbox_operation if mailbox == "carol@contoso.com"}
    assert done >= MAILBOX_OPERATIONS
    assert set(sandbox.stats.operations) >= PROTOCOL_OPERATIONS
