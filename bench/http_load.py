"""A small HTTP/1.1 load generator for bench/web_load.py: concurrent keep-alive clients, each with its own session
cookie, on one asyncio loop (one thread, so no client waits for another's turn at the GIL).

    python bench/http_load.py SPEC.json     # prints one JSON object with the results

SPEC: {"host", "port", "warmup", "requests", "rounds", "server_pids": [...], "exchange_pids": [...],
"clients": [{"cookie": "name=value"}],
"pages": [{"name", "paths": [[path, ...] per client]}]}. For each round, each page in turn: `warmup` requests that
are not counted, then `requests` requests shared by all clients (each client takes the next request as soon as its
previous answer is in, and cycles through its own paths). Per page it reports wall time, each request's latency,
the status codes, the bytes received, and the CPU seconds this process, the widget's server processes and the
Exchange (sandbox) processes spent.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sandbox_sync import cpu_seconds


class Connection:
    """One keep-alive connection of one client, with that client's cookies (Set-Cookie updates them)."""

    def __init__(self, host: str, port: int, cookie: str) -> None:
        self.host, self.port = host, port
        self.cookies = dict(part.split("=", 1) for part in cookie.split("; ") if "=" in part)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = -1  # the first connect is not a reconnect

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.reconnects += 1

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path: str) -> tuple[int, int]:
        """GET path; returns (status, body bytes). Reconnects once if the server closed the idle connection."""
        for attempt in (1, 2):
            if self.writer is None:
                await self._connect()
            try:
                return await self._exchange(path)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, path: str) -> tuple[int, int]:
        assert self.reader is not None and self.writer is not None
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept: text/html\r\n"
                          f"Cookie: {cookie}\r\nConnection: keep-alive\r\n\r\n".encode("latin-1"))
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
            headers[name] = value
        if headers.get("transfer-encoding", "").lower() == "chunked":
            size = 0
            while True:
                chunk = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(chunk + 2)
                size += chunk
                if chunk == 0:
                    break
        else:
            size = int(headers.get("content-length", "0"))
            await self.reader.readexactly(size)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, size


async def _run_page(connections: list[Connection], paths: list[list[str]], n: int) -> dict[str, Any]:
    """n requests of one page from all clients at once; per-request latencies in seconds."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    received = 0
    issued = 0

    async def client(index: int) -> None:
        nonlocal issued, received
        mine = paths[index]
        turn = 0
        while issued < n:
            issued += 1
            started = time.perf_counter()
            status, size = await connections[index].get(mine[turn % len(mine)])
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            received += size
            turn += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(len(connections))))
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "statuses": dict(statuses),
            "bytes": received}


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Every round, every page: warm up, then measure. Results per page, in the spec's order."""
    connections = [Connection(spec["host"], spec["port"], c["cookie"]) for c in spec["clients"]]
    results: dict[str, dict[str, Any]] = {page["name"]: {"seconds": 0.0, "latencies": [], "statuses": Counter(),
                                                         "bytes": 0, "client_cpu": 0.0, "server_cpu": 0.0,
                                                         "exchange_cpu": 0.0}
                                          for page in spec["pages"]}
    for _ in range(spec["rounds"]):
        for page in spec["pages"]:
            await _run_page(connections, page["paths"], spec["warmup"])
            client_cpu = time.process_time()
            server_cpu = sum(cpu_seconds(pid) for pid in spec["server_pids"])
            exchange_cpu = sum(cpu_seconds(pid) for pid in spec["exchange_pids"])
            measured = await _run_page(connections, page["paths"], spec["requests"])
            total = results[page["name"]]
            total["client_cpu"] += time.process_time() - client_cpu
            total["server_cpu"] += sum(cpu_seconds(pid) for pid in spec["server_pids"]) - server_cpu
            total["exchange_cpu"] += sum(cpu_seconds(pid) for pid in spec["exchange_pids"]) - exchange_cpu
            total["seconds"] += measured["seconds"]
            total["latencies"] += measured["latencies"]
            total["statuses"].update(measured["statuses"])
            total["bytes"] += measured["bytes"]
    for connection in connections:
        connection.close()
    return {"pages": results, "reconnects": sum(c.reconnects for c in connections)}


def main() -> None:
    """Read the spec named on the command line, run it, print the results as JSON."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    print(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
