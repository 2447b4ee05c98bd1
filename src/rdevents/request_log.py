"""The request log: requests to RD's routes answered 4xx or 5xx (with `--request-log all`, every
one), kept with their bodies, redacted headers and timing, so that an integrator sees why a
request was refused and an operator what clients send.

A request's path only hands what it captured (references to its body's chunks, its status) to
the writer (`RequestLogWriter.add`): nothing is decoded, redacted or written on it, and an
accepted request with the log in its default mode (`rejected`) is not even handed over. The
writer turns what it was handed into records and stores them in batches, a transaction for up
to `BATCH` records, off the requests' path. What waits for it is bounded (`MAX_QUEUED` records,
`MAX_QUEUED_BYTES` of bodies): past that, new records are dropped and counted
(rdevents_request_log_dropped_total), never the requests themselves slowed.

Caps: an account keeps its newest `request_log_max_per_account` records, the unauthenticated
requests together their newest `request_log_max_anonymous`; each body is kept up to
`request_log_max_body_bytes`; records older than `request_log_retention_days` are pruned in the
background.

Redaction: no credential is stored. The headers that carry them (Authorization, Cookie, anything
named like a key, token, secret, password, session or signature) and such query parameters
(`api_key`) keep their names with the value "[redacted]"; the bodies of the routes that carry
credentials by design (RD's OAuth routes, webhook subscriptions with their secrets) have such
fields redacted, or are dropped whole when they cannot be read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

import orjson

from . import metrics
from .config import Settings
from .ids import new_uuid
from .pruning import PRUNE_INTERVAL, prune_past
from .store import Store, StoreUnavailable
from .store.request_records import LoggedRequest

log = logging.getLogger(__name__)

MODES = ("off", "rejected", "all")
# RD Station's own routes: the only ones logged (not /rdevents/v1, /ui, /docs, /metrics...).
RD_PREFIXES = ("/platform/", "/integrations/", "/auth/", "/oauth2/", "/marketing/")
# Routes whose bodies carry credentials by design: OAuth (secrets, codes, tokens, passwords),
# webhook subscriptions (their signing secrets).
CREDENTIAL_PREFIXES = ("/auth/", "/oauth2/", "/integrations/webhooks")
REDACTED = "[redacted]"
# A header, query parameter or body field whose name holds one of these carries a credential.
_SECRET_NAME = re.compile(
    r"auth|cookie|token|secret|passw|pwd|api[-_]?key|signature|session|credential|csrf|private",
    re.IGNORECASE)
_SECRET_NAMES = frozenset({"code", "key"})  # OAuth's authorization code; a bare key
USER_AGENT_LENGTH = 512

# The writer: records a transaction, seconds it lets records gather, what may wait for it.
BATCH = 500
GATHER_SECONDS = 0.2
MAX_QUEUED = 10_000
MAX_QUEUED_BYTES = 32 * 2**20


def is_rd_route(path: str) -> bool:
    return path.startswith(RD_PREFIXES)


def secret_name(name: str) -> bool:
    """Whether a header, query parameter or field of this name carries a credential."""
    return name.lower() in _SECRET_NAMES or _SECRET_NAME.search(name) is not None


@dataclass
class Captured:
    """What a request's path hands the writer: the request and its answer as they went, not yet
    decoded or redacted."""

    received_at: str  # when the request arrived (clock.utc_now)
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    request_body: bytes  # as the route read it (none: the route did not read it)
    request_size: int  # the body's size before it was cut to the size kept
    status: int
    response_body: bytes
    response_size: int
    duration_ms: float
    request_id: str
    account_id: int | None
    error_types: tuple[str, ...]

    @property
    def size(self) -> int:
        """Bytes it holds (about), for the writer's memory bound."""
        return (len(self.request_body) + len(self.response_body) + len(self.query_string)
                + sum(len(name) + len(value) for name, value in self.headers))


# --- what an answer's errors are ------------------------------------------------------------------


def error_types(status: int, body: bytes) -> tuple[str, ...]:
    """The `error_type` of each of an error answer's errors, in order, each once: RD's request
    errors (`errors` an object), validation errors (an array), attribute errors (keyed by
    attribute). An answer without any is named by its status: UNAUTHORIZED for a 401 (RD's
    OAuth-style body of a missing token), RATE_LIMITED for a 429 (RD's two limiter bodies),
    else HTTP_<status>."""
    found: dict[str, None] = {}
    try:
        document = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict):
        _collect_types(document.get("errors"), found)
    if not found:
        found[{401: "UNAUTHORIZED", 429: "RATE_LIMITED"}.get(status, f"HTTP_{status}")] = None
    return tuple(found)


def _collect_types(node: Any, found: dict[str, None], depth: int = 0) -> None:
    if depth > 3:  # attribute errors nest two levels at most (by locale)
        return
    if isinstance(node, dict):
        error_type = node.get("error_type")
        if isinstance(error_type, str):
            found[error_type] = None
            return
        for value in node.values():
            _collect_types(value, found, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _collect_types(value, found, depth + 1)


# --- redaction ------------------------------------------------------------------------------------


def redacted_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names to values (repeated headers joined with ", "), credentials redacted."""
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name = name_bytes.decode("latin-1").lower()
        value = REDACTED if secret_name(name) else value_bytes.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def redacted_query(query_string: bytes) -> str:
    """The query string as it came, with the values of credential parameters redacted."""
    text = query_string.decode("latin-1")
    if not text:
        return ""
    parts = []
    for part in text.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if secret_name(unquote_plus(name)) else part)
    return "&".join(parts)


def _redact_document(node: Any) -> tuple[Any, bool]:
    """A JSON document with the values of credential fields redacted, at any depth; and
    whether any was."""
    if isinstance(node, dict):
        changed = False
        result: dict[str, Any] = {}
        for name, value in node.items():
            if secret_name(name) and value is not None:
                result[name], changed = REDACTED, True
            else:
                result[name], inner = _redact_document(value)
                changed = changed or inner
        return result, changed
    if isinstance(node, list):
        items = [_redact_document(value) for value in node]
        return [item for item, _ in items], any(changed for _, changed in items)
    return node, False


def redacted_body(body: bytes, content_type: str) -> tuple[bytes, bool]:
    """A body of a route that carries credentials, with them redacted (JSON or form-encoded);
    one that cannot be read (cut short, malformed) is dropped whole. Returns the body kept and
    whether anything was taken out."""
    if not body:
        return body, False
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        if not any(secret_name(name) for name, _ in fields):
            return body, False
        return urlencode([(name, REDACTED if secret_name(name) else value)
                          for name, value in fields]).encode(), True
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return b"", True
    redacted, changed = _redact_document(document)
    return (orjson.dumps(redacted), True) if changed else (body, False)


def record_of(captured: Captured, max_body_bytes: int) -> LoggedRequest:
    """The record the log keeps of a captured request: decoded, redacted, bodies cut at
    `max_body_bytes`."""
    headers = redacted_headers(captured.headers)
    request_body, request_size = captured.request_body, captured.request_size
    response_body, response_size = captured.response_body, captured.response_size
    redacted = False
    if captured.path.startswith(CREDENTIAL_PREFIXES):  # (a body cut short is dropped whole)
        request_body, redacted = redacted_body(request_body, headers.get("content-type", ""))
        response_body, response_redacted = redacted_body(response_body, "application/json")
        redacted = redacted or response_redacted
        if redacted:
            request_size, response_size = len(request_body), len(response_body)
    user_agent = headers.get("user-agent")
    return LoggedRequest(
        uuid=new_uuid(), account_id=captured.account_id, received_at=captured.received_at,
        method=captured.method, path=captured.path,
        query=redacted_query(captured.query_string), status=captured.status,
        duration_ms=round(captured.duration_ms, 3), request_id=captured.request_id,
        client_address=captured.client[0] if captured.client else None,
        user_agent=user_agent[:USER_AGENT_LENGTH] if user_agent is not None else None,
        headers=headers, request_body=request_body[:max_body_bytes],
        request_body_size=request_size,
        response_body=response_body[:max_body_bytes], response_body_size=response_size,
        body_redacted=redacted, error_types=captured.error_types)


# --- the writer -----------------------------------------------------------------------------------


class RequestLogWriter:
    """Takes captured requests from the requests' path and stores them in batches in the
    background, within bounds of memory; prunes records past the retention."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self.mode = settings.request_log
        self.max_body_bytes = self._max_body = settings.request_log_max_body_bytes
        self._per_account = settings.request_log_max_per_account
        self._anonymous = settings.request_log_max_anonymous
        self._retention_days = settings.request_log_retention_days
        self._queue: deque[tuple[Captured, int]] = deque()  # and the bytes it holds
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_prune = 0.0

    def add(self, captured: Captured) -> None:
        """Queue a captured request for the next batch (never waits); dropped and counted when
        too much waits already. Its bodies are cut to the size kept first."""
        captured.request_body = captured.request_body[:self._max_body]
        captured.response_body = captured.response_body[:self._max_body]
        size = captured.size
        if (len(self._queue) >= MAX_QUEUED or self._queued_bytes + size > MAX_QUEUED_BYTES
                or self._stopping):
            metrics.count_dropped_request("queue_full")
            return
        self._queue.append((captured, size))
        self._queued_bytes += size
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="request-log")

    async def stop(self) -> None:
        """Store what is queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def flush(self) -> None:
        """Store everything queued now (for tests and shutdown)."""
        while self._queue:
            await self._write_batch()

    async def _run(self) -> None:
        while not self._stopping:
            await self._prune_now_and_then()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=PRUNE_INTERVAL)
            except TimeoutError:
                continue
            if not self._stopping:
                await asyncio.sleep(GATHER_SECONDS)  # let the records of a burst gather
            self._wake.clear()
            while self._queue:
                await self._write_batch()
        await self.flush()

    async def _write_batch(self) -> None:
        batch: list[Captured] = []
        while self._queue and len(batch) < BATCH:
            captured, size = self._queue.popleft()
            self._queued_bytes -= size
            batch.append(captured)
        try:
            records = [record_of(captured, self._max_body) for captured in batch]
            await self._store.add_requests(records, self._per_account, self._anonymous)
        except StoreUnavailable as exc:
            log.warning("the request log could not store %d records: %s", len(batch), exc)
            metrics.count_dropped_request("store_unavailable", len(batch))
        except Exception:  # a defect: the records are lost, the log goes on
            log.exception("the request log could not store %d records", len(batch))
            metrics.count_dropped_request("failed", len(batch))

    async def _prune_now_and_then(self) -> None:
        """Drop records past the retention, a bounded number at a time."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL
        await self.prune()

    async def prune(self) -> None:
        try:
            await prune_past(self._store.prune_requests, self._retention_days * 86_400,
                             lambda: self._stopping)
        except Exception:
            log.exception("pruning the request log failed")
