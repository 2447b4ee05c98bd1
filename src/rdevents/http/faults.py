"""The sandbox's faults as the requests they answer see them (`serve --sandbox`; what a fault is,
in rdevents/sandbox.py): RD Station's failures, answered exactly as rdevents answers the same
failure itself where it has one (its limits' 429s, its 401s, its 500), and RD's gateway page
where it has none.

A request meets its account's next fault once it is known whose it is (its token, its API key,
its OAuth app's credentials), before its route stores anything; the request log keeps it as any
request answered 4xx or 5xx.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..limits import DAY, MINUTE, PER_CONTACT_PER_DAY, PLANS, Limited, seconds_left, window
from ..request_log import is_rd_route
from ..validation import normalise_email
from .body import read_body
from .errors import Answered, ApiError, expired_token, invalid_token, rate_limited, server_error
from .observe import BODY

# RD's gateway when RD Station is down: an HTML page, status 504, whatever was asked (RD's Ruby
# client, issues #47 and #51). A client that reads every answer as JSON fails on it.
RD_DOWN_PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8" />
  <title> RD Station fora do ar </title>
</head>
<body>
  <h1>RD Station fora do ar</h1>
  <p>Estamos trabalhando para normalizar o acesso o mais breve poss\u00edvel.</p>
</body>
</html>
"""
RD_DOWN_HEADERS = {"Cache-Control": "no-cache", "Connection": "close"}


def _limited(scope: str, key: str, limit: int, period: int, now: float) -> Limited:
    """A limit passed by one, with the seconds left in its current window."""
    return Limited(scope, key, limit, limit + 1, period,
                   seconds_left(window(now, period), period, now), False)


def lead_key(path: str, body: bytes) -> str:
    """The e-mail RD's lead limiter names: that of the contact in the path, or of the (first)
    event in the body; empty when there is none."""
    _, found, identified = path.partition("/platform/contacts/email:")
    if found:
        return normalise_email(identified.split("/", 1)[0])
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    first = document[0] if isinstance(document, list) and document else document
    payload = first.get("payload") if isinstance(first, dict) else None
    email = payload.get("email") if isinstance(payload, dict) else None
    return normalise_email(email) if isinstance(email, str) else ""


def fault_response(kind: str, path: str, body: bytes, now: float) -> Response:
    """What a fault of `kind` answers a request to `path` with this body, at `now`."""
    if kind == "rate_limit":
        return rate_limited(_limited("account", "", PLANS["standard"], MINUTE, now))
    if kind == "lead_rate_limit":
        return rate_limited(_limited("contact", lead_key(path, body), PER_CONTACT_PER_DAY, DAY,
                                     now))
    if kind == "expired_token":
        return expired_token().response()
    if kind == "invalid_token":
        return invalid_token().response()
    if kind == "server_error":
        return server_error().response()
    if kind == "gateway_timeout_html":
        return HTMLResponse(RD_DOWN_PAGE, 504, headers=RD_DOWN_HEADERS)
    raise ValueError(f"no answer for a fault of kind {kind!r}")


async def answer_fault(request: Request, account_id: int) -> None:
    """In the sandbox, on an RD route: wait for the account's next fault for this path, if it
    has one, then raise its answer (a latency fault only waits: the request goes on)."""
    path = request.scope["path"]
    if not request.app.state.settings.sandbox or not is_rd_route(path):
        return
    fault = await request.app.state.store.take_fault(account_id, path)
    if fault is None:
        return
    await asyncio.sleep(fault.latency_ms / 1000)
    if fault.fault == "latency":
        return
    body: bytes | None = request.scope.get(BODY)  # read already (OAuth's token route)
    if body is None:
        try:  # for the request log, so that the request can be replayed once the fault is over
            body = await read_body(request)
        except ApiError:  # too large: the fault answers all the same
            body = b""
    raise Answered(fault_response(fault.fault, path, body, time.time()))
