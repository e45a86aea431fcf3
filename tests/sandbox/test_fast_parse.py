"""The mail port's one-pass parse of SOAP answers (widget/exchange/fast_parse.py): the private exchangelib hook it
relies on, answers read exactly as exchangelib reads them, exchangelib's fault handling kept, hostile XML refused."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ews_client import fill_inbox
from exchangelib import Account, Build, Configuration, FailFast, Message, Version
from exchangelib.errors import ErrorInternalServerError, ErrorInvalidSyncStateData, ErrorServerBusy, SOAPError
from exchangelib.fields import FieldPath
from exchangelib.properties import DistinguishedFolderId, Mailbox
from exchangelib.services import GetItem, SyncFolderItems
from exchangelib.services.common import EWSService
from exchangelib.transport import NOAUTH

from widget.exchange.ews.fast_parse import FastGetItem, FastSyncFolderItems, WholeBodyParsing
from widget.exchange.ews.mailbox import BODY_FIELDS, SUMMARY_FIELDS


def _fields(names: tuple[str, ...]) -> set[FieldPath]:
    return {FieldPath(field=Message.get_field_by_fieldname(name)) for name in names}


def _sync(service_class: type[SyncFolderItems], account: Account, state: str | None = None) -> tuple[list, bool]:
    service = service_class(account=account)
    inbox = DistinguishedFolderId(id="inbox", mailbox=Mailbox(email_address=account.primary_smtp_address))
    changes = list(service.call(folder=inbox, shape="IdOnly", additional_fields=_fields(SUMMARY_FIELDS),
                                sync_state=state, ignore=None, max_changes_returned=512, sync_scope=None))
    return changes, service.includes_last_item_in_range


def test_it_overrides_a_hook_that_exchangelib_still_has_and_calls_for_every_answer():
    # If this fails after an exchangelib upgrade, fast_parse.py no longer takes effect (or breaks): read
    # exchangelib's services/common.py again before moving the pin in pyproject.toml.
    hook = inspect.getattr_static(EWSService, "_get_soap_parts")
    assert isinstance(hook, classmethod)
    assert list(inspect.signature(EWSService._get_soap_parts).parameters) == ["response"]
    assert "self._get_soap_parts(response=r)" in inspect.getsource(EWSService._get_response_xml)
    for fast, stock in ((FastSyncFolderItems, SyncFolderItems), (FastGetItem, GetItem)):
        assert issubclass(fast, stock)
        assert fast._get_soap_parts.__func__ is WholeBodyParsing._get_soap_parts.__func__


def test_it_reads_a_full_sync_page_and_a_batch_of_bodies_exactly_as_exchangelib_does(sandbox, account):
    fill_inbox(sandbox.store, "alice@contoso.com", 600)
    alice = account("alice@contoso.com")

    stock_page, stock_done = _sync(SyncFolderItems, alice)
    fast_page, fast_done = _sync(FastSyncFolderItems, alice)
    assert len(fast_page) == 512 and fast_done is stock_done is False
    assert fast_page == stock_page
    assert {item.subject for _, item in fast_page} == {item.subject for _, item in stock_page}
    assert all(item.sender and item.to_recipients and item.datetime_received for _, item in fast_page)

    ids = [(item.id, None) for _, item in fast_page[:100]]
    stock_bodies = list(GetItem(account=alice, chunk_size=100).call(
        items=ids, additional_fields=_fields(BODY_FIELDS), shape="IdOnly"))
    fast_bodies = list(FastGetItem(account=alice, chunk_size=100).call(
        items=ids, additional_fields=_fields(BODY_FIELDS), shape="IdOnly"))
    assert fast_bodies == stock_bodies
    assert [str(item.body) for item in fast_bodies] == [str(item.body) for item in stock_bodies]
    assert all(str(item.body).startswith("Body of message ") for item in fast_bodies)


@pytest.mark.parametrize(("fault", "options", "raised"), [
    ("server_busy", {"back_off_ms": 7250}, ErrorServerBusy),
    ("invalid_sync_state", {}, ErrorInvalidSyncStateData),
    ("http_500", {}, ErrorInternalServerError),
], ids=["server-busy", "invalid-sync-state", "soap-fault-500"])
def test_it_raises_what_exchangelib_raises_for_a_fault(sandbox, account, fault, options, raised):
    alice = account("alice@contoso.com")
    alice.inbox.total_count  # noqa: B018 - warm up: version and folder lookups are done
    errors = []
    for service_class in (SyncFolderItems, FastSyncFolderItems):
        sandbox.add_fault(fault, operation="SyncFolderItems", mailbox="alice@contoso.com", **options)
        with pytest.raises(raised) as caught:
            _sync(service_class, alice)
        errors.append(caught.value)
    stock, fast = errors
    assert type(fast) is type(stock) and str(fast) == str(stock)
    assert getattr(fast, "back_off", None) == getattr(stock, "back_off", None)
    assert sandbox.faults.fired[fault] == 2


BILLION_LAUGHS = b"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<m:SyncFolderItemsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>
<m:SyncFolderItemsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>
<m:SyncState>x</m:SyncState><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange><m:Changes><t:Create>
<t:Message><t:ItemId Id="a" ChangeKey="b"/><t:Subject>&lol3;&secret;</t:Subject></t:Message>
</t:Create></m:Changes></m:SyncFolderItemsResponseMessage></m:ResponseMessages></m:SyncFolderItemsResponse>
</s:Body></s:Envelope>"""


@pytest.fixture
def hostile_server() -> Iterator[str]:
    """A server on loopback that answers every request with an XML bomb that also asks for a local file."""

    class Hostile(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(BILLION_LAUGHS)))
            self.end_headers()
            self.wfile.write(BILLION_LAUGHS)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/EWS/Exchange.asmx"
    server.shutdown()
    server.server_close()


def test_it_refuses_an_answer_that_declares_entities(hostile_server):
    config = Configuration(service_endpoint=hostile_server, auth_type=NOAUTH, version=Version(Build(15, 1)),
                           retry_policy=FailFast())
    account = Account("alice@contoso.com", config=config, autodiscover=False)
    with pytest.raises(SOAPError, match="DOCTYPE"):
        _sync(FastSyncFolderItems, account, "x")
