"""How the widget's email sync of a large folder compares with the raw exchangelib page loop, in one run.

    .venv/bin/python bench/email_sync.py [--sizes 10000,50000] [--database-url postgresql+psycopg://...]
                                         [--match-share 0.25] [--profile]

For each folder size N, against one sandbox process seeded with N messages in the inbox:
1. the raw SyncFolderItems page loop of bench/sandbox_sync.py (the baseline), before and after the widget's runs,
   and the same loop asking for the widget's summary fields;
2. the widget's first sync (widget.sync.runner.run_sync, email only) into a real database, then a sync with
   nothing new, once under the privacy default (only mail that matches the CRM directory is stored) and once
   storing every message; each in its own process, so that each peak memory is its own;
3. opening 20 of the stored emails whose body the sync left for later, one at a time (one GetItem each), timed
   against opening 20 whose body it fetched.
Prints a table (time, messages/s, ratio to the raw loop, requests by operation, CPU, peak memory) and, per
target of issue 4, the measured value and whether it is met.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sandbox_sync import (
    EMAIL,
    PASSWORD,
    Server,
    cpu_seconds,
    megabytes,
    peak_kb,
    print_table,
    reset_peak,
    sandbox_stats,
    sync_inbox,
)

PAGE = 512  # SyncFolderItems' MaxChangesReturned, the widget's and the raw loop's
FOLDER = "inbox"
# The seeded mail spans a year; a first sync with the default 30-day window would only look at a twelfth of it.
HISTORY_DAYS = 400
# A CRM directory also holds many people who never write to this mailbox.
DIRECTORY_BYSTANDERS = 5_000
# Targets of issue 4: requests per folder, throughput against the raw loop, requests of a sync with no change.
EXTRA_REQUESTS = 3
MIN_RATIO = 0.7
NO_CHANGE_REQUESTS = 1


def rss_kb() -> int:
    """VmRSS (resident memory now) of this process, in KiB."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


# -- the CRM directory -----------------------------------------------------------------------------------------
def directory_addresses(match_share: float) -> list[tuple[str, str]]:
    """(address, name) of the CRM's contacts: the demo's CRM people, as many of the bulk mail's other senders as
    make about `match_share` of the mail match, and bystanders who never write.

    widget.sandbox.seed.seed_messages picks each message's sender uniformly from the demo's CRM people and
    3,000 senders `sender{i}@company{i % 400}.example`; the share that really matched is measured, not assumed.
    """
    from widget.sandbox.seed import DEMO_CRM_PEOPLE

    senders = len(DEMO_CRM_PEOPLE) + 3000
    others = max(0, min(3000, round(match_share * senders) - len(DEMO_CRM_PEOPLE)))
    people = [(p.email, p.name) for p in DEMO_CRM_PEOPLE]
    people += [(f"sender{i}@company{i % 400}.example", f"Sender {i}") for i in range(others)]
    people += [(f"contact{i}@prospect{i % 900}.example", f"Contact {i}") for i in range(DIRECTORY_BYSTANDERS)]
    return people


def import_directory(match_share: float) -> int:
    """Put the CRM directory in through the widget's own import path (upsert_records); returns its size."""
    from widget.crm.directory import RecordInput, upsert_records
    from widget.extensions import db

    rows = [RecordInput(module="Contacts" if i % 3 else "Leads", crm_id=f"B-{i}", name=name, emails=(address,))
            for i, (address, name) in enumerate(directory_addresses(match_share))]
    upsert_records(rows)
    db.session.commit()
    return len(rows)


# -- the widget's sync, in a child process ----------------------------------------------------------------------
def widget_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Set up a widget (database, settings, CRM directory, the user), then time a first sync and a sync with no
    change, each with the requests the sandbox counted for it."""
    from flask_migrate import upgrade

    from widget import MIGRATIONS, create_app, settings
    from widget.extensions import db
    from widget.models import Email, User
    from widget.secret_box import encrypt
    from widget.sync.runner import run_sync

    # The widget loads its mailbox adapter when it first connects (exchangelib is slow to import): load it here,
    # before anything is timed, as a running deployment has long done by the time it syncs a mailbox.
    importlib.import_module("widget.exchange.ews.adapter")
    app = create_app({"INSTANCE_PATH": spec["instance"], "WIDGET_AUTO_MIGRATE": False})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        settings.save({"ews_url": spec["ews_url"], "ews_auth": "NTLM", "sync_folders": [FOLDER],
                       "sync_history_days": HISTORY_DAYS, "store_unmatched_email": spec["store_all"],
                       "sync_calendar": "off", "sync_tasks": "off"})  # the email sync alone
        directory = import_directory(spec["match_share"])
        db.session.add(User(email=EMAIL, exchange_username=EMAIL, exchange_password=encrypt(PASSWORD),
                            status="authorized"))
        db.session.commit()
        user_id = db.session.scalar(db.select(User.id).where(User.email == EMAIL))
        database = db.engine.url.get_backend_name()

    passes = []
    for name in ("first sync", "no change"):
        with app.app_context():
            user = db.session.get(User, user_id)
            exact_peak, start_kb = reset_peak(), rss_kb()
            before = sandbox_stats(spec["control"])
            server_cpu, client_cpu = cpu_seconds(spec["server_pid"]), time.process_time()
            profiler = _profiler() if spec["profile"] and name == "first sync" else None
            started = time.perf_counter()
            run = run_sync(user)
            seconds = time.perf_counter() - started
            if profiler:
                profiler.disable()
            server_cpu, client_cpu = cpu_seconds(spec["server_pid"]) - server_cpu, time.process_time() - client_cpu
            client_kb = peak_kb()
            after = sandbox_stats(spec["control"])
            if run.outcome != "ok":
                raise RuntimeError(f"the widget's sync failed: {run.outcome}: {run.error}")
            operations = {op: count - before["operations"].get(op, 0) for op, count in after["operations"].items()}
            passes.append({
                "name": name, "seconds": seconds, "created": run.created,
                "stored": db.session.scalar(db.select(db.func.count()).select_from(Email)),
                "operations": {op: count for op, count in operations.items() if count},
                "http_requests": after["http_requests"] - before["http_requests"] - 1,  # less the 2nd stats call
                "client_cpu": client_cpu, "server_cpu": server_cpu, "client_kb": client_kb, "start_kb": start_kb,
                "exact_peak": exact_peak,
            })
            if profiler:
                _print_profile(profiler, spec["label"])
            db.session.remove()
    with app.app_context():
        client = _signed_in_client(app)
        opening = {"fetched": _open_emails(client, user_id, True),
                   "left for later": _open_emails(client, user_id, False)}
        db.engine.dispose()
    return {"directory": directory, "database": database, "passes": passes, "opening": opening}


def _signed_in_client(app: Any) -> Any:
    """A test client of the app signed in through /signin, as a browser is (the password checked by the sandbox)."""
    client = app.test_client()
    form = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    reply = client.post("/signin", data={"email": EMAIL, "password": PASSWORD, "domain": "",
                                         "csrf_token": token.group(1) if token else ""})
    if reply.status_code != 302:
        raise RuntimeError(f"signing in answered {reply.status_code}")
    return client


def _open_emails(client: Any, user_id: int, body_fetched: bool, count: int = 20) -> list[float]:
    """Milliseconds to open each of `count` stored emails through the widget's page (GET /emails/<id>), signed in
    as their owner; those whose body the sync fetched, or those whose body it left for opening."""
    from widget.extensions import db
    from widget.models import Email

    ids = db.session.scalars(db.select(Email.id).where(Email.user_id == user_id, Email.body_fetched.is_(body_fetched))
                             .order_by(Email.id).limit(count)).all()
    times = []
    for email_id in ids:
        started = time.perf_counter()
        reply = client.get(f"/emails/{email_id}")
        times.append((time.perf_counter() - started) * 1000)
        if reply.status_code != 200 or b'id="body-problem"' in reply.data:
            raise RuntimeError(f"opening email {email_id} failed: {reply.status_code}")
    db.session.remove()
    return times


def _profiler() -> Any:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _print_profile(profiler: Any, label: str) -> None:
    """The 30 most expensive functions by cumulative time, to stderr (the table goes to stdout)."""
    import pstats

    print(f"\n== profile of the widget's first sync, {label} ==", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)


def run_widget(server: Server, n: int, store_all: bool, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The widget's first and no-change sync in a child process with its own fresh database."""
    label = f"{n:,} messages, {'every message stored' if store_all else 'privacy default'}"
    instance = workdir / f"instance-{n}-{'all' if store_all else 'matched'}"
    instance.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
    schema = None
    if args.database_url:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        _postgres_schema(args.database_url, f'CREATE SCHEMA "{schema}"')
        separator = "&" if "?" in args.database_url else "?"
        env["WIDGET_DATABASE_URL"] = f"{args.database_url}{separator}options=-csearch_path%3D{schema}"
    spec = {"instance": str(instance), "ews_url": server.url, "control": server.control,
            "server_pid": server.proc.pid, "store_all": store_all, "match_share": args.match_share,
            "profile": args.profile, "label": label}
    try:
        child = subprocess.run([sys.executable, __file__, "--widget-child", json.dumps(spec)], env=env,
                               stdout=subprocess.PIPE, text=True, check=True)
    finally:
        if schema:
            _postgres_schema(args.database_url, f'DROP SCHEMA "{schema}" CASCADE')
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["store_all"] = store_all
    return result


def _postgres_schema(url: str, statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(statement))
    engine.dispose()


def run_raw(server: Server, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The raw page loop in this process (with the sandbox issue's fields unless others are given), on exchangelib's
    own HTTP adapter: the widget's (answers bounded in time and size, handed to the parser a megabyte at a time) is
    exchangelib's adapter class once the widget has connected, and would speed the baseline up too."""
    import requests.adapters
    from exchangelib.protocol import BaseProtocol

    widgets_adapter, BaseProtocol.HTTP_ADAPTER_CLS = BaseProtocol.HTTP_ADAPTER_CLS, requests.adapters.HTTPAdapter
    try:
        exact_peak, start_kb = reset_peak(), rss_kb()
        result = sync_inbox(server, "ntlm", PAGE, fields) if fields else sync_inbox(server, "ntlm", PAGE)
        result.update(client_kb=peak_kb(), start_kb=start_kb, exact_peak=exact_peak)
    finally:
        BaseProtocol.HTTP_ADAPTER_CLS = widgets_adapter
    return result


# -- the table --------------------------------------------------------------------------------------------------
def _requests(operations: dict[str, int]) -> int:
    return sum(operations.values())


def _cpu(run: dict[str, Any]) -> float:
    return run["client_cpu"] + run["server_cpu"]


class Baseline:
    """The raw loop's throughput, by the clock and by CPU: the mean of its runs before and after the widget's."""

    def __init__(self, n: int, runs: list[dict[str, Any]]):
        self.per_second = sum(n / r["seconds"] for r in runs) / len(runs)
        self.cpu_per_message = sum(_cpu(r) for r in runs) / len(runs) / n

    def ratio(self, n: int, run: dict[str, Any]) -> float:
        """Messages per second of a run as a share of the raw loop's."""
        return n / run["seconds"] / self.per_second

    def cpu_ratio(self, n: int, run: dict[str, Any]) -> float:
        """The raw loop's CPU per message as a share of a run's (client and sandbox; not a database server's)."""
        return self.cpu_per_message * n / max(_cpu(run), 1e-9)


def _memory(run: dict[str, Any]) -> str:
    return (f"{megabytes(run['client_kb'])} (from {megabytes(run['start_kb'])})"
            + ("" if run["exact_peak"] else " *"))


def rows_for(n: int, raws: dict[str, dict[str, Any]], widgets: list[dict[str, Any]], server_kb: int,
             baseline: Baseline) -> list[tuple[str, ...]]:
    """The table's rows for one folder size."""
    pages = math.ceil(n / PAGE)
    runs: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
        (label, "", r, {"SyncFolderItems": r["sync_ops"]}) for label, r in raws.items()]
    for widget in widgets:
        mode = "all stored" if widget["store_all"] else "privacy default"
        runs += [(f"widget {p['name']}, {mode}", f"{p['stored']:,}", p, p["operations"]) for p in widget["passes"]]
    rows = []
    for label, stored, r, ops in runs:
        sync_ops, bodies = ops.get("SyncFolderItems", 0), ops.get("GetItem", 0)
        # A sync with nothing new moves no messages: a rate would mean nothing.
        rates = ("", "", "") if "no change" in label else (
            f"{n / r['seconds']:,.0f}", f"{baseline.ratio(n, r):.2f}", f"{baseline.cpu_ratio(n, r):.2f}")
        rows.append((f"{n:,}", label, stored, f"{r['seconds']:.2f}", *rates, f"{sync_ops} / {pages}",
                     f"{bodies}", f"{_requests(ops) - sync_ops - bodies}", f"{_requests(ops)}",
                     f"{r.get('http_requests', r.get('requests'))}", f"{r['client_cpu']:.2f}",
                     f"{r['server_cpu']:.2f}", _memory(r), megabytes(server_kb)))
    return rows


def verdicts(n: int, widgets: list[dict[str, Any]], baseline: Baseline) -> list[str]:
    """One line per widget run: each target of issue 4 with the measured value, met or missed."""
    limit = math.ceil(n / PAGE) + EXTRA_REQUESTS
    lines = []
    for widget in widgets:
        first, again = widget["passes"]
        mode = "every message stored" if widget["store_all"] else "privacy default"
        requests, ratio, no_change = _requests(first["operations"]), baseline.ratio(n, first), \
            _requests(again["operations"])
        lines.append(
            f"{n:,} messages, {mode} ({first['stored']:,} stored = {first['stored'] / n:.0%}):\n"
            f"  first sync {requests} requests {_operations(first['operations'])}, target <= {limit}: "
            f"{_met(requests <= limit)}\n"
            f"  first sync {ratio:.2f} of the raw loop's messages/s (by CPU {baseline.cpu_ratio(n, first):.2f}), "
            f"target >= {MIN_RATIO}: {_met(ratio >= MIN_RATIO)}\n"
            f"  no-change sync {no_change} requests {_operations(again['operations'])}, target "
            f"{NO_CHANGE_REQUESTS}: {_met(no_change <= NO_CHANGE_REQUESTS)}\n"
            f"  opening an email (median / slowest of {len(widget['opening']['fetched'])}): body fetched by the sync "
            f"{_milliseconds(widget['opening']['fetched'])}, body left for opening "
            f"{_milliseconds(widget['opening']['left for later'])}")
    return lines


def _milliseconds(times: list[float]) -> str:
    return f"{statistics.median(times):.0f} / {max(times):.0f} ms" if times else "none"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _operations(operations: dict[str, int]) -> str:
    return "(" + ", ".join(f"{op} {count}" for op, count in sorted(operations.items())) + ")"


def _load() -> str:
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="folder sizes to sync (comma-separated)")
    parser.add_argument("--database-url", help="a PostgreSQL URL (each run gets a fresh schema in it); "
                                               "default: a SQLite file in a temporary instance folder")
    parser.add_argument("--match-share", type=float, default=0.25,
                        help="about which share of the mail comes from people in the CRM directory")
    parser.add_argument("--profile", action="store_true",
                        help="profile each widget first sync with cProfile (to stderr; slows it down)")
    parser.add_argument("--widget-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.widget_child:
        print(json.dumps(widget_child(json.loads(args.widget_child))))
        return

    from widget.exchange.ews.mailbox import BODY_BATCH, SUMMARY_FIELDS

    table: list[tuple[str, ...]] = [(
        "messages", "run", "stored", "s", "msg/s", "vs raw", "vs raw CPU", f"SyncFolderItems / ⌈N/{PAGE}⌉",
        "GetItem", "other", "EWS requests", "HTTP", "client CPU s", "server CPU s", "client peak", "server peak")]
    lines, loads, database, directory = [], [], "", 0
    with tempfile.TemporaryDirectory(prefix="email-sync-bench-") as work:
        for n in (int(size) for size in args.sizes.split(",")):
            load_before = _load()
            server = Server.start(n, "ntlm")
            try:
                raws = {"raw loop (before)": run_raw(server),
                        "raw loop, widget's fields": run_raw(server, SUMMARY_FIELDS)}
                widgets = [run_widget(server, n, store_all, args, Path(work)) for store_all in (False, True)]
                raws["raw loop (after)"] = run_raw(server)
                server_kb = peak_kb(server.proc.pid)
            finally:
                server.stop()
            loads.append(f"{n:,} messages: load average {load_before} before, {_load()} after")
            baseline = Baseline(n, [raws["raw loop (before)"], raws["raw loop (after)"]])
            database, directory = widgets[0]["database"], widgets[0]["directory"]
            table.extend(rows_for(n, raws, widgets, server_kb, baseline))
            lines.extend(verdicts(n, widgets, baseline))
    print(f"Database: {database}; CRM directory: {directory:,} contacts and leads; one folder ({FOLDER}); history "
          f"window {HISTORY_DAYS} days (the seeded mail spans 365); NTLM; page {PAGE}; bodies in GetItem batches "
          f"of {BODY_BATCH} (after the pages, the folder's newest; any other when opened); {os.cpu_count()} CPUs")
    print("\n".join(loads) + "\n")
    print_table(table)
    if any("*" in row[-2] for row in table[1:]):
        print("* peak since the process started (clear_refs not allowed here)")
    print("\nvs raw: messages/s as a share of the raw loop's (the mean of its runs before and after the widget's); "
          "vs raw CPU: the same by CPU seconds per message (client and sandbox), which the machine's load "
          "disturbs less.\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
