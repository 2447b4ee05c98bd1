"""The events list (/ui/events), live, and one event's page (/ui/events/{uuid}).

The list is whole without JavaScript. With it, ui/static/live.js asks /ui/events/live every
two seconds for the events received since the newest it shows (a few seconds earlier, so that
one whose commit came late is not missed: the script skips those it has), and adds them on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ...catalogue import EVENT_TYPE_NAMES
from ...clock import to_stored, utc_now
from ...contacts import Contact
from ...http.events import event_document
from ...store import Store
from ...store.dashboard import EventSummary
from ...validation import normalise_email
from .. import pages, times
from ..sessions import Visitor

PAGE_SIZE = 50
LIVE_LIMIT = 100  # the newest events one poll returns
LIVE_OVERLAP = timedelta(seconds=5)  # how far back each poll looks before the newest shown
_STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@dataclass(frozen=True)
class Filters:
    event_type: str | None
    email: str  # normalised; "" for any contact

    @classmethod
    def of(cls, request: Request) -> Filters:
        event_type = request.query_params.get("event_type", "").strip().upper()
        return cls(event_type if event_type in EVENT_TYPE_NAMES else None,
                   normalise_email(request.query_params.get("email", ""))[:254])

    def query(self, **more: Any) -> str:
        return pages.query(event_type=self.event_type, email=self.email, **more)


def page_number(request: Request) -> int:
    """The `page` asked for: 1 unless a whole number from 1 to 10,000."""
    text = request.query_params.get("page", "1")
    return int(text) if text.isdigit() and 1 <= int(text) <= 10_000 else 1


async def _contact(store: Store, visitor: Visitor, filters: Filters) -> Contact | None:
    if not filters.email:
        return None
    return await store.get_contact(visitor.account_id, "email", filters.email)


async def _events(store: Store, visitor: Visitor, filters: Filters, since: str | None,
                  offset: int, limit: int) -> list[EventSummary]:
    """The events the filters select (none for an e-mail no contact has)."""
    contact = await _contact(store, visitor, filters)
    if filters.email and contact is None:
        return []
    return await store.list_events(visitor.account_id, filters.event_type,
                                   contact.id if contact else None, since, offset, limit)


@pages.signed_in
async def events_page(request: Request, visitor: Visitor) -> Response:
    store, filters, page = pages.store_of(request), Filters.of(request), page_number(request)
    found = await _events(store, visitor, filters, None, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    events = found[:PAGE_SIZE]
    no_contact = bool(filters.email) and not events and \
        await _contact(store, visitor, filters) is None
    return pages.render(
        request, "events.html", visitor, events=events, filters=filters, page=page,
        more=len(found) > PAGE_SIZE, event_types=EVENT_TYPE_NAMES, no_contact=no_contact,
        live=page == 1, since=events[0].received_at if events else utc_now())


def live_row(event: EventSummary) -> dict[str, Any]:
    """An event as the live list's script shows it."""
    return {"uuid": event.uuid, "event_type": event.event_type,
            "identifier": event.identifier, "received_at": event.received_at,
            "received_at_shown": times.shown(event.received_at),
            "contact_email": event.contact_email,
            "contact_href": f"/ui/contacts/{event.contact_uuid}" if event.contact_uuid else None,
            "href": f"/ui/events/{event.uuid}"}


@pages.signed_in
async def events_live(request: Request, visitor: Visitor) -> Response:
    """The events received since `since` (a stored time), newest first, as JSON."""
    since = request.query_params.get("since", "")
    if not _STORED_TIME.fullmatch(since):
        since = utc_now()
    look_from = to_stored(times.parse(since) - LIVE_OVERLAP)
    events = await _events(pages.store_of(request), visitor, Filters.of(request), look_from,
                           0, LIVE_LIMIT)
    newest = max([since, *(event.received_at for event in events)])
    return Response(orjson.dumps({"events": [live_row(event) for event in events],
                                  "newest": newest}),
                    media_type="application/json", headers={"Cache-Control": "no-store"})


@pages.signed_in
async def event_page(request: Request, visitor: Visitor) -> Response:
    store = pages.store_of(request)
    event = await store.get_event(visitor.account_id, str(request.path_params["uuid"]).lower())
    if event is None:
        return pages.not_found(request, visitor, "event")
    contact = None
    if event.contact_uuid is not None:
        contact = await store.get_contact(visitor.account_id, "uuid", event.contact_uuid)
    stored = orjson.dumps(event_document(event), option=orjson.OPT_INDENT_2).decode()
    return pages.render(request, "event.html", visitor, event=event, contact=contact,
                        stored=stored)
