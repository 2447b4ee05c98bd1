"""Relays to an upstream RD Station, an extension API (/rdevents/v1/relays): each relay of the
token's account, its dead letters, and replaying them. Relays are created, changed and deleted
by the operator only (`rdevents relays`), never over HTTP."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request

from ..store.relay_records import DeadLetter, RelaySummary
from ..validation import CANNOT_BE_NULL, INVALID_FORMAT, NUL, TOO_LONG, error, type_error
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import JSON, not_found, refuse_unknown
from .paging import page_of
from .routing import by_method

DEAD_LETTERS_PAGE_SIZE = 25
MAX_REPLAYED_UUIDS = 1_000


def relay_document(relay: RelaySummary) -> dict[str, Any]:
    return dataclasses.asdict(relay)


def dead_letter_document(letter: DeadLetter) -> dict[str, Any]:
    return dataclasses.asdict(letter)


async def _find_relay(request: Request) -> tuple[int, RelaySummary]:
    account_id = await authenticate(request)
    uuid = request.path_params["uuid"].lower()
    found = await request.app.state.store.list_relays(account_id, uuid)
    if not found:
        raise not_found("Relay not found.")
    return account_id, found[0]


async def list_relays(request: Request) -> JSON:
    account_id = await authenticate(request)
    relays = await request.app.state.store.list_relays(account_id)
    return JSON({"relays": [relay_document(relay) for relay in relays]})


async def get_relay(request: Request) -> JSON:
    _, relay = await _find_relay(request)
    return JSON(relay_document(relay))


async def list_dead_letters(request: Request) -> JSON:
    """A relay's dead letters, in the order their events were accepted."""
    _, relay = await _find_relay(request)
    errors: list[Any] = []
    page = page_of(request.query_params, DEAD_LETTERS_PAGE_SIZE, errors)
    if errors:
        return JSON({"errors": errors}, 400)
    letters = await request.app.state.store.dead_letters(relay.uuid, page.offset, page.size)
    return JSON({"dead_letters": [dead_letter_document(letter) for letter in letters],
                 "page": page.number, "page_size": page.size})


async def replay_dead_letters(request: Request) -> JSON:
    """Queue dead letters again: `{"all": true}`, or `{"event_uuids": [...]}`; how many."""
    _, relay = await _find_relay(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape('object: {"all": true} or {"event_uuids": [...]}')
    refuse_unknown(sorted(set(body) - {"all", "event_uuids"}))
    every, uuids = body.get("all"), body.get("event_uuids")
    problems: list[Any] = []
    if every is not None and not isinstance(every, bool):
        problems.append(type_error("BOOLEAN", "$.body.all"))
    if uuids is not None and (not isinstance(uuids, list) or not all(
            isinstance(u, str) and NUL not in u for u in uuids)):
        problems.append(type_error("ARRAY", "$.body.event_uuids"))
    elif uuids is not None and len(uuids) > MAX_REPLAYED_UUIDS:
        problems.append(error(TOO_LONG, f"Must hold at most {MAX_REPLAYED_UUIDS} uuids: "
                                          "replay the others in another request.",
                              "$.body.event_uuids", {"max_items": MAX_REPLAYED_UUIDS}))
    if not problems and every is True and uuids is not None:
        problems.append(error(INVALID_FORMAT, 'Give "all": true or "event_uuids", not both.',
                              "$.body", {}))
    elif not problems and every is not True and uuids is None:
        problems.append(error(CANNOT_BE_NULL, 'Give "event_uuids", or "all": true.',
                              "$.body.event_uuids", {}))
    if problems:
        return JSON({"errors": problems}, 400)
    replayed = await request.app.state.store.replay_dead_letters(
        relay.uuid, None if uuids is None else [u.lower() for u in uuids])
    return JSON({"replayed": replayed})


routes = [
    by_method("/rdevents/v1/relays", GET=list_relays),
    by_method("/rdevents/v1/relays/{uuid}", GET=get_relay),
    by_method("/rdevents/v1/relays/{uuid}/dead-letters", GET=list_dead_letters),
    by_method("/rdevents/v1/relays/{uuid}/dead-letters/replay", POST=replay_dead_letters),
]
