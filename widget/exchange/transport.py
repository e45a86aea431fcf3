"""Every answer from an Exchange server, bounded: a total deadline and a size cap, whatever the server does.

`requests` bounds each read from the socket, not the whole answer: a server that trickles a byte at a time holds a
sign-in (and the web worker serving it) for as long as it likes, and one that sends 600 MB has it all read into
memory and parsed. So the HTTP adapter of each backend (the one exchangelib uses for EWS, the Graph client's
session) reads every non-streaming answer itself, within
WEB_DEADLINE seconds when a person is waiting on a page (SYNC_DEADLINE in a background sync), and at most
MAX_ANSWER_BYTES; past either the connection is cut and the request fails as a timeout or a server fault.

The answer is then handed on in chunks of a megabyte: exchangelib reads every SOAP answer through
`iter_content()`, whose default chunk is one byte — a million generator steps per megabyte — for every service.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
import requests.adapters
from flask import current_app, has_app_context, has_request_context

WEB_DEADLINE = 10.0  # seconds for a whole answer while a person waits on a page
SYNC_DEADLINE = 60.0  # seconds for a whole answer in a background sync
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # a page of 512 summaries is about 1 MB, 100 bodies a few MB
_READ_CHUNK = 64 * 1024
_PARSE_CHUNK = 1024 * 1024


class AnswerTooLarge(requests.exceptions.ConnectionError):
    """The server's answer was larger than the widget accepts."""


def deadline() -> float:
    """How long a whole answer may take now: less when a person waits on a page than in a background sync
    (WIDGET_EXCHANGE_WEB_DEADLINE and WIDGET_EXCHANGE_SYNC_DEADLINE in the app's config change them)."""
    waiting = has_request_context()
    if has_app_context():
        key = "WIDGET_EXCHANGE_WEB_DEADLINE" if waiting else "WIDGET_EXCHANGE_SYNC_DEADLINE"
        configured = current_app.config.get(key)
        if configured:
            return float(configured)
    return WEB_DEADLINE if waiting else SYNC_DEADLINE


class _WholeChunkResponse(requests.Response):
    """A response whose body is already read: iter_content() gives it in large chunks, whatever chunk size the caller
    asks for (exchangelib asks for one byte)."""

    def iter_content(self, chunk_size: int | None = 1, decode_unicode: bool = False) -> Any:  # noqa: FBT001, FBT002
        """The body, a megabyte at a time."""
        if decode_unicode or not isinstance(self._content, bytes):
            return super().iter_content(chunk_size=chunk_size, decode_unicode=decode_unicode)
        content = self._content
        return (content[start:start + _PARSE_CHUNK] for start in range(0, len(content), _PARSE_CHUNK) or [0])


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket an answer is read from: the connection's, or (for an answer that ends when the server closes the
    connection, which http.client detaches from its connection) the one its body is read from."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        body = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(body, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _cut(response: requests.Response) -> None:
    """Close the answer's socket from the watchdog: a read blocked on it returns at once."""
    sock = _socket_of(response)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _read_bounded(response: requests.Response, limit: float, started: float, max_bytes: int) -> None:
    """Read the whole body into the response within `limit` seconds of `started` and `max_bytes` bytes."""
    remaining = limit - (time.monotonic() - started)
    fired = threading.Event()

    def cut() -> None:
        fired.set()
        _cut(response)

    watchdog = threading.Timer(max(remaining, 0.0), cut)
    watchdog.daemon = True
    watchdog.start()
    chunks, size = [], 0
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise AnswerTooLarge(f"The Exchange server's answer is larger than the widget accepts "
                                 f"({max_bytes // (1024 * 1024)} MB).")
        for chunk in response.raw.stream(_READ_CHUNK, decode_content=True):
            size += len(chunk)
            if size > max_bytes:
                raise AnswerTooLarge(f"The Exchange server's answer is larger than the widget accepts "
                                     f"({max_bytes // (1024 * 1024)} MB).")
            chunks.append(chunk)
            if fired.is_set():
                break
    except AnswerTooLarge:
        response.close()
        raise
    except Exception as error:  # the socket cut by the watchdog, or the server's own failure
        response.close()
        if fired.is_set():
            raise requests.exceptions.ReadTimeout(
                f"Exchange's answer timed out: it was not complete within {limit:.0f} seconds.") from None
        raise requests.exceptions.ConnectionError(str(error)) from error
    finally:
        watchdog.cancel()
    if fired.is_set():
        response.close()
        raise requests.exceptions.ReadTimeout(
            f"Exchange's answer timed out: it was not complete within {limit:.0f} seconds.")
    response._content = b"".join(chunks)
    response._content_consumed = True
    response.__class__ = _WholeChunkResponse


def bounded(adapter: type[requests.adapters.HTTPAdapter]) -> type[requests.adapters.HTTPAdapter]:
    """The adapter class, with every non-streaming answer read within the deadline and the size cap."""

    class BoundedAdapter(adapter):  # type: ignore[misc, valid-type]
        """Reads each answer within a total deadline and a size cap (see the module)."""

        max_bytes = MAX_ANSWER_BYTES

        def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,  # noqa: FBT001, FBT002
                 **kwargs: Any) -> requests.Response:
            limit, started = deadline(), time.monotonic()
            # While the headers come, no single read may wait past the deadline either.
            if isinstance(timeout, tuple):
                timeout = (timeout[0], min(timeout[1] or limit, limit))
            elif timeout is None or timeout > limit:
                timeout = limit
            response = super().send(request, stream=True, timeout=timeout, **kwargs)
            # An authentication challenge is left to the auth handler (NTLM reads the TLS socket from the answer
            # itself); its small body is read with the per-read timeout, and the retried request comes here again.
            if not stream and not (response.status_code == 401 and "WWW-Authenticate" in response.headers):
                _read_bounded(response, limit, started, self.max_bytes)
            return response

    BoundedAdapter.__name__ = f"Bounded{adapter.__name__}"
    return BoundedAdapter
