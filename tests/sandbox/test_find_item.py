"""FindItem on the sandbox, as exchangelib's QuerySet uses it: paging, sorting, restrictions, several folders."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from exchangelib import Account, Message, Q
from exchangelib.errors import ErrorAccessDenied, ErrorUnsupportedPathForQuery
from exchangelib.fields import FieldOrder, FieldPath
from exchangelib.folders import FolderCollection, Inbox
from exchangelib.properties import Mailbox as EwsMailbox
from exchangelib.queryset import QuerySet
from exchangelib.services import FindItem
from exchangelib.util import create_element
from lxml import etree

from widget.sandbox import Sandbox
from widget.sandbox.items import Mailbox

M_NS = "http://schemas.microsoft.com/exchange/services/2006/messages"
BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CAROL = Mailbox("carol@contoso.com", "Carol Chen", "Mailbox")
BOB = Mailbox("bob@contoso.com", "Bob Brown", "Mailbox")


def seed_messages(sandbox: Sandbox, count: int, *, mailbox: str = "alice@contoso.com", folder: str = "inbox") -> None:
    """Put `count` received messages into a folder: "Message 000" an hour before "Message 001" and so on."""
    store = sandbox.store
    with store.lock:
        target = store.folder(mailbox, folder)
        for number in range(count):
            store.add_item(target, "Message", {
                "Subject": f"Message {number:03d}",
                "DateTimeReceived": BASE + timedelta(hours=number),
                "DateTimeSent": BASE + timedelta(hours=number),
                "IsRead": number % 3 == 0,
                "From": CAROL if number % 2 else BOB,
                "Sender": CAROL if number % 2 else BOB,
                "Importance": "High" if number % 10 == 0 else "Normal",
                "Categories": ["Customer"] if number % 5 == 0 else [],
            })


def root_folders(sandbox: Sandbox) -> list[dict[str, str]]:
    """Record the RootFolder attributes of every FindItem answer, as they went over the wire."""
    seen: list[dict[str, str]] = []

    def observe(direction: str, envelope: etree._Element) -> None:
        if direction == "response":
            seen.extend(dict(root.attrib) for root in envelope.iter(f"{{{M_NS}}}RootFolder"))

    sandbox.observers.append(observe)
    return seen


@pytest.fixture
def alice(account: Callable[..., Account]) -> Account:
    return account("alice@contoso.com")


def subjects(items: Iterable[Any]) -> list[str]:
    """The subjects of items exchangelib returned."""
    return [item.subject for item in items]


def test_it_pages_through_250_messages_newest_first(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 250)
    roots = root_folders(sandbox)

    found = subjects(alice.inbox.all().only("subject"))

    assert found == [f"Message {n:03d}" for n in reversed(range(250))]
    assert roots == [
        {"IndexedPagingOffset": "100", "TotalItemsInView": "250", "IncludesLastItemInRange": "false"},
        {"IndexedPagingOffset": "200", "TotalItemsInView": "250", "IncludesLastItemInRange": "false"},
        {"IndexedPagingOffset": "250", "TotalItemsInView": "250", "IncludesLastItemInRange": "true"},
    ]


def test_it_returns_a_slice_of_an_ordered_folder(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 250)
    roots = root_folders(sandbox)

    page = subjects(alice.inbox.all().order_by("datetime_received").only("subject")[120:130])

    assert page == [f"Message {n:03d}" for n in range(120, 130)]
    assert roots == [{"IndexedPagingOffset": "130", "TotalItemsInView": "250", "IncludesLastItemInRange": "false"}]
    assert subjects(alice.inbox.all().order_by("datetime_received").only("subject")[245:300]) == [
        f"Message {n:03d}" for n in range(245, 250)
    ]
    assert roots[-1] == {"IndexedPagingOffset": "250", "TotalItemsInView": "250", "IncludesLastItemInRange": "true"}


def test_it_pages_from_the_end_of_the_view(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 25)
    roots = root_folders(sandbox)

    class FindFromEnd(FindItem):
        def get_payload(self, **kwargs: Any) -> etree._Element:
            payload = super().get_payload(**kwargs)
            payload.find(f"{{{M_NS}}}IndexedPageItemView").set("BasePoint", "End")
            return payload

    items = list(FindFromEnd(account=alice, page_size=10).call(
        folders=[alice.inbox], additional_fields={FieldPath.from_string("subject", folder=alice.inbox)},
        restriction=None, order_fields=[FieldOrder.from_string("datetime_received", folder=alice.inbox)],
        shape="IdOnly", query_string=None, depth="Shallow", calendar_view=None, max_items=None, offset=0,
    ))

    assert subjects(items) == [f"Message {n:03d}" for n in [*range(15, 25), *range(5, 15), *range(0, 5)]]
    assert [root["IndexedPagingOffset"] for root in roots] == ["10", "20", "25"]
    assert [root["IncludesLastItemInRange"] for root in roots] == ["false", "false", "true"]


def test_it_sorts_ascending_and_descending(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 12)

    by_subject = subjects(alice.inbox.all().order_by("subject").only("subject"))
    by_subject_desc = subjects(alice.inbox.all().order_by("-subject").only("subject"))
    importance_then_time = subjects(alice.inbox.all().order_by("-importance", "datetime_received").only("subject"))

    assert by_subject == [f"Message {n:03d}" for n in range(12)]
    assert by_subject_desc == list(reversed(by_subject))
    # High before Normal (the store orders importance as a number), then oldest first within each.
    assert importance_then_time == ["Message 000", "Message 010"] + [
        f"Message {n:03d}" for n in range(12) if n % 10
    ]


def test_it_counts_and_tells_whether_anything_matches(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 40)

    assert alice.inbox.all().count() == 40
    assert alice.inbox.filter(is_read=True).count() == 14
    assert alice.inbox.filter(subject="Message 007").exists()
    assert not alice.inbox.filter(subject="Message 999").exists()
    assert alice.sent.all().count() == 0


def test_it_filters_on_subject(account: Callable[..., Account]) -> None:
    alice = account("alice@contoso.com")
    for subject in ("Quarterly report", "quarterly REPORT draft", "Report: quarterly", "Lunch"):
        Message(account=alice, folder=alice.inbox, subject=subject, body="x").save()

    def matching(**kwargs: str) -> list[str]:
        return sorted(subjects(alice.inbox.filter(**kwargs).only("subject")))

    # IsEqualTo compares strings without regard to case, as the Exchange store does.
    assert matching(subject="quarterly report") == ["Quarterly report"]
    assert matching(subject__exact="Quarterly report") == ["Quarterly report"]
    assert matching(subject__exact="quarterly report") == []
    assert matching(subject__iexact="QUARTERLY REPORT") == ["Quarterly report"]
    assert matching(subject__contains="REPORT") == ["quarterly REPORT draft"]
    assert matching(subject__icontains="report") == ["Quarterly report", "Report: quarterly",
                                                     "quarterly REPORT draft"]
    assert matching(subject__startswith="Quarterly") == ["Quarterly report"]
    assert matching(subject__istartswith="quarterly") == ["Quarterly report", "quarterly REPORT draft"]
    assert matching(subject__in=["Lunch", "Dinner"]) == ["Lunch"]


def test_it_filters_on_datetime_ranges(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 48)
    day_two = BASE + timedelta(days=1)

    def matching(qs: QuerySet) -> list[str]:
        return subjects(qs.order_by("datetime_received").only("subject"))

    assert matching(alice.inbox.filter(datetime_received__range=(day_two, day_two + timedelta(hours=2)))) == [
        "Message 024", "Message 025", "Message 026"]
    assert matching(alice.inbox.filter(datetime_received__gt=BASE + timedelta(hours=45))) == [
        "Message 046", "Message 047"]
    assert matching(alice.inbox.filter(datetime_received__lt=BASE + timedelta(hours=2))) == [
        "Message 000", "Message 001"]
    # Another zone's offset names the same instant.
    berlin_nine = datetime(2026, 1, 5, 10, 0, tzinfo=UTC).astimezone(alice.default_timezone)
    assert matching(alice.inbox.filter(datetime_received__lte=berlin_nine)) == [
        "Message 000", "Message 001", "Message 002"]


def test_it_filters_on_flags_importance_categories_and_sender(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 20)

    def matching(qs: QuerySet) -> list[str]:
        return subjects(qs.order_by("subject").only("subject"))

    assert matching(alice.inbox.filter(is_read=True)) == [f"Message {n:03d}" for n in range(20) if n % 3 == 0]
    assert matching(alice.inbox.filter(is_read=False)) == [f"Message {n:03d}" for n in range(20) if n % 3]
    assert matching(alice.inbox.filter(importance="High")) == ["Message 000", "Message 010"]
    assert matching(alice.inbox.filter(categories__contains=["customer"])) == [
        "Message 000", "Message 005", "Message 010", "Message 015"]
    assert matching(alice.inbox.filter(sender="carol@contoso.com", subject__startswith="Message 00")) == [
        "Message 001", "Message 003", "Message 005", "Message 007", "Message 009"]
    assert matching(alice.inbox.filter(author=EwsMailbox(email_address="BOB@contoso.com"),
                                       datetime_received__lt=BASE + timedelta(hours=5))) == [
        "Message 000", "Message 002", "Message 004"]


def test_it_combines_q_objects_with_or_and_not(sandbox: Sandbox, alice: Account) -> None:
    seed_messages(sandbox, 12)

    either = alice.inbox.filter(Q(subject="Message 001") | Q(subject="Message 002") | Q(importance="High"))
    neither = alice.inbox.filter(~Q(subject__startswith="Message 00") & ~Q(is_read=True))
    negated_or = alice.inbox.filter(~(Q(subject="Message 011") | Q(subject__contains="01")))

    assert sorted(subjects(either.only("subject"))) == ["Message 000", "Message 001", "Message 002", "Message 010"]
    assert sorted(subjects(neither.only("subject"))) == ["Message 010", "Message 011"]
    assert sorted(subjects(negated_or.only("subject"))) == [f"Message {n:03d}" for n in range(12)
                                                            if n not in (1, 10, 11)]
    assert alice.inbox.exclude(subject__contains="00").count() == 2


def test_it_searches_several_folders_at_once(sandbox: Sandbox, account: Callable[..., Account]) -> None:
    alice = account("alice@contoso.com")
    seed_messages(sandbox, 3)
    seed_messages(sandbox, 2, folder="sentitems")
    roots = root_folders(sandbox)

    both = FolderCollection(account=alice, folders=[alice.inbox, alice.sent])
    found = sorted(subjects(both.filter(subject__startswith="Message").only("subject")))

    assert found == ["Message 000", "Message 000", "Message 001", "Message 001", "Message 002"]
    # One response message per parent folder, each paging on its own.
    assert [root["TotalItemsInView"] for root in roots] == ["3", "2"]
    assert both.filter(subject="Message 002").count() == 1


def test_it_answers_every_kind_of_account(any_account: Callable[..., Account], sandbox: Sandbox) -> None:
    seed_messages(sandbox, 5, mailbox="bob@contoso.com")
    bob = any_account("bob@contoso.com")

    assert subjects(bob.inbox.filter(is_read=False).order_by("subject").only("subject")) == [
        "Message 001", "Message 002", "Message 004"]


def test_it_refuses_a_restriction_on_a_property_it_cannot_search(alice: Account) -> None:
    class RecipientRestriction:
        """A restriction exchangelib itself would not build: To recipients cannot be searched in Exchange."""

        def to_xml(self, version: object) -> etree._Element:
            restriction = create_element("m:Restriction")
            equal = create_element("t:IsEqualTo")
            equal.append(create_element("t:FieldURI", attrs={"FieldURI": "message:ToRecipients"}))
            operand = create_element("t:FieldURIOrConstant")
            operand.append(create_element("t:Constant", attrs={"Value": "bob@contoso.com"}))
            equal.append(operand)
            restriction.append(equal)
            return restriction

    with pytest.raises(ErrorUnsupportedPathForQuery) as raised:
        list(FindItem(account=alice).call(
            folders=[alice.inbox], additional_fields=None, restriction=RecipientRestriction(), order_fields=None,
            shape="IdOnly", query_string=None, depth="Shallow", calendar_view=None, max_items=None, offset=0,
        ))

    assert "can not be used with this type of restriction" in str(raised.value)
    assert "message:ToRecipients" in str(raised.value)


def test_it_denies_a_delegate_find_item_in_another_mailbox(sandbox: Sandbox, account: Callable[..., Account]) -> None:
    seed_messages(sandbox, 3, mailbox="bob@contoso.com")
    bob_inbox = account("bob@contoso.com").inbox
    alice = account("alice@contoso.com")
    # Alice knows the folder's id, but holds no delegate rights on Bob's mailbox.
    foreign = Inbox(root=alice.root, id=bob_inbox.id, changekey=bob_inbox.changekey)

    with pytest.raises(ErrorAccessDenied):
        list(FolderCollection(account=alice, folders=[foreign]).all().only("subject"))
    assert sandbox.stats.by_mailbox_operation[("alice@contoso.com", "FindItem")] == 1


def test_it_returns_whole_items_for_all(account: Callable[..., Account]) -> None:
    alice = account("alice@contoso.com")
    Message(account=alice, folder=alice.inbox, subject="Hello", body="Body text", categories=["Customer"],
            to_recipients=[EwsMailbox(email_address="bob@contoso.com")]).save()

    (item,) = alice.inbox.all()

    assert item.subject == "Hello"
    assert item.body == "Body text"
    assert item.categories == ["Customer"]
    assert [box.email_address for box in item.to_recipients] == ["bob@contoso.com"]


def test_it_searches_with_a_query_string(account: Callable[..., Account]) -> None:
    alice = account("alice@contoso.com")
    for subject, body in (("Invoice March", "Please pay"), ("Lunch", "About the invoice"), ("Holiday", "Beach")):
        Message(account=alice, folder=alice.inbox, subject=subject, body=body).save()

    assert sorted(subjects(alice.inbox.filter("invoice"))) == ["Invoice March", "Lunch"]
    assert subjects(alice.inbox.filter("subject:invoice")) == ["Invoice March"]
