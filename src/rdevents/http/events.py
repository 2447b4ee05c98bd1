"""POST /platform/events, POST /platform/events/batch, GET /platform/events/{event_uuid}."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from ..ingest import ingest_batch, ingest_event
from ..store import StoredEvent
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import JSON, not_found


async def post_event(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape("object with event_type, event_family and payload")
    # Most requests have no query string: parsing one costs more than looking.
    query_event_type = (request.query_params.get("event_type") if request.scope["query_string"]
                        else None)
    event_uuid = await ingest_event(request.app.state.store, account_id, body, query_event_type,
                                    request.app.state.settings.rate_limits)
    return JSON({"event_uuid": event_uuid})


async def post_batch(request: Request) -> JSON:
    account_id = await authenticate(request)
    body = await read_json(request)
    if not isinstance(body, list):
        raise bad_shape("array of events")
    settings = request.app.state.settings
    batch_uuid, uuids = await ingest_batch(request.app.state.store, account_id, body,
                                           settings.max_batch_events, settings.rate_limits)
    return JSON({"event_batch_uuid": batch_uuid,
                 "events": [{"event_uuid": event_uuid} for event_uuid in uuids]})


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
