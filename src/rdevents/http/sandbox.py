"""The sandbox's API (beyond RD; only with `serve --sandbox`), for the account of the token:

    POST   /rdevents/v1/sandbox/faults  {"fault": KIND, "count": 1, "path": "/...", "latency_ms": 0}
    GET    /rdevents/v1/sandbox/faults  the faults not yet spent, in the order they answer
    DELETE /rdevents/v1/sandbox/faults  all of them
    POST   /rdevents/v1/sandbox/reset   erase the account's data, keeping its credentials

What a fault is: rdevents/sandbox.py; how it answers: faults.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..sandbox import FIELDS, Fault, fault_request
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import JSON, refuse_unknown
from .routing import by_method


def fault_document(fault: Fault) -> dict[str, Any]:
    return dataclasses.asdict(fault)


async def add_fault(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape('object: {"fault": "rate_limit", "count": 1}')
    refuse_unknown(sorted(set(body) - set(FIELDS)))
    asked, errors = fault_request(body)
    if asked is None:
        return JSON({"errors": errors}, 400)
    fault = await request.app.state.store.add_fault(account_id, asked)
    return JSON(fault_document(fault), 201)


async def list_faults(request: Request) -> JSON:
    account_id = await authenticate(request)
    faults = await request.app.state.store.list_faults(account_id)
    return JSON({"faults": [fault_document(fault) for fault in faults]})


async def clear_faults(request: Request) -> Response:
    account_id = await authenticate(request)
    await request.app.state.store.clear_faults(account_id)
    return Response(status_code=204)


async def reset(request: Request) -> Response:
    """Erase the account's contacts, events, fields, webhooks and their deliveries, relays,
    request log, rate counters and faults; its tokens, API keys, apps and administrators stay."""
    account_id = await authenticate(request)
    await request.app.state.request_log.flush()  # what this process holds of the account's
    await request.app.state.store.reset_account(account_id)
    return Response(status_code=204)


routes = [
    by_method("/rdevents/v1/sandbox/faults", POST=add_fault, GET=list_faults,
              DELETE=clear_faults),
    by_method("/rdevents/v1/sandbox/reset", POST=reset),
]
