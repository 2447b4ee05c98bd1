"""POST /platform/events, POST /platform/events/batch, GET /platform/events/{event_uuid}."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..ingest import Replay, ingest_batch, ingest_event
from ..store import StoredEvent
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import JSON, not_found
from .idempotency import request_key

REPLAYED = {"Idempotent-Replayed": "true"}


def accepted(event_uuids: Sequence[str], batch_uuid: str | None,
             headers: dict[str, str] | None = None) -> JSON:
    """The answer to stored events: one event's uuid, or a batch's uuid and its events'."""
    if batch_uuid is None:
        return JSON({"event_uuid": event_uuids[0]}, headers=headers)
    return JSON({"event_batch_uuid": batch_uuid,
                 "events": [{"event_uuid": event_uuid} for event_uuid in event_uuids]},
                headers=headers)


async def replayed(request: Request, exc: Replay) -> JSON:
    """A request repeated with its idempotency key: the first one's answer, byte for byte."""
    return accepted(exc.event_uuids, exc.batch_uuid, REPLAYED)


async def post_event(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape("object with event_type, event_family and payload")
    key = request_key(request, body)
    # Most requests have no query string: parsing one costs more than looking.
    query_event_type = (request.query_params.get("event_type") if request.scope["query_string"]
                        else None)
    event_uuid = await ingest_event(request.app.state.store, account_id, body, query_event_type,
                                    request.app.state.settings.rate_limits, key)
    return accepted((event_uuid,), None)


async def post_batch(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise bad_shape("array of events")
    settings = request.app.state.settings
    batch_uuid, uuids = await ingest_batch(request.app.state.store, account_id, body,
                                           settings.max_batch_events, settings.rate_limits,
                                           request_key(request, body))
    return accepted(uuids, batch_uuid)


def event_document(event: StoredEvent) -> dict[str, Any]:
    """A stored event as GET /platform/events/{event_uuid} shows it."""
    return {
        "event_uuid": event.uuid,
        "event_type": event.event_type,
        "event_family": event.event_family,
        "event_identifier": event.event_identifier,
        "payload": event.payload,
        "received_at": event.received_at,
        "contact_uuid": event.contact_uuid,
        "event_batch_uuid": event.batch_uuid,
    }


async def get_event(request: Request) -> JSON:
    account_id = await authenticate(request)
    event = await request.app.state.store.get_event(account_id,
                                                    str(request.path_params["event_uuid"]))
    if event is None:
        raise not_found("Event not found.")
    return JSON(event_document(event))


routes = [
    Route("/platform/events", post_event, methods=["POST"]),
    Route("/platform/events/batch", post_batch, methods=["POST"]),
    Route("/platform/events/{event_uuid:uuid}", get_event, methods=["GET"]),
]
