"""What every request leaves behind: its request id (the `X-Request-Id` header of every answer,
and the `request_id` of the log lines written while it runs), its metrics, its line in the
access log (when asked for), and, for RD's routes, what the request log keeps.

The observer wraps the whole app, Starlette's error handling included, so that it sees every
answer, 500s too. It costs an accepted request a few dictionary operations: its metrics are
tallied (see metrics.py), and with the request log in its default mode nothing of it is kept or
handed on.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import metrics
from ..clock import utc_now
from ..ids import new_request_id
from ..logs import REQUEST_ID
from ..request_log import Captured, RequestLogWriter, error_types, is_rd_route, redacted_query

access_log = logging.getLogger("rdevents.access")

# Scope keys of our own (no client can set a scope key): the account a request authenticated
# as (set by auth.py), the account a replayed request runs as (see request_log.py), and the
# body as the route read it (set by body.py; a rejected request's body the route did not read
# at all, e.g. for a bad token, is read by the observer before the answer goes).
ACCOUNT = "rdevents.account_id"
REPLAY_ACCOUNT = "rdevents.replay_account_id"
BODY = "rdevents.body"
_UNREAD_SIZE = "rdevents.unread_body_size"  # the size of a body the observer read, if cut

REQUEST_ID_HEADER = b"x-request-id"
# An incoming request id is kept when it is 1 to 128 of these characters (no spaces or control
# characters that could forge log lines); else a new one is made.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:;/+=@-]{1,128}")
UNMATCHED = "unmatched"  # the route label of a request no route matched


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The request's own id, if it sent a sane one; else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value.decode()
            break
    return new_request_id()


def route_label(scope: Scope) -> str:
    """The template of the route that answered (e.g. /platform/contacts/{contact})."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    label = getattr(route, "path_format", None) or getattr(route, "path", None)
    return label if isinstance(label, str) else UNMATCHED


class RequestObserver:
    """ASGI middleware around the whole app; see the module's description."""

    def __init__(self, app: ASGIApp, writer: RequestLogWriter | None,
                 access_log_on: bool) -> None:
        self.app = app
        self._writer = writer if writer is not None and writer.mode != "off" else None
        self._log_all = self._writer is not None and self._writer.mode == "all"
        self._access_log = access_log_on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        REQUEST_ID.set(request_id)
        id_header = (REQUEST_ID_HEADER, request_id.encode())
        # With --request-log all, an RD route's answer is kept whatever its status.
        keep_all = self._log_all and self._keepable(scope)
        status = 0
        response: list[bytes] | None = None  # the answer's body, when it may be kept

        async def send_observed(message: Message) -> None:
            nonlocal status, response
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
                if status >= 400 or keep_all:
                    response = []
                    if BODY not in scope and self._keepable(scope):
                        await self._read_unread_body(scope, receive)
            elif response is not None:
                body = message.get("body")
                if body:
                    response.append(body)
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            # Starlette's error middleware answered 500 (and re-raises, for the server's log).
            status = status or 500
            raise
        finally:
            seconds = time.perf_counter() - started
            metrics.observe_request(route_label(scope), scope["method"], status, seconds)
            if response is not None or status >= 400:
                self._keep(scope, status, b"".join(response or ()), seconds, request_id)
            if self._access_log:
                _log_access(scope, status, seconds, request_id)

    def _keepable(self, scope: Scope) -> bool:
        """Whether the request log keeps this request, if its status calls for it: a request
        to an RD route, not a replay (whose answer goes to the one who replayed it)."""
        return (self._writer is not None and REPLAY_ACCOUNT not in scope
                and is_rd_route(scope["path"]))

    async def _read_unread_body(self, scope: Scope, receive: Receive) -> None:
        """Keep the body of a request answered without reading it (a 401, say), as far as the
        log keeps bodies: the answer waits for it, as the client sends it anyway. Not for a
        client waiting on `Expect: 100-continue`, which sends no body to a refusal."""
        if scope["method"] not in ("POST", "PUT", "PATCH") or any(
                name == b"expect" for name, _ in scope["headers"]):
            return
        assert self._writer is not None  # _keepable
        limit, chunks, size, more = self._writer.max_body_bytes, [], 0, True
        while more and size <= limit:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        # What was left unread counts one byte at least: the record shows a cut body.
        scope[BODY] = b"".join(chunks)
        scope[_UNREAD_SIZE] = size + (1 if more else 0)

    def _keep(self, scope: Scope, status: int, body: bytes, seconds: float,
              request_id: str) -> None:
        """Count a rejected request by its errors; hand the request log what it keeps."""
        types = error_types(status, body) if status >= 400 else ()
        if status >= 400:
            metrics.count_rejection(types)
        if self._writer is None or not self._keepable(scope):
            return
        request_body: bytes = scope.get(BODY, b"")
        self._writer.add(Captured(
            utc_now(-seconds), scope["method"], scope["path"], scope["query_string"],
            scope["headers"], scope.get("client"), request_body,
            scope.get(_UNREAD_SIZE, len(request_body)), status,
            body, len(body), seconds * 1000, request_id, scope.get(ACCOUNT), types))


def _log_access(scope: Scope, status: int, seconds: float, request_id: str) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    query = redacted_query(scope["query_string"])
    target = scope["path"] + (f"?{query}" if query else "")
    duration_ms = round(seconds * 1000, 3)
    access_log.info('%s - "%s %s HTTP/%s" %d %.1fms request_id=%s', address, scope["method"],
                    target, scope.get("http_version", "1.1"), status, duration_ms, request_id,
                    extra={"method": scope["method"], "path": scope["path"],
                           "query": query, "status": status, "duration_ms": duration_ms,
                           "client": address})


class ObservedApp(Starlette):
    """Starlette with the RequestObserver outside its error handling, so that 500s carry a
    request id and are counted too."""

    def __init__(self, writer: RequestLogWriter | None, access_log_on: bool,
                 **options: Any) -> None:
        self.observer_writer = writer
        self.observer_access_log = access_log_on
        super().__init__(**options)

    def build_middleware_stack(self) -> ASGIApp:
        return RequestObserver(super().build_middleware_stack(), self.observer_writer,
                               self.observer_access_log)
