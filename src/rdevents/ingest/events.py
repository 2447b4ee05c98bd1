"""Events: from a decoded request body to events durably stored: validate, then one job."""

from __future__ import annotations

from typing import Any

import orjson

from .. import metrics
from ..catalogue import EVENT_TYPES
from ..clock import utc_now
from ..ids import new_uuid, new_uuids
from ..process import EventsJob, RequestKey
from ..store import Store
from ..validation import (
    INVALID_FORMAT,
    ORJSON_MAX_DEPTH,
    Error,
    ValidEvent,
    check_query_event_type,
    child,
    element_index,
    error,
    is_email,
    normalise_email,
    unknown_contact_error,
    validate_batch,
    validate_event,
)
from .answers import InvalidEvents, raise_for, refuse


async def ingest_event(store: Store, account_id: int, body: Any,
                       query_event_type: str | None = None, rate_limited: bool = False,
                       key: RequestKey | None = None) -> str:
    """Store one event; return its uuid. With an idempotency key, raises Replay for a
    repeated request (see answers.py)."""
    event, errors = validate_event(body)
    if query_event_type is not None:
        errors += check_query_event_type(query_event_type, body)
    if errors or event is None:
        await refuse(store, account_id, key, errors)
    return (await _store(store, account_id, [event], None, rate_limited, key))[0]


async def ingest_batch(store: Store, account_id: int, body: list[Any], max_events: int,
                       rate_limited: bool = False,
                       key: RequestKey | None = None) -> tuple[str, list[str]]:
    """Store every event of a batch or none; return the batch uuid and the event uuids in order.
    With an idempotency key, raises Replay for a repeated request (see answers.py)."""
    events, errors = validate_batch(body, max_events)
    if errors:
        if 0 < len(body) <= max_events:
            errors += await _unknown_contacts(store, account_id, body)
            errors.sort(key=element_index)
        await refuse(store, account_id, key, errors)
    batch_uuid = new_uuid()
    return batch_uuid, await _store(store, account_id, events, batch_uuid, rate_limited, key)


async def _unknown_contacts(store: Store, account_id: int, body: list[Any]) -> list[Error]:
    """The unknown-contact errors of a batch that is rejected for other errors anyway, so that
    one answer lists every error. An element counts as creating its contact when its type creates
    contacts and its e-mail is well formed, even if the element has other errors."""
    created: set[str] = set()
    candidates: list[tuple[str, str, str]] = []
    for index, item in enumerate(body):
        payload = item.get("payload") if isinstance(item, dict) else None
        if not isinstance(payload, dict):
            continue
        name = item.get("event_type")
        email = payload.get("email") if isinstance(name, str) else None
        if not isinstance(email, str) or name not in EVENT_TYPES or not is_email(email):
            continue
        email = normalise_email(email)
        if EVENT_TYPES[name].creates_contact:
            created.add(email)
        elif email not in created:
            candidates.append((name, email, f"$.body[{index}].payload.email"))
    errors = []
    for name, email, path in candidates:
        if await store.get_contact(account_id, "email", email) is None:
            errors.append(unknown_contact_error(name, email, path))
    return errors


# The deepest document showing a payload, a contact's event history, has two levels around it.
MAX_PAYLOAD_DEPTH = ORJSON_MAX_DEPTH - 2


def stored_payloads(events: list[ValidEvent]) -> list[str]:
    """Each payload as the store keeps it (JSON text), or the errors of those that could not be
    shown: nested deeper than MAX_PAYLOAD_DEPTH."""
    payloads: list[str] = []
    errors: list[Error] = []
    for event in events:
        try:
            # Written inside the two levels of that document, which orjson refuses to write
            # (at once, as it goes down) when the payload nests too deep; then cut out of them.
            payloads.append(orjson.dumps([[event.payload]])[2:-2].decode())
        except orjson.JSONEncodeError:
            errors.append(error(
                INVALID_FORMAT, f"Must not nest JSON deeper than {MAX_PAYLOAD_DEPTH} levels.",
                child(event.path, "payload"), {"max_depth": MAX_PAYLOAD_DEPTH}))
    if errors:
        raise InvalidEvents(errors)
    return payloads


async def _store(store: Store, account_id: int, events: list[ValidEvent],
                 batch_uuid: str | None, rate_limited: bool,
                 key: RequestKey | None) -> list[str]:
    """Write the events as one job; their uuids."""
    uuids = new_uuids(len(events))
    outcome = await store.write(EventsJob(account_id, utc_now(), events, uuids,
                                          stored_payloads(events), batch_uuid, rate_limited,
                                          key))
    raise_for(outcome, "$.body" if batch_uuid else "$.body.payload")
    metrics.count_events(event.type.name for event in events)
    return uuids


