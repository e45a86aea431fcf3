"""How fast the widget's pages answer under load, against a trivial endpoint of the same app in the same run.

    .venv/bin/python bench/web_load.py [--database-url postgresql+psycopg://...] [--requests 1000] [--rounds 2]

1. A widget instance with a busy team's data (bench/web_dataset.py: 8 users, 10,000 CRM records, 50,000 synced
   emails with bodies and addresses, 1,000 calendar items, tasks, a week of sync history) in a file SQLite
   database (or a fresh schema of the PostgreSQL database given), and the Exchange sandbox in its own process
   (`flask --app widget sandbox`, with the demo organisation and the benchmark's users) as its Exchange server.
2. The widget served by gunicorn (gthread workers) on loopback, in its own processes.
3. 16 clients sign in through the real /signin (two sessions for each user, the password checked by the sandbox),
   then a separate process (bench/http_load.py) drives all 16 at once, keep-alive on: for each page, warm-up
   requests, then N requests; every round runs every page in turn, the floor (/healthz) included.
4. It prints requests per second, p50 and p99 latency, each page's throughput as a share of the floor's, the SQL
   statements one request of each page runs (counted in this process through the Flask test client), the server
   CPU per request, with the date, the machine and its load. `--explain` also prints each statement's query plan.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import quantiles
from typing import Any

from sandbox_sync import Server, print_table
from web_dataset import Dataset, Sizes, bench_users, generate

HERE = Path(__file__).resolve().parent
CLIENTS = 16
DATASET_FILE = "bench-dataset.json"
# Targets of issue 6: every page's p99, and the share of the floor's throughput the two busiest pages keep.
P99_TARGET_MS = 100
FLOOR_SHARE_TARGET = 0.4
FLOOR_SHARE_PAGES = ("dashboard", "Emails list")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- the machine ---------------------------------------------------------------------------------------------
def machine() -> str:
    """Cores and CPU model, from /proc/cpuinfo."""
    models = re.findall(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return f"{os.cpu_count()} cores, {models[0] if models else platform.processor() or 'unknown CPU'}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the database ----------------------------------------------------------------------------------------------
@contextmanager
def database(base_url: str | None, instance: Path, kept: Path | None) -> Iterator[str | None]:
    """None for SQLite in the instance folder; for PostgreSQL a URL whose search path is a schema of its own: a
    fresh one dropped afterwards, or with --instance (`kept`) one named after that folder and kept for the next
    run (the instance's dataset file is removed when the schema had to be made anew)."""
    if not base_url:
        yield None
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{hashlib.sha1(str(kept).encode()).hexdigest()[:10]}" if kept else f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url)
    with engine.begin() as connection:
        existed = connection.execute(text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :name"),
                                     {"name": schema}).first() is not None
        if not existed:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            (instance / DATASET_FILE).unlink(missing_ok=True)
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        if kept:
            print(f"Kept PostgreSQL schema {schema} for the next run with --instance {kept}")
        else:
            with engine.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def widget_environment(instance: Path, database_url: str | None) -> dict[str, str]:
    """The environment of every widget process of the benchmark: its instance folder and database, nothing else
    of WIDGET_* from the caller's environment."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WIDGET_")}
    env["WIDGET_INSTANCE_PATH"] = str(instance)
    if database_url:
        env["WIDGET_DATABASE_URL"] = database_url
    return env


def prepare(app: Any, instance: Path, sizes: Sizes, ews_url: str) -> Dataset:
    """Migrate, fill the database (or reuse what an earlier run with the same --instance left), point the widget
    at the sandbox."""
    from flask_migrate import upgrade

    from widget import MIGRATIONS, settings

    with app.app_context():
        upgrade(directory=str(MIGRATIONS))
        saved = instance / DATASET_FILE
        if saved.exists():
            dataset = Dataset.from_json(json.loads(saved.read_text()))
            print(f"Reusing the data in {instance}")
        else:
            started = time.perf_counter()
            dataset = generate(sizes)
            saved.write_text(json.dumps(dataset.to_json()))
            print(f"Generated the data in {time.perf_counter() - started:.1f} s")
        settings.save({"ews_url": ews_url, "ews_auth": "NTLM"})
    return dataset


# -- the servers ---------------------------------------------------------------------------------------------------
def start_sandbox(users: list[tuple[str, str]]) -> Server:
    """The Exchange sandbox in its own process: the demo organisation (people with calendars, for availability) and
    the benchmark's users."""
    extra = ["--seed", "demo"]
    for email, password in users:
        extra += ["--user", f"{email}:{password}"]
    return Server.start(0, "ntlm", extra_args=extra)


@dataclass
class Gunicorn:
    """The widget served by gunicorn on loopback."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], workers: int, threads: int, log: Path, timeout: float = 60) -> Gunicorn:
        """Start `gunicorn widget:create_app()` and wait until /healthz answers."""
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
             "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--keep-alive", "30",
             # Rate limits off: every client here shares one loopback address, which the limits key on.
             "--log-level", "warning", "widget:create_app({'RATELIMIT_ENABLED': False})"],
            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        server = cls(proc, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(server.url + "/healthz", timeout=5) as reply:
                    if reply.status == 200:
                        return server
            except OSError:
                time.sleep(0.2)
        server.stop()
        raise RuntimeError(f"gunicorn did not start:\n{log.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        """The worker processes (the master only supervises them)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children]

    def stop(self) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# -- the clients ---------------------------------------------------------------------------------------------------
def sign_in(url: str, email: str, password: str) -> str:
    """Authorize through /signin as a browser does (the CSRF token from the form); returns the Cookie header of the
    signed-in session, after a first look at the dashboard (which adds the session's CSRF token to it)."""
    import requests

    with requests.Session() as browser:
        form = browser.get(url + "/signin", timeout=30)
        token = _CSRF.search(form.text)
        if token is None:
            raise RuntimeError(f"no CSRF token on /signin ({form.status_code})")
        reply = browser.post(url + "/signin", data={"email": email, "password": password, "domain": "",
                                                    "csrf_token": token.group(1)}, allow_redirects=False, timeout=60)
        if reply.status_code != 302:
            raise RuntimeError(f"signing in {email} answered {reply.status_code}")
        browser.get(url + "/dashboard", timeout=30).raise_for_status()
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in browser.cookies)


@dataclass
class Page:
    """One page of the benchmark: a name and, per client, the paths it cycles through."""

    name: str
    paths: list[list[str]]


def availability_paths(app: Any, dataset: Dataset, index: int) -> list[str] | None:
    """The availability refresh as the schedule form asks for it (GET /meetings/availability), None where the
    widget has no such route: two colleagues with calendars (the sandbox's demo people) and the busiest contact
    (outside the organisation, so "unknown"), over the next five working days in turn, a different hour per client,
    as a user trying dates does."""
    if not any(rule.endpoint == "meetings.availability" for rule in app.url_map.iter_rules()):
        return None
    from urllib.parse import urlencode

    from widget.sandbox.seed import DEMO_ACCOUNTS

    colleagues = [DEMO_ACCOUNTS[(index + k) % len(DEMO_ACCOUNTS)].email for k in (0, 1)]
    contact = dataset.busiest_contact_address
    day, paths = datetime.now(UTC).date(), []
    while len(paths) < 5:
        day += timedelta(days=1)
        if day.weekday() >= 5:
            continue
        start = f"{day.isoformat()}T{9 + index % 8:02d}:00"
        end = f"{day.isoformat()}T{9 + index % 8:02d}:30"
        query = [("kind", "meeting"), ("subject", "Quarterly business review"), ("start", start), ("end", end),
                 ("reminder", "on"), ("reminder_minutes", "15")]
        query += [("attendee", address) for address in (*colleagues, contact)]
        paths.append("/meetings/availability?" + urlencode(query))
    return paths


def pages(app: Any, dataset: Dataset, clients: list[str]) -> tuple[list[Page], list[str]]:
    """The pages measured, in order (the floor first), and notes on any left out."""
    contact = dataset.busiest_contact
    notes = []
    result = [
        Page("floor (/healthz)", [["/healthz"] for _ in clients]),
        Page("dashboard", [["/dashboard"] for _ in clients]),
        Page("Emails list", [[f"/crm/Contacts/{contact}/emails"] for _ in clients]),
        Page("Emails list (account)", [[f"/crm/Accounts/{dataset.busiest_account}/emails"] for _ in clients]),
        Page("email", [[f"/emails/{i}?module=Contacts&record={contact}" for i in dataset.emails_to_open[user]]
                       for user in clients]),
        Page("email body", [[f"/emails/{i}/body" for i in dataset.emails_to_open[user]] for user in clients]),
    ]
    availability = [availability_paths(app, dataset, index) for index in range(len(clients))]
    if all(paths is not None for paths in availability):
        result.append(Page("availability", availability))  # type: ignore[arg-type]
    else:
        notes.append("availability refresh: /meetings/availability does not exist yet (issue 5), not measured")
    return result, notes


# -- SQL per request -----------------------------------------------------------------------------------------------
def statements_per_request(app: Any, cookie: str, paths: dict[str, str], explain: bool) -> dict[str, int]:
    """How many SQL statements one request of each page runs (the second of two, so that nothing is first-time),
    through the Flask test client with the session of a signed-in client; with `explain`, print each statement
    and its query plan."""
    from sqlalchemy import event, text

    from widget.extensions import db

    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    client = app.test_client()
    for part in cookie.split("; "):
        name, _, value = part.partition("=")
        client.set_cookie(name, value)
    event.listen(engine, "before_cursor_execute", record)
    try:
        for name, path in paths.items():
            client.get(path)
            seen.clear()
            reply = client.get(path)
            counts[name] = len(seen)
            if reply.status_code != 200:
                print(f"warning: {path} answered {reply.status_code} through the test client")
            if explain:
                captured = list(seen)
                print(f"\n== {name}: {path} ({len(captured)} statements)")
                with app.app_context():
                    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
                    for statement, parameters in captured:
                        print("\n" + " ".join(statement.split()))
                        plan = db.session.connection().exec_driver_sql(prefix + statement, parameters).all()
                        for row in plan:
                            print("   ", " | ".join(str(cell) for cell in row[-1:]))
                    db.session.execute(text("SELECT 1"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return counts


# -- the report ----------------------------------------------------------------------------------------------------
def percentile_ms(latencies: list[float], share: float) -> float:
    """The latency below which `share` of the requests answered, in milliseconds."""
    if len(latencies) < 2:
        return 1000 * (latencies[0] if latencies else 0.0)
    return 1000 * quantiles(latencies, n=1000, method="inclusive")[round(share * 1000) - 1]


def report(results: dict[str, Any], measured: list[Page], statements: dict[str, int],
           say: Callable[[str], None] = print) -> bool:
    """Print the table and the targets; True when every target is met."""
    rows = {}
    for page in measured:
        r = results["pages"][page.name]
        rows[page.name] = {"n": len(r["latencies"]), "rps": len(r["latencies"]) / r["seconds"],
                           "p50": percentile_ms(r["latencies"], 0.5), "p99": percentile_ms(r["latencies"], 0.99),
                           "statuses": r["statuses"], "bytes": r["bytes"] / max(1, len(r["latencies"])),
                           "server_ms": 1000 * r["server_cpu"] / max(1, len(r["latencies"])),
                           "exchange_ms": 1000 * r["exchange_cpu"] / max(1, len(r["latencies"])),
                           "client_share": r["client_cpu"] / r["seconds"]}
    floor = rows[measured[0].name]["rps"]
    table = [("page", "requests", "req/s", "p50 ms", "p99 ms", "× floor", "SQL/req", "widget CPU ms/req",
              "Exchange CPU ms/req", "KB/resp", "statuses")]
    for page in measured:
        row = rows[page.name]
        table.append((page.name, f"{row['n']:,}", f"{row['rps']:,.0f}", f"{row['p50']:.1f}", f"{row['p99']:.1f}",
                      f"{row['rps'] / floor:.2f}", str(statements.get(page.name, "?")), f"{row['server_ms']:.1f}",
                      f"{row['exchange_ms']:.1f}", f"{row['bytes'] / 1024:.1f}",
                      " ".join(f"{code}×{count}" for code, count in sorted(row["statuses"].items()))))
    print_table(table)
    client = max(row["client_share"] for row in rows.values())
    say(f"\nThe load generator used at most {100 * client:.0f}% of one core; reconnects: {results['reconnects']}.")
    met = True
    for page in measured:
        row = rows[page.name]
        if any(int(code) != 200 for code in row["statuses"]):
            say(f"MISSED: {page.name} answered something other than 200")
            met = False
        if page is not measured[0] and row["p99"] >= P99_TARGET_MS:
            say(f"MISSED: {page.name} p99 {row['p99']:.1f} ms (target < {P99_TARGET_MS} ms)")
            met = False
        if page.name in FLOOR_SHARE_PAGES and row["rps"] / floor < FLOOR_SHARE_TARGET:
            say(f"MISSED: {page.name} at {row['rps'] / floor:.2f} of the floor (target ≥ {FLOOR_SHARE_TARGET})")
            met = False
    say("Targets met: p99 < 100 ms on every page, dashboard and Emails list ≥ 0.4 of the floor." if met else
        "Targets missed (above).")
    return met


# -- the run -------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """Prepare, serve, sign in, drive, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL URL (a fresh schema is made in it); default: SQLite")
    parser.add_argument("--instance", type=Path,
                        help="keep the instance folder (and the PostgreSQL schema) and reuse their data on the next "
                             "run (default: temporary)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--warmup", type=int, default=200, help="requests per page before measuring")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per page and round")
    parser.add_argument("--rounds", type=int, default=2, help="times every page is measured, in turn")
    parser.add_argument("--emails", type=int, default=Sizes.emails, help="stored emails")
    parser.add_argument("--explain", action="store_true", help="print every statement's query plan")
    args = parser.parse_args(argv)
    sizes = Sizes(emails=args.emails)

    started_at = datetime.now(UTC)
    load_before = load_average()
    temporary = None if args.instance else Path(tempfile.mkdtemp(prefix="widget-web-bench-"))
    instance = (args.instance or temporary / "instance").resolve()  # type: ignore[operator]
    instance.mkdir(parents=True, exist_ok=True)
    users = [(email, password) for email, password, _ in bench_users(sizes.users)]
    sandbox = start_sandbox(users)
    widget = None
    try:
        with database(args.database_url, instance, args.instance) as database_url:
            env = widget_environment(instance, database_url)
            for key in [key for key in os.environ if key.startswith("WIDGET_")]:
                del os.environ[key]
            os.environ.update({key: value for key, value in env.items() if key.startswith("WIDGET_")})
            from widget import create_app

            app = create_app({"WIDGET_AUTO_MIGRATE": False})
            dataset = prepare(app, instance, sizes, sandbox.url)
            with app.app_context():
                from widget.extensions import db

                backend = f"{db.engine.dialect.name} {'.'.join(map(str, db.engine.dialect.server_version_info))}"
            widget = Gunicorn.start(env, args.workers, args.threads, instance / "gunicorn.log")
            clients = [users[i % len(users)][0] for i in range(CLIENTS)]
            passwords = dict(users)
            cookies = [sign_in(widget.url, email, passwords[email]) for email in clients]
            measured, notes = pages(app, dataset, clients)
            statements = statements_per_request(app, cookies[0], {p.name: p.paths[0][0] for p in measured},
                                                args.explain)
            spec = {"host": "127.0.0.1", "port": int(widget.url.rsplit(":", 1)[1]), "warmup": args.warmup,
                    "requests": args.requests, "rounds": args.rounds, "server_pids": widget.worker_pids(),
                    "exchange_pids": [sandbox.proc.pid],
                    "clients": [{"cookie": cookie} for cookie in cookies],
                    "pages": [{"name": p.name, "paths": p.paths} for p in measured]}
            spec_file = instance / "load-spec.json"
            spec_file.write_text(json.dumps(spec))
            driven = subprocess.run([sys.executable, str(HERE / "http_load.py"), str(spec_file)], capture_output=True,
                                    text=True, check=True)
            results = json.loads(driven.stdout)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        if widget is not None:
            widget.stop()
        sandbox.stop()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)

    print(f"\nWeb speed under load — {started_at:%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {machine()}; load average before {load_before}, after {load_average()} (1/5/15 min)")
    print(f"Server: gunicorn {args.workers} workers × {args.threads} threads (gthread), {backend}, "
          f"Python {platform.python_version()}")
    print("Data: " + ", ".join(f"{count:,} {name}" for name, count in dataset.counts.items()))
    print(f"Load: {CLIENTS} signed-in clients ({len(users)} users, keep-alive), {args.warmup} warm-up and "
          f"{args.requests:,} measured requests per page in each of {args.rounds} rounds\n")
    met = report(results, measured, statements)
    for note in notes:
        print(f"Not measured: {note}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
