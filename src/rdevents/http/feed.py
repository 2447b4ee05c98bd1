"""The event feed, an extension API: an account's events in the order they became final, each
once to a reader that follows `next_cursor` from the start (see store/feed.py).

    GET /rdevents/v1/events?after=CURSOR&limit=N&wait=SECONDS&event_type=T&since=TIME

The cursor is opaque to readers: it names a place in the feed. `wait` holds an empty answer
back until events come, or that many seconds pass (long polling).
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from datetime import datetime
from typing import Any

from starlette.requests import Request

from ..clock import to_stored
from ..store import StoredEvent
from ..store.feed import START, FeedPage, FeedPosition
from ..validation import Error, format_error, is_rfc3339
from .auth import authenticate
from .errors import JSON
from .paging import event_types_of, positive_int
from .routing import by_method

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
MAX_WAIT = 30  # seconds: below the idle timeouts of the usual proxies
# How often a waiting reader looks for the events other processes commit (this process's own
# wake it at once).
POLL_SECONDS = 0.5


def cursor(position: FeedPosition) -> str:
    return base64.urlsafe_b64encode(f"{position.xid}.{position.id}".encode()).decode().rstrip("=")


def position_of(text: str | None, errors: list[Error]) -> FeedPosition:
    """The place a cursor names; the start for none."""
    if text is None:
        return START
    try:
        xid, _, event_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)
                                                    ).decode().partition(".")
        position = FeedPosition(int(xid), int(event_id))
        if not all(-2**63 <= number < 2**63 for number in position):  # the columns' range
            raise ValueError(text)
    except (ValueError, binascii.Error):
        errors.append(format_error("Must be a next_cursor this API answered.", "cursor",
                                   "$.query.after"))
        return START
    return position


def seconds_of(text: str | None, errors: list[Error]) -> float:
    try:
        seconds = float(text) if text is not None else 0.0
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= MAX_WAIT:  # NaN too
        errors.append(format_error(f"Must be a number of seconds from 0 to {MAX_WAIT}.",
                                   f"0..{MAX_WAIT}", "$.query.wait"))
        return 0.0
    return seconds


def time_of(text: str | None, errors: list[Error]) -> str | None:
    """An RFC 3339 time as events' times are stored, to compare with them."""
    if text is None:
        return None
    try:
        if not is_rfc3339(text):
            raise ValueError(text)
        return to_stored(datetime.fromisoformat(text))
    except ValueError:
        errors.append(format_error(
            "Must be an RFC 3339 date-time (example: '2026-12-02T15:00:00Z').", "date-time",
            "$.query.since"))
        return None


def feed_event(event: StoredEvent) -> dict[str, Any]:
    return {"event_uuid": event.uuid, "event_type": event.event_type,
            "event_family": event.event_family, "payload": event.payload,
            "contact_uuid": event.contact_uuid, "received_at": event.received_at}


async def read_events(request: Request) -> JSON:
    account_id = await authenticate(request)
    query = request.query_params
    errors: list[Error] = []
    after = position_of(query.get("after"), errors)
    limit = min(positive_int(query.get("limit", str(DEFAULT_LIMIT)), "$.query.limit", errors),
                MAX_LIMIT)
    wait = seconds_of(query.get("wait"), errors)
    event_types = event_types_of(query, errors)
    since = time_of(query.get("since"), errors)
    if errors:
        return JSON({"errors": errors}, 400)
    store = request.app.state.store
    deadline = time.monotonic() + wait
    while True:
        page: FeedPage = await store.read_feed(account_id, after, limit, event_types, since)
        left = deadline - time.monotonic()
        if page.events or left <= 0 or await request.is_disconnected():
            break
        after = page.next
        await store.commits.wait(account_id, min(left, POLL_SECONDS))
    return JSON({"events": [feed_event(event) for event in page.events],
                 "next_cursor": cursor(page.next)})


routes = [by_method("/rdevents/v1/events", GET=read_events)]
