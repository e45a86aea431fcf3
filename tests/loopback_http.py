"""Plain HTTP servers on loopback that stand in for a broken or hostile Exchange server in tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def loopback_servers() -> Iterator[Any]:
    """`start(handler_class, **attributes)` serves the handler on a free loopback port (the attributes set on the
    server, for the handler to read) and returns an EWS-like URL on it; every server stops at the end."""
    servers: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        for name, value in attributes.items():
            setattr(server, name, value)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/EWS/Exchange.asmx"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
