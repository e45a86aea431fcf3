"""How fast a raw exchangelib sync of a large inbox runs against the Exchange sandbox.

    .venv/bin/python bench/sandbox_sync.py [--sizes 10000,100000] [--auth ntlm|basic] [--page 512]

Measures, and prints as a table:
1. seeding 100,000 messages into one inbox (widget.sandbox.seed.seed_messages), in a child process;
2. for each size N: the sandbox started as its own process (`flask --app widget sandbox --messages N --port 0`),
   then, in this process, SyncFolderItems on the inbox page by page (IdOnly plus subject, datetime_received,
   sender and is_read) until IncludesLastItemInRange: seconds, HTTP requests and operations the sandbox counted
   (GET /sandbox/stats), pages, items, and the peak memory (VmHWM) of both processes.

See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EMAIL, PASSWORD = "bench@contoso.com", "Bench-pw-1"
FIELDS = ("subject", "datetime_received", "sender", "is_read")
SEED_SIZE = 100_000


def peak_kb(pid: int | str = "self") -> int:
    """VmHWM (peak resident memory) of a process, in KiB."""
    match = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux clear_refs); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_seeding(n: int) -> dict[str, float]:
    """Seed n messages into a fresh store (run in a child process, so that its memory is its own)."""
    from widget.sandbox import Store
    from widget.sandbox.seed import seed_messages

    store = Store()
    store.add_user(EMAIL, PASSWORD)
    started = time.perf_counter()
    seed_messages(store, EMAIL, n)
    return {"seconds": time.perf_counter() - started, "peak_kb": peak_kb(), "items": len(store.items)}


def sandbox_stats(control: str) -> dict[str, Any]:
    """GET /sandbox/stats of the sandbox whose control API is at `control` (ends with a slash)."""
    with urllib.request.urlopen(control + "stats", timeout=30) as reply:
        return json.loads(reply.read())


@dataclass
class Server:
    """The sandbox in its own process, with what its banner said."""

    proc: subprocess.Popen[str]
    url: str
    control: str
    startup: float
    banner: dict[str, str]  # every "Label: value" line of the banner

    @classmethod
    def start(cls, n: int, auth: str, timeout: float = 300, extra_args: Sequence[str] = ()) -> Server:
        """Start `flask --app widget sandbox` with n messages (and any other options) and wait for its banner."""
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "widget", "sandbox", "--port", "0", "--messages", str(n),
             "--user", f"{EMAIL}:{PASSWORD}", "--auth", auth, *extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        url = control = ""
        banner: dict[str, str] = {}
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            label, _, value = line.partition(": ")
            banner.setdefault(label, value)
            if line.startswith("EWS URL: "):
                url = line.removeprefix("EWS URL: ")
            elif line.startswith("Control API: "):
                control = line.removeprefix("Control API: ")
            elif line == "Press Ctrl-C to stop.":
                break
            if time.monotonic() > deadline:
                break
        if not url or not control:
            proc.kill()
            raise RuntimeError(f"the sandbox did not start: {proc.stdout.read()}")
        return cls(proc, url, control, time.perf_counter() - started, banner)

    def stats(self) -> dict[str, Any]:
        """GET /sandbox/stats."""
        return sandbox_stats(self.control)

    def stop(self) -> None:
        """Ctrl-C, then SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()


def sync_inbox(server: Server, auth: str, page: int, fields: Sequence[str] = FIELDS) -> dict[str, Any]:
    """A raw exchangelib sync of the inbox, page by page, until IncludesLastItemInRange, with the requests the
    sandbox counted for it (sign-in and GetFolder happen before, and are not counted)."""
    from exchangelib import BASIC, DELEGATE, NTLM, Account, Configuration, Credentials, FailFast, Message
    from exchangelib.fields import FieldPath
    from exchangelib.protocol import close_connections
    from exchangelib.services import SyncFolderItems

    config = Configuration(service_endpoint=server.url, credentials=Credentials(EMAIL, PASSWORD),
                           auth_type=NTLM if auth == "ntlm" else BASIC, retry_policy=FailFast())
    account = Account(EMAIL, config=config, autodiscover=False, access_type=DELEGATE)
    inbox = account.inbox  # GetFolder happens here, outside the timed part
    field_paths = [FieldPath(field=Message.get_field_by_fieldname(name)) for name in fields]
    sync_state, pages, items, done = None, 0, 0, False
    before = server.stats()
    server_cpu, client_cpu = cpu_seconds(server.proc.pid), time.process_time()
    started = time.perf_counter()
    while not done:
        svc = SyncFolderItems(account=account)
        for _change_type, _item in svc.call(folder=inbox, shape="IdOnly", additional_fields=field_paths,
                                            sync_state=sync_state, ignore=None, max_changes_returned=page,
                                            sync_scope=None):
            items += 1
        sync_state, done = svc.sync_state, svc.includes_last_item_in_range
        pages += 1
    seconds = time.perf_counter() - started
    server_cpu, client_cpu = cpu_seconds(server.proc.pid) - server_cpu, time.process_time() - client_cpu
    after = server.stats()
    close_connections()
    operations = {name: count - before["operations"].get(name, 0) for name, count in after["operations"].items()}
    return {"seconds": seconds, "pages": pages, "items": items, "server_cpu": server_cpu, "client_cpu": client_cpu,
            # The second stats request is counted in `after`; neither is part of the sync.
            "requests": after["http_requests"] - before["http_requests"] - 1,
            "sync_ops": operations.get("SyncFolderItems", 0)}


def print_table(table: Sequence[Sequence[str]]) -> None:
    """Print rows of cells right-aligned in columns, the first row as the header."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for index, row in enumerate(table):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def megabytes(kb: float) -> str:
    """KiB as whole megabytes, for the tables."""
    return f"{kb / 1024:,.0f} MB"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="inbox sizes to sync (comma-separated)")
    parser.add_argument("--auth", choices=("ntlm", "basic"), default="ntlm")
    parser.add_argument("--page", type=int, default=512, help="MaxChangesReturned per SyncFolderItems call")
    parser.add_argument("--seed-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_only is not None:
        print(json.dumps(measure_seeding(args.seed_only)))
        return

    child = subprocess.run([sys.executable, __file__, "--seed-only", str(SEED_SIZE)], capture_output=True,
                           text=True, check=True)
    seeding = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"Seeding {SEED_SIZE:,} messages (seed_messages): {seeding['seconds']:.2f} s "
          f"({SEED_SIZE / seeding['seconds']:,.0f} messages/s), peak memory {megabytes(seeding['peak_kb'])}")
    print(f"Sync: exchangelib {_exchangelib_version()}, auth {args.auth}, page {args.page}, "
          f"fields {', '.join(FIELDS)}\n")

    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        server = Server.start(n, args.auth)
        try:
            exact_peak = reset_peak()
            result = sync_inbox(server, args.auth, args.page)
            result.update(n=n, startup=server.startup, server_kb=peak_kb(server.proc.pid), client_kb=peak_kb(),
                          exact_peak=exact_peak)
        finally:
            server.stop()
        if result["items"] != n:
            print(f"warning: synced {result['items']} items of {n}")
        rows.append(result)

    header = ("messages", "start s", "sync s", "pages", "items", "requests", "items/s", "ms/page",
              "server CPU s", "client CPU s", "server peak", "client peak")
    table = [header]
    for r in rows:
        table.append((f"{r['n']:,}", f"{r['startup']:.2f}", f"{r['seconds']:.2f}", f"{r['pages']:,}",
                      f"{r['items']:,}", f"{r['requests']:,} ({r['sync_ops']} sync)",
                      f"{r['items'] / r['seconds']:,.0f}", f"{1000 * r['seconds'] / r['pages']:.1f}",
                      f"{r['server_cpu']:.2f}", f"{r['client_cpu']:.2f}",
                      megabytes(r["server_kb"]), megabytes(r["client_kb"]) + ("" if r["exact_peak"] else " *")))
    print_table(table)
    if any(not r["exact_peak"] for r in rows):
        print("* peak since this process started (clear_refs not allowed here)")
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        size_ratio = last["items"] / max(first["items"], 1)
        time_ratio = last["seconds"] / first["seconds"]
        print(f"\n{last['n']:,} vs {first['n']:,}: {size_ratio:.1f}x the items took {time_ratio:.1f}x the time "
              f"(linear would be {size_ratio:.1f}x); throughput {last['items'] / last['seconds']:,.0f} vs "
              f"{first['items'] / first['seconds']:,.0f} items/s")


def _exchangelib_version() -> str:
    import exchangelib

    return exchangelib.__version__


if __name__ == "__main__":
    main()
