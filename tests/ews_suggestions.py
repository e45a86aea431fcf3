"""Meeting suggestions of GetUserAvailability, for the sandbox's tests: the widget itself finds the times that suit
everyone in the free/busy (widget/views/availability_grid.py), so asking Exchange for its suggestions lives here.

`suggested(protocol, attendees, start, end, meeting_minutes=60)` sends the widget's one-request GetUserAvailability
with SuggestionsViewOptions added, and reads the SuggestionsResponse that exchangelib leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from exchangelib.util import MNS, TNS, add_xml_child, create_element

from widget.exchange.ews.availability import (
    Availability,
    AvailabilityService,
    flag_of,
    get_availability,
    local_time,
    text_of,
    wall_text,
    window_element,
)


class Suggestion(NamedTuple):
    """A suggested meeting time and how good Exchange finds it."""

    start: datetime
    end: datetime
    quality: str
    is_work_time: bool


@dataclass(frozen=True)
class Suggested:
    """The free/busy answer with Exchange's suggested times (day by day, the best first within a day)."""

    availability: Availability
    suggestions: list[Suggestion] = field(default_factory=list)
    suggestions_error: str | None = None

    @property
    def attendees(self) -> list[Any]:
        """Per attendee, their availability."""
        return self.availability.attendees


class _SuggestingService(AvailabilityService):
    def __init__(self, protocol: Any, zone: Any, options: dict[str, Any]):
        super().__init__(protocol, zone)
        self.options = options
        self.suggestions_response: Any = None

    def more_options(self, payload: Any) -> None:
        wanted = create_element("t:SuggestionsViewOptions")
        for name in ("GoodThreshold", "MaximumResultsByDay", "MaximumNonWorkHourResultsByDay",
                     "MeetingDurationInMinutes", "MinimumSuggestionQuality"):
            add_xml_child(wanted, f"t:{name}", self.options[name])
        wanted.append(window_element("t:DetailedSuggestionsWindow", self.options["DetailedSuggestionsWindow"]))
        payload.append(wanted)

    def _get_soap_messages(self, body: Any) -> Any:
        response = body.find(self._response_tag())
        if response is not None:
            self.suggestions_response = response.find(f"{{{MNS}}}SuggestionsResponse")
        return super()._get_soap_messages(body=body)


def suggested(protocol: Any, attendees: Sequence[str], start: datetime, end: datetime, *, meeting_minutes: int,
              organizer: str | None = None) -> Suggested:
    """Free/busy and the suggested meeting times within [start, end) (Exchange suggests for whole days)."""
    zone = start.tzinfo
    end = end.astimezone(zone)
    first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    last_day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if last_day < end:
        last_day = (last_day.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    service = _SuggestingService(protocol, zone, {
        "GoodThreshold": 25, "MaximumResultsByDay": 48, "MaximumNonWorkHourResultsByDay": 0,
        "MeetingDurationInMinutes": meeting_minutes, "MinimumSuggestionQuality": "Fair",
        "DetailedSuggestionsWindow": (wall_text(first_day), wall_text(last_day)),
    })
    answer = get_availability(protocol, attendees, start, end, organizer=organizer, service=service)
    response = service.suggestions_response
    if response is None:
        return Suggested(answer)
    message = response.find(f"{{{MNS}}}ResponseMessage")
    if message is not None and message.get("ResponseClass") == "Error":
        code = message.findtext(f"{{{MNS}}}ResponseCode") or "ErrorMeetingSuggestionGenerationFailed"
        return Suggested(answer, [], code)
    found = []
    path = (f"{{{MNS}}}SuggestionDayResultArray/{{{TNS}}}SuggestionDayResult/{{{TNS}}}SuggestionArray/"
            f"{{{TNS}}}Suggestion")
    for elem in response.iterfind(path):
        begin = local_time(text_of(elem, "MeetingTime"), zone)
        finish = (begin.astimezone(UTC) + timedelta(minutes=meeting_minutes)).astimezone(zone)
        if begin < start or finish > end:  # Exchange suggests for whole days: keep what fits in the window
            continue
        found.append(Suggestion(begin, finish, text_of(elem, "SuggestionQuality") or "Poor",
                                flag_of(elem, "IsWorkTime")))
    return Suggested(answer, found)
