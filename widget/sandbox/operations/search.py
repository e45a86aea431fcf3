"""FindItem: the items of one or more folders, filtered, sorted and paged, or a calendar's view of a time span.

Exchange answers one FindItemResponseMessage per parent folder, each with a RootFolder that says where the page
stands. With an IndexedPageItemView, ``IndexedPagingOffset`` is the offset to ask for next (the offset plus the
items returned, counted from the view's BasePoint), ``TotalItemsInView`` the number of items matching, and
``IncludesLastItemInRange`` whether the page reaches the last of them. A CalendarView has no offset: it returns
the first MaxEntriesReturned appearances (single items and occurrences of recurring series) in order of start,
and says with IncludesLastItemInRange whether that was all of them.

Limits are Exchange 2016's defaults: at most 1000 items per page (EWSFindCountLimit; a request without paging
that would return more is refused with ErrorExceededFindCountLimit), and calendar views of at most two years
(ErrorCalendarViewRangeTooBig).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from ..items import Item, Shape, parse_datetime, render_item
from ..recurrence import calendar_instances, is_recurring_master, occurrence_info
from ..restriction import (
    Field,
    Predicate,
    PropertyError,
    compile_query_string,
    compile_restriction,
    compile_sort_order,
    sort_items,
)
from ..soap import EwsFault, ItemError, local, m, operation_response, response_message, sub, t
from ..store import Folder
from . import Context, operation

FIND_COUNT_LIMIT = 1000
# Exchange refuses calendar views longer than two years; 732 days covers any two years, leap days included.
MAX_CALENDAR_VIEW = timedelta(days=732)
# Properties FindItem does not return (bodies, MIME, attachments, recipient and attendee lists, recurrence and
# other structured values): clients fetch them with GetItem.
_NOT_IN_FIND = frozenset(
    "MimeContent Body UniqueBody NormalizedBody TextBody Attachments ToRecipients CcRecipients BccRecipients "
    "ReplyTo RequiredAttendees OptionalAttendees Resources InternetMessageHeaders Recurrence ModifiedOccurrences "
    "DeletedOccurrences ConflictingMeetings AdjacentMeetings ExtendedProperty".split()
)
_TRAVERSALS = ("Shallow", "SoftDeleted", "Associated")
_VIEWS = ("IndexedPageItemView", "FractionalPageItemView", "SeekToConditionPageItemView", "CalendarView",
          "ContactsView")


class FindShape(Shape):
    """An ItemShape as FindItem applies it: without the properties only GetItem returns."""

    def wants(self, element: str) -> frozenset[str]:
        """The element names to emit for an item of this element type."""
        return super().wants(element) - _NOT_IN_FIND


@dataclass
class View:
    """The paging element of a FindItem request."""

    kind: str = "none"  # "none", "IndexedPageItemView", "FractionalPageItemView" or "CalendarView"
    max_entries: int | None = None
    offset: int = 0
    from_end: bool = False
    numerator: int = 0
    denominator: int = 1
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class Query:
    """Everything of a FindItem request that applies to each of its folders alike."""

    traversal: str
    shape: FindShape
    view: View
    restriction: Predicate | None = None
    sort: list[tuple[Field, bool]] | None = None
    query_string: Predicate | None = None
    # A refusal of the request that Exchange reports in each folder's response message.
    problem: ItemError | None = None


@dataclass
class Page:
    """One folder's answer: the items to render and the RootFolder's paging attributes."""

    items: list[Item]
    attributes: dict[str, str]


def _schema_fault(message: str) -> EwsFault:
    return EwsFault("ErrorSchemaValidation", f"The request failed schema validation: {message}")


def _int_attribute(elem: etree._Element, name: str, *, required: bool) -> int | None:
    text = elem.get(name)
    if text is None:
        if required:
            raise _schema_fault(f"The required attribute '{name}' is missing.")
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise _schema_fault(f"The '{name}' attribute is invalid - The value '{text}' is invalid according to its "
                            "datatype 'http://www.w3.org/2001/XMLSchema:int'.") from None


def _datetime_attribute(elem: etree._Element, name: str) -> datetime:
    text = elem.get(name)
    if text is None:
        raise _schema_fault(f"The required attribute '{name}' is missing.")
    try:
        return parse_datetime(text)
    except ItemError:
        raise _schema_fault(f"The '{name}' attribute is invalid - The value '{text}' is invalid according to its "
                            "datatype 'http://www.w3.org/2001/XMLSchema:dateTime'.") from None


def _read_view(op: etree._Element) -> tuple[View, ItemError | None]:
    elem = next((child for child in op if isinstance(child.tag, str) and local(child) in _VIEWS), None)
    if elem is None:
        return View(), None
    kind = local(elem)
    view = View(kind=kind, max_entries=_int_attribute(elem, "MaxEntriesReturned", required=False))
    problem = None
    if view.max_entries is not None and view.max_entries <= 0:
        problem = ItemError("ErrorInvalidPagingMaxRows", "The specified value for MaxEntriesReturned is invalid.")
    if kind == "IndexedPageItemView":
        view.offset = _int_attribute(elem, "Offset", required=True) or 0
        base_point = elem.get("BasePoint")
        if base_point not in ("Beginning", "End"):
            raise _schema_fault(f"The 'BasePoint' attribute is invalid - The value '{base_point}' is invalid.")
        view.from_end = base_point == "End"
        if view.offset < 0:
            problem = problem or ItemError("ErrorInvalidIndexedPagingParameters",
                                           "The indexed paging parameters are invalid: Offset is negative.")
    elif kind == "FractionalPageItemView":
        view.numerator = _int_attribute(elem, "Numerator", required=True) or 0
        view.denominator = _int_attribute(elem, "Denominator", required=True) or 0
        if view.denominator <= 0 or not 0 <= view.numerator <= view.denominator:
            problem = problem or ItemError("ErrorInvalidFractionalPagingParameters",
                                           "The fractional paging parameters are invalid.")
    elif kind == "CalendarView":
        view.start = _datetime_attribute(elem, "StartDate")
        view.end = _datetime_attribute(elem, "EndDate")
        if view.end < view.start:
            problem = problem or ItemError("ErrorCalendarEndDateIsEarlierThanStartDate",
                                           "EndDate is earlier than StartDate")
        elif view.end - view.start > MAX_CALENDAR_VIEW:
            problem = problem or ItemError("ErrorCalendarViewRangeTooBig",
                                           "The specified view range exceeds the maximum range of two years.")
    else:
        # SeekToConditionPageItemView and ContactsView are not implemented by the sandbox.
        problem = ItemError("ErrorInvalidRequest", f"The request is invalid: {kind} is not supported.")
    return view, problem


def _read_query(op: etree._Element) -> Query:
    """Parse and validate the request; schema errors raise EwsFault, refusals become Query.problem."""
    traversal = op.get("Traversal")
    if traversal not in _TRAVERSALS:
        raise _schema_fault(f"The 'Traversal' attribute is invalid - The value '{traversal}' is invalid.")
    query = Query(traversal=traversal, shape=FindShape.from_xml(op.find(m("ItemShape"))), view=View())
    query.view, query.problem = _read_view(op)
    problems: list[ItemError] = [query.problem] if query.problem else []
    if op.find(m("GroupBy")) is not None or op.find(m("DistinguishedGroupBy")) is not None:
        problems.append(ItemError("ErrorInvalidRequest", "The request is invalid: grouping is not supported."))
    restriction = op.find(m("Restriction"))
    sort_order = op.find(m("SortOrder"))
    query_string = op.find(m("QueryString"))
    try:
        if restriction is not None:
            query.restriction = compile_restriction(restriction)
        if sort_order is not None:
            query.sort = compile_sort_order(sort_order)
    except ItemError as error:
        problems.append(error)
    if query_string is not None and (query_string.text or "").strip():
        query.query_string = compile_query_string(query_string.text or "")
    if query.view.kind == "CalendarView" and (restriction is not None or sort_order is not None
                                              or query_string is not None):
        problems.append(ItemError("ErrorInvalidRestriction",
                                  "Restrictions and sort order may not be specified for a CalendarView."))
    query.problem = problems[0] if problems else None
    return query


def _received(item: Item) -> datetime:
    value = item.value("DateTimeReceived")
    return value if isinstance(value, datetime) else item.created


def _matching(folder: Folder, query: Query) -> list[Item]:
    if query.traversal != "Shallow":
        # The sandbox deletes for good (or moves to Deleted Items) and keeps no associated items.
        return []
    # Without a SortOrder a folder lists its newest items first; ties keep the newest stored first.
    items = [item for _, item in sorted(enumerate(folder.items.values()), key=lambda pair: (_received(pair[1]),
                                                                                            pair[0]), reverse=True)]
    if query.restriction is not None:
        items = [item for item in items if query.restriction(item)]
    if query.query_string is not None:
        items = [item for item in items if query.query_string(item)]
    if query.sort:
        items = sort_items(items, query.sort)
    return items


def _page_size(view: View) -> int:
    return min(view.max_entries or FIND_COUNT_LIMIT, FIND_COUNT_LIMIT)


def _paged(items: list[Item], view: View) -> Page:
    total = len(items)
    if view.kind == "none":
        if total > FIND_COUNT_LIMIT:
            raise _too_many()
        return Page(items, {"TotalItemsInView": str(total), "IncludesLastItemInRange": "true"})
    size = _page_size(view)
    if view.kind == "FractionalPageItemView":
        first = total * view.numerator // view.denominator
        page = items[first:first + size]
        reached = first + len(page)
        return Page(page, {"NumeratorOffset": str(reached), "AbsoluteDenominator": str(total),
                           "TotalItemsInView": str(total), "IncludesLastItemInRange": _bool(reached >= total)})
    if view.from_end:
        # Offsets count from the last item; the page still lists its items in the view's order.
        stop = max(total - view.offset, 0)
        page = items[max(stop - size, 0):stop]
    else:
        page = items[view.offset:view.offset + size]
    reached = view.offset + len(page)
    return Page(page, {"IndexedPagingOffset": str(reached), "TotalItemsInView": str(total),
                       "IncludesLastItemInRange": _bool(reached >= total)})


def _too_many() -> ItemError:
    return ItemError("ErrorExceededFindCountLimit", "You have exceeded the maximum number of objects that can be "
                     "returned for the find operation. Use paging to reduce the result size and try your request "
                     "again.")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _calendar_view(folder: Folder, query: Query) -> Page:
    view = query.view
    assert view.start is not None and view.end is not None  # set by _read_view for a CalendarView
    if folder.element != "CalendarFolder" and not (folder.folder_class or "").startswith("IPF.Appointment"):
        raise ItemError("ErrorCalendarFolderIsInvalidForCalendarView",
                        "The specified folder is not a calendar folder and cannot be used for a calendar view.")
    found = calendar_instances(folder, view.start, view.end, touching=True) if query.traversal == "Shallow" else []
    if len(found) > FIND_COUNT_LIMIT and (view.max_entries is None or view.max_entries > FIND_COUNT_LIMIT):
        # A calendar view cannot be paged, so too large a result is refused rather than cut.
        raise _too_many()
    page = found[:_page_size(view)]
    return Page(page, {"TotalItemsInView": str(len(found)), "IncludesLastItemInRange": _bool(len(page) == len(found))})


def _for_rendering(item: Item, shape: FindShape) -> Item:
    """The item with a recurring master's FirstOccurrence/LastOccurrence computed, when the shape asks for them."""
    wanted = shape.wants(item.element) & {"FirstOccurrence", "LastOccurrence"}
    if not wanted or not is_recurring_master(item):
        return item
    extra = {name: info for name in sorted(wanted) if (info := occurrence_info(item, name)) is not None}
    return dataclasses.replace(item, props={**item.props, **extra}) if extra else item


def _error_message(messages: etree._Element, error: ItemError) -> None:
    message = response_message(messages, "FindItem", error)
    if isinstance(error, PropertyError):
        # Exchange names the offending property path in the MessageXml, as exchangelib reports it.
        xml = sub(message, m("MessageXml"))
        xml.append(etree.fromstring(etree.tostring(error.path)))


@operation("FindItem")
def find_item(ctx: Context, op: etree._Element) -> etree._Element:
    """FindItem: per parent folder, the matching items of a paged, sorted and restricted view, or a CalendarView
    with recurring series expanded into occurrences."""
    query = _read_query(op)
    parents = op.find(m("ParentFolderIds"))
    refs = [ref for ref in parents if isinstance(ref.tag, str)] if parents is not None else []
    if not refs:
        raise _schema_fault("ParentFolderIds is empty.")
    response, messages = operation_response("FindItem")
    for ref in refs:
        try:
            folder = ctx.resolve_folder(ref)
            if query.problem is not None:
                raise query.problem
            if query.view.kind == "CalendarView":
                page = _calendar_view(folder, query)
            else:
                page = _paged(_matching(folder, query), query.view)
        except ItemError as error:
            _error_message(messages, error)
            continue
        message = response_message(messages, "FindItem")
        container = sub(sub(message, m("RootFolder"), **page.attributes), t("Items"))
        for item in page.items:
            render_item(container, _for_rendering(item, query.shape), query.shape, (folder.id, folder.change_key))
    return response
