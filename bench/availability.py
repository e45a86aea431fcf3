"""How long the schedule form's availability refresh takes, as a ratio to the raw exchangelib call, in one run.

    .venv/bin/python bench/availability.py [--attendees 1,50] [--rounds 30] [--auth ntlm|basic]

Against one sandbox process (`flask --app widget sandbox`, the organiser, 49 colleagues each with a busy block on
the day asked, and an address outside the organisation), for each number of attendees N:
1. the widget's refresh: GET /meetings/availability through the Flask test client, signed in as the organiser, for
   the organiser and N attendees over one day in 30-minute slots (the whole view: session, settings, the mailbox
   connection, ONE GetUserAvailability request for free/busy, the grid rendered);
2. the raw call: exchangelib's GetUserAvailability service for the same mailboxes, window, interval and view, its
   time zone fetched once beforehand (exchangelib's Protocol.get_free_busy_info would fetch it on every call).
The two alternate, after a warm-up; each row shows the median of `--rounds` of each, the ratio (target at most
1.3), and the requests the sandbox counted per refresh (GET /sandbox/stats before and after).

See bench/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

from sandbox_sync import EMAIL, PASSWORD, Server, print_table

COLLEAGUES = [f"colleague{n:02d}@contoso.com" for n in range(49)]
COLLEAGUE_PASSWORD = "Colleague-pw-1"
OUTSIDER = "lead@prospect.example"
TARGET_RATIO = 1.3
WARM_UP = 3


def bench_day() -> date:
    """A Monday ahead, so that Exchange suggests meeting times (it suggests none in the past)."""
    today = datetime.now(UTC).date()
    return today + timedelta(days=14 - today.weekday())


def attendees_for(count: int) -> list[str]:
    """`count` attendees: colleagues, and from two on the last one from outside the organisation."""
    if count <= 1:
        return COLLEAGUES[:count]
    return [*COLLEAGUES[:count - 1], OUTSIDER]


def busy_blocks(server: Server, day: date) -> None:
    """A busy hour in each colleague's calendar, made through exchangelib (not timed)."""
    from exchangelib import DELEGATE, NTLM, Account, CalendarItem, Configuration, Credentials, FailFast

    for number, email in enumerate(COLLEAGUES):
        config = Configuration(service_endpoint=server.url, credentials=Credentials(email, COLLEAGUE_PASSWORD),
                               auth_type=NTLM, retry_policy=FailFast())
        account = Account(email, config=config, autodiscover=False, access_type=DELEGATE)
        start = datetime.combine(day, clock(8 + number % 9), UTC)
        CalendarItem(account=account, folder=account.calendar, subject="Busy", start=start,
                     end=start + timedelta(hours=1)).save()


def widget_client(server: Server, instance: str, auth: str) -> Any:
    """The widget on a fresh SQLite database, pointed at the sandbox, and a test client signed in as the organiser."""
    from flask_migrate import upgrade

    from widget import MIGRATIONS, create_app, settings

    app = create_app({"INSTANCE_PATH": instance, "WIDGET_AUTO_MIGRATE": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        settings.save({"ews_url": server.url, "ews_auth": "NTLM" if auth == "ntlm" else "Basic"})
    client = app.test_client()
    page = client.get("/signin").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    reply = client.post("/signin", data={"email": EMAIL, "password": PASSWORD, "domain": "", "csrf_token": token})
    if reply.status_code != 302:
        raise RuntimeError(f"signing in to the widget failed: {reply.status_code}")
    return client


def widget_refresh(client: Any, day: date, attendees: list[str]) -> Callable[[], None]:
    """One refresh of the grid, as the schedule form asks for it (10:00-10:30 chosen)."""
    query = {"kind": "meeting", "start": f"{day}T10:00", "end": f"{day}T10:30", "attendee": attendees}

    def refresh() -> None:
        reply = client.get("/meetings/availability", query_string=query, headers={"HX-Request": "true"})
        if reply.status_code != 200 or "availability-grid" not in reply.get_data(as_text=True):
            raise RuntimeError(f"the widget's refresh failed: {reply.status_code}")

    return refresh


def raw_call(server: Server, day: date, attendees: list[str], auth: str) -> Callable[[], None]:
    """exchangelib's own GetUserAvailability for the organiser and the attendees over the same day."""
    from exchangelib import (
        BASIC,
        DELEGATE,
        NTLM,
        Account,
        Configuration,
        Credentials,
        EWSDateTime,
        EWSTimeZone,
        FailFast,
    )
    from exchangelib.properties import FreeBusyViewOptions, MailboxData, TimeWindow, TimeZone
    from exchangelib.services import GetUserAvailability

    config = Configuration(service_endpoint=server.url, credentials=Credentials(EMAIL, PASSWORD),
                           auth_type=NTLM if auth == "ntlm" else BASIC, retry_policy=FailFast())
    protocol = Account(EMAIL, config=config, autodiscover=False, access_type=DELEGATE).protocol
    zone = EWSTimeZone("UTC")
    start = EWSDateTime(day.year, day.month, day.day, tzinfo=zone)
    definition = list(protocol.get_timezones(timezones=[zone], return_full_timezone_data=True))[0]
    time_zone = TimeZone.from_server_timezone(tz_definition=definition, for_year=day.year)
    mailboxes = [MailboxData(email=email, attendee_type="Organizer" if email == EMAIL else "Required",
                             exclude_conflicts=False) for email in [EMAIL, *attendees]]
    options = FreeBusyViewOptions(time_window=TimeWindow(start=start, end=start + timedelta(days=1)),
                                  merged_free_busy_interval=30, requested_view="DetailedMerged")

    def call() -> None:
        views = list(GetUserAvailability(protocol).call(tzinfo=zone, mailbox_data=mailboxes, timezone=time_zone,
                                                        free_busy_view_options=options))
        if len(views) != len(mailboxes):
            raise RuntimeError("exchangelib's call returned the wrong number of views")

    return call


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(server: Server, widget: Callable[[], None], raw: Callable[[], None], rounds: int) -> dict[str, Any]:
    """Medians of the widget's refresh and the raw call, alternated, and the sandbox's counts per widget refresh."""
    for _ in range(WARM_UP):
        widget()
        raw()
    before = server.stats()
    widget_times = [timed(widget) for _ in range(rounds)]
    after = server.stats()
    raw_times = []
    for _ in range(rounds):
        raw_times.append(timed(raw))
        widget_times.append(timed(widget))
    operations = {name: count - before["operations"].get(name, 0) for name, count in after["operations"].items()}
    return {
        "widget": statistics.median(widget_times), "raw": statistics.median(raw_times),
        "availability_per_refresh": operations.get("GetUserAvailability", 0) / rounds,
        # The second stats request is counted in `after`.
        "requests_per_refresh": (after["http_requests"] - before["http_requests"] - 1) / rounds,
        "other_ops": {name: count for name, count in operations.items() if name != "GetUserAvailability" and count},
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attendees", default="1,50", help="numbers of attendees (comma-separated, at most 50)")
    parser.add_argument("--rounds", type=int, default=30, help="timed refreshes of each kind per row")
    parser.add_argument("--auth", choices=("ntlm", "basic"), default="ntlm")
    args = parser.parse_args(argv)
    counts = [int(number) for number in args.attendees.split(",")]
    if any(not 1 <= count <= len(COLLEAGUES) + 1 for count in counts):
        parser.error(f"--attendees takes numbers from 1 to {len(COLLEAGUES) + 1}")

    users = [arg for email in COLLEAGUES for arg in ("--user", f"{email}:{COLLEAGUE_PASSWORD}")]
    server = Server.start(0, args.auth, extra_args=users)
    rows = []
    try:
        day = bench_day()
        busy_blocks(server, day)
        with tempfile.TemporaryDirectory() as instance:
            client = widget_client(server, instance, args.auth)
            for count in counts:
                attendees = attendees_for(count)
                result = measure(server, widget_refresh(client, day, attendees), raw_call(server, day, attendees,
                                                                                            args.auth), args.rounds)
                rows.append({"attendees": count, **result})
    finally:
        server.stop()

    print(f"Availability of the organiser and N attendees over {day:%a %d %b %Y}, 30-minute slots; median of "
          f"{args.rounds} rounds each, auth {args.auth}\n")
    table = [("attendees", "widget ms", "raw exchangelib ms", "ratio", "GetUserAvailability/refresh",
              "HTTP requests/refresh")]
    for row in rows:
        table.append((str(row["attendees"]), f"{1000 * row['widget']:.1f}", f"{1000 * row['raw']:.1f}",
                      f"{row['widget'] / row['raw']:.2f}", f"{row['availability_per_refresh']:g}",
                      f"{row['requests_per_refresh']:g}"))
    print_table(table)
    for row in rows:
        if row["other_ops"]:
            print(f"other operations during the {row['attendees']}-attendee refreshes: {row['other_ops']}")
    worst = max(row["widget"] / row["raw"] for row in rows)
    print(f"\nTarget: ratio at most {TARGET_RATIO} — worst {worst:.2f}: {'met' if worst <= TARGET_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
