"""The request log's API (beyond RD): an account's logged requests, one whole, and its replay.

    GET  /rdevents/v1/requests?status=rejected|accepted&page=&page_size=
    GET  /rdevents/v1/requests/{uuid}
    POST /rdevents/v1/requests/{uuid}/replay

What is logged, and how, is in rdevents/request_log.py.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from ..ids import new_uuid
from ..logs import REQUEST_ID
from ..request_log import REDACTED
from ..store.request_log import OUTCOMES
from ..store.request_records import LoggedRequest, RequestSummary
from .auth import authenticate
from .errors import JSON, ApiError, not_found
from .observe import REPLAY_ACCOUNT, REQUEST_ID_HEADER
from .paging import one_of, page_of

PAGE_SIZE = 25
# Headers a replay does not send again: credentials (redacted anyway; the replay runs as the
# record's account), and those that describe the original connection or body.
_NOT_REPLAYED = {b"authorization", b"cookie", b"content-length", b"transfer-encoding",
                 b"connection", b"expect", REQUEST_ID_HEADER}


def body_document(body: bytes) -> Any:
    """A body as the API shows it: its JSON value when it is JSON, else its text (invalid
    UTF-8 replaced), or None when empty."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def summary_document(summary: RequestSummary) -> dict[str, Any]:
    return {"uuid": summary.uuid, "received_at": summary.received_at, "method": summary.method,
            "path": summary.path, "status": summary.status, "duration_ms": summary.duration_ms}


def record_document(record: LoggedRequest) -> dict[str, Any]:
    return {
        "uuid": record.uuid, "received_at": record.received_at, "method": record.method,
        "path": record.path, "query": record.query, "status": record.status,
        "duration_ms": record.duration_ms, "request_id": record.request_id,
        "client_address": record.client_address, "user_agent": record.user_agent,
        "headers": record.headers, "request_body": body_document(record.request_body),
        "request_body_truncated": record.request_body_truncated,
        "response_body": body_document(record.response_body),
        "response_body_truncated": record.response_body_truncated,
        "error_types": list(record.error_types), "replayable": record.replayable,
    }


async def replay(app: ASGIApp, record: LoggedRequest, request_id: str) -> tuple[int, bytes]:
    """Send a logged request again through `app`, in this process, as the record's account
    (its credentials were not kept); its status and body. The answer is not logged again."""
    headers = [(name.encode("latin-1"), value.encode("latin-1"))
               for name, value in record.headers.items()
               if name.encode("latin-1") not in _NOT_REPLAYED and value != REDACTED]
    headers += [(b"content-length", str(len(record.request_body)).encode()),
                (REQUEST_ID_HEADER, request_id.encode())]
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": record.method, "scheme": "http",
        "path": record.path, "raw_path": quote(record.path).encode(), "root_path": "",
        "query_string": record.query.encode("latin-1"), "headers": headers,
        "client": (record.client_address, 0) if record.client_address else None,
        "server": None, "state": {}, REPLAY_ACCOUNT: record.account_id,
    }
    sent = False
    status = 0
    body: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": record.request_body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(body)


async def list_requests(request: Request) -> JSON:
    account_id = await authenticate(request)
    errors: list[Any] = []
    outcome = one_of(request.query_params, "status", tuple(OUTCOMES), errors)
    page = page_of(request.query_params, PAGE_SIZE, errors)
    if errors:
        return JSON({"errors": errors}, 400)
    found = await request.app.state.store.list_requests(account_id, outcome, page.offset,
                                                        page.size)
    return JSON({"requests": [summary_document(s) for s in found], "page": page.number,
                 "page_size": page.size})


async def _record(request: Request) -> LoggedRequest:
    account_id = await authenticate(request)
    record: LoggedRequest | None = await request.app.state.store.get_request(
        account_id, str(request.path_params["uuid"]))
    if record is None:
        raise not_found("Request not found.")
    return record


async def get_request(request: Request) -> JSON:
    return JSON(record_document(await _record(request)))


async def replay_request(request: Request) -> JSON:
    record = await _record(request)
    if not record.replayable:
        raise ApiError(409, "NOT_REPLAYABLE",
                       "The request cannot be replayed: its body was not kept whole (cut at "
                       "the request log's size, or credentials taken out of it).")
    status, body = await replay(request.app, record, REQUEST_ID.get() or new_uuid())
    return JSON({"status": status, "response_body": body_document(body)})


routes = [
    Route("/rdevents/v1/requests", list_requests, methods=["GET"]),
    Route("/rdevents/v1/requests/{uuid:uuid}", get_request, methods=["GET"]),
    Route("/rdevents/v1/requests/{uuid:uuid}/replay", replay_request, methods=["POST"]),
]
