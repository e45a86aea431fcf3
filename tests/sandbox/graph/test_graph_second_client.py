"""A Graph client the project did not write: Microsoft's msgraph-sdk (Kiota, async, typed models) pointed at the
sandbox's base URL and CA, with msal for its tokens. It reads folders, pages a delta, sends mail, creates an
event and reads getSchedule, deserializing every answer into its own models."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graph_client import GRAPH_SCOPE, confidential_app
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.users.item.calendar.get_schedule.get_schedule_post_request_body import (
    GetSchedulePostRequestBody,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody
from msgraph_core import GraphClientFactory

from widget.sandbox.graph.server import GraphFront

# The SDK's generated request builders warn about their own deprecated classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class MsalTokens(AccessTokenProvider):
    """Kiota's token provider, backed by msal on the sandbox's authority."""

    def __init__(self, front: GraphFront):
        self.app = confidential_app(front)
        self.validator = AllowedHostsValidator(["127.0.0.1"])  # host names, without the port

    async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
        if not self.validator.is_url_host_valid(uri):
            return ""
        return self.app.acquire_token_for_client(GRAPH_SCOPE)["access_token"]

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self.validator


def sdk_client(front: GraphFront) -> GraphServiceClient:
    """The SDK with its default middleware (retry, redirect, ...), on the sandbox's URL, trusting its CA only."""
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(front.ca_file)), trust_env=False,
                                 base_url=front.graph_url))
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(MsalTokens(front)), client=http)
    adapter.base_url = front.graph_url
    return GraphServiceClient(request_adapter=adapter)


def _address(email: str) -> Recipient:
    return Recipient(email_address=EmailAddress(address=email))


async def _scenario(client: GraphServiceClient) -> dict[str, Any]:
    alice, bob = client.users.by_user_id("alice@contoso.com"), client.users.by_user_id("bob@contoso.com")
    found: dict[str, Any] = {}
    folders = await alice.mail_folders.get()
    found["folders"] = {folder.display_name for folder in folders.value}
    await alice.send_mail.post(SendMailPostRequestBody(message=Message(
        subject="From the SDK", body=ItemBody(content_type=BodyType.Text, content="Hello Bob"),
        to_recipients=[_address("bob@contoso.com")]), save_to_sent_items=True))
    for number in range(4):
        await alice.send_mail.post(SendMailPostRequestBody(message=Message(
            subject=f"Batch {number}", to_recipients=[_address("bob@contoso.com")])))
    headers = HeadersCollection()
    headers.add("Prefer", "odata.maxpagesize=2")
    config = RequestConfiguration(headers=headers)
    delta = bob.mail_folders.by_mail_folder_id("inbox").messages.delta
    page = await delta.get(request_configuration=config)
    subjects, pages = [m.subject for m in page.value], 1
    while page.odata_next_link:
        page = await delta.with_url(page.odata_next_link).get(request_configuration=config)
        subjects += [m.subject for m in page.value]
        pages += 1
    found.update(subjects=subjects, pages=pages, delta_link=page.odata_delta_link)
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=13, minute=0, second=0, microsecond=0)
    event = await alice.events.post(Event(
        subject="SDK meeting", start=DateTimeTimeZone(date_time=start.strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC"),
        end=DateTimeTimeZone(date_time=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC"),
        attendees=[Attendee(email_address=EmailAddress(address="bob@contoso.com"), type=AttendeeType.Required)]))
    found["event"] = (event.subject, event.is_organizer, [a.email_address.address for a in event.attendees])
    schedule = await alice.calendar.get_schedule.post(GetSchedulePostRequestBody(
        schedules=["bob@contoso.com"], availability_view_interval=60,
        start_time=DateTimeTimeZone(date_time=start.replace(hour=12).strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC"),
        end_time=DateTimeTimeZone(date_time=start.replace(hour=15).strftime("%Y-%m-%dT%H:%M:%S"), time_zone="UTC")))
    found["availability"] = schedule.value[0].availability_view
    found["busy"] = [item.status.value for item in schedule.value[0].schedule_items]
    return found


def test_microsofts_graph_sdk_works_against_the_sandbox(front: GraphFront) -> None:
    # One event loop for the whole scenario: the SDK's clients do not survive a second asyncio.run.
    found = asyncio.run(_scenario(sdk_client(front)))
    assert {"Inbox", "Sent Items", "Drafts", "Deleted Items"} <= found["folders"]
    assert sorted(found["subjects"]) == ["Batch 0", "Batch 1", "Batch 2", "Batch 3", "From the SDK"]
    assert found["pages"] == 3 and found["delta_link"].startswith(front.graph_url)
    assert found["event"] == ("SDK meeting", True, ["bob@contoso.com"])
    assert found["availability"] == "020"  # free, the meeting (Bob's tentative copy shows busy), free
    assert found["busy"] == ["busy"]
