"""Bounded connections: a client that keeps a connection without sending a request, or sends it
slowly, loses it, and silent connections never take the file descriptors that new clients need.

uvicorn's keep-alive timeout starts only once a response is sent, and any byte received cancels
it: a connection that never completes a request head (a silent one, or a slowloris sending a
header byte a second) would stay open for ever. The protocol below adds the missing deadlines and
a cap on the connections a process keeps open.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import weakref
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

log = logging.getLogger(__name__)

# File descriptors kept for the process's own use (database connections, webhook deliveries,
# files): at most this many, at most a quarter of the limit.
RESERVED_FDS = 256
# A request's line and headers: past this size the client gets a 431 and the connection closes.
# (RD answers 414 past 8 KB of URL; browsers and proxies stay well under 16 KB of headers.)
MAX_HEAD_BYTES = 65_536
_HEAD_TOO_LARGE = orjson.dumps({"errors": {
    "error_type": "REQUEST_HEADER_FIELDS_TOO_LARGE",
    "error_message": f"The request line and headers must not exceed {MAX_HEAD_BYTES} bytes."}})
_HEAD_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
    % (len(_HEAD_TOO_LARGE), _HEAD_TOO_LARGE))


@dataclass(frozen=True)
class ConnectionLimits:
    head_timeout: float  # seconds for a request's line and headers to arrive
    body_timeout: float  # seconds for its body to arrive, once the head has
    max_connections: int  # open at once; past it, the connection idle longest is closed


def usable_fds() -> int:
    """Raise the soft limit on open files to the hard limit; return how many of them may hold
    client connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit on macOS
            log.info("open files stay limited to %d: %s", soft, exc)
    return soft - min(RESERVED_FDS, soft // 4)


# For each server, its connections waiting for a request head, the one idle longest first.
_waiting: weakref.WeakKeyDictionary[ServerState, dict[BoundedProtocol, None]] = \
    weakref.WeakKeyDictionary()


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines: a request's head must be complete within
    `head_timeout` seconds of the connection opening or of the previous response, and within
    MAX_HEAD_BYTES, its body within `body_timeout` seconds of the head; otherwise the
    connection is closed. Beyond `max_connections`, a new connection closes the one that has
    waited longest for a head."""

    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._waiting = _waiting.setdefault(self.server_state, {})
        # The connection closes at `_deadline` (loop time), unless it is None. A request moves
        # it twice, which only sets this number: the one timer, `_timer`, looks at it when it
        # fires, and is never set further ahead than the shortest timeout, so that it fires
        # before any deadline set since.
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_span = min(limits.head_timeout, limits.body_timeout)
        self._head_bytes = 0
        self._refused = False  # a 431 was sent: what the client still sends is dropped

    def _close_after(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        if self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        assert self._deadline is not None
        self._timer = self.loop.call_at(min(self._deadline, self.loop.time() + self._timer_span),
                                        self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        if self.loop.time() >= self._deadline:
            self.transport.close()
        else:
            self._arm_timer()

    def _cancel_deadline(self) -> None:
        self._deadline = None

    def _await_head(self) -> None:
        self._close_after(self.limits.head_timeout)
        self._head_bytes = 0
        self._waiting.pop(self, None)
        self._waiting[self] = None  # the newest waiting

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.limits.max_connections:
            idlest = next(iter(self._waiting))  # self, if no other is waiting
            self._waiting.pop(idlest)
            idlest._cancel_deadline()
            idlest.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self in self._waiting:  # all of it was head, and the head is not complete yet
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self._refuse_head()

    def _refuse_head(self) -> None:
        """Answer 431 and end the connection. Closing at once, with the rest of the client's
        head unread, would make the kernel reset the connection, and a reset can reach the
        client before it has read the answer. So the answer is followed by the end of what the
        server sends; what the client still sends is read and dropped until it closes, or for
        at most the head timeout."""
        self.transport.write(_HEAD_TOO_LARGE_RESPONSE)
        self.transport.write_eof()
        self._refused = True
        self._waiting.pop(self, None)
        self._close_after(self.limits.head_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._waiting.pop(self, None)
        self._close_after(self.limits.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._cancel_deadline()  # the answer is the server's to give, however long it takes

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless a pipelined request's head arrived already, the next one is awaited.
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._waiting.pop(self, None)
        super().connection_lost(exc)
