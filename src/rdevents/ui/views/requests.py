"""The request log on the dashboard: the account's rejected requests (or every one kept),
newest first (/ui/requests); one request whole (/ui/requests/{uuid}), each error of its answer
shown at its place in the request body; and replaying it (a POST form), as the API's replay does.

Unauthenticated requests belong to no account: no API token lists them, the administrators do,
here (docs/api.md). None can replay them: a replay runs as its request's account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ...http.body import read_form
from ...http.request_log import body_document, replay
from ...ids import new_uuid
from ...logs import REQUEST_ID
from ...request_log import REDACTED
from ...store.request_records import LoggedRequest
from .. import pages, sessions
from ..faults import faults_of, marked_json
from ..sessions import Visitor
from .events import page_number

PAGE_SIZE = 25
# The list's filters: which requests (the store's outcome for each), and whose.
SHOWN = {"rejected": "rejected", "all": None}
SOURCES = ("account", "unauthenticated")


@dataclass(frozen=True)
class Filters:
    shown: str  # a key of SHOWN
    source: str  # one of SOURCES

    @classmethod
    def of(cls, request: Request) -> Filters:
        shown = request.query_params.get("show", "")
        source = request.query_params.get("from", "")
        return cls(shown if shown in SHOWN else "rejected",
                   source if source in SOURCES else "account")

    def owner(self, visitor: Visitor) -> int | None:
        """The account whose records are listed (None: the unauthenticated ones)."""
        return None if self.source == "unauthenticated" else visitor.account_id

    def query(self, **more: Any) -> str:
        return pages.query(show=None if self.shown == "rejected" else self.shown,
                           **{"from": None if self.source == "account" else self.source},
                           **more)


@dataclass(frozen=True)
class Replayed:
    """What a replay was answered."""

    status: int
    body: Any  # its document (body_document)

    @property
    def event_uuid(self) -> str | None:
        """The event a replay stored, if it stored one."""
        uuid = self.body.get("event_uuid") if isinstance(self.body, dict) else None
        return uuid if isinstance(uuid, str) and self.status < 300 else None


@pages.signed_in
async def requests_page(request: Request, visitor: Visitor) -> Response:
    filters, page = Filters.of(request), page_number(request)
    found = await pages.store_of(request).list_requests(
        filters.owner(visitor), SHOWN[filters.shown], (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    return pages.render(request, "requests.html", visitor, requests=found[:PAGE_SIZE],
                        more=len(found) > PAGE_SIZE, page=page, filters=filters)


def _uuid(request: Request) -> str:
    return str(request.path_params["uuid"]).lower()


def _detail(request: Request, visitor: Visitor, record: LoggedRequest,
            replayed: Replayed | None = None, status: int = 200) -> Response:
    """A request's page, with what its replay was answered if it was just replayed."""
    body = body_document(record.request_body)
    body_is_json = not record.request_body_truncated and not isinstance(body, str | None)
    faults = faults_of(body_document(record.response_body), body, body_is_json)
    return pages.render(
        request, "request.html", visitor, status, record=record, body=body,
        body_is_json=body_is_json, faults=faults,
        marked_body=marked_json(body, faults) if body_is_json else None,
        response=body_document(record.response_body), replayed=replayed,
        own=record.account_id == visitor.account_id, redacted=REDACTED)


@pages.signed_in
async def request_page(request: Request, visitor: Visitor) -> Response:
    store, uuid = pages.store_of(request), _uuid(request)
    record = await store.get_request(visitor.account_id, uuid) \
        or await store.get_request(None, uuid)
    if record is None:
        return pages.not_found(request, visitor, "request")
    return _detail(request, visitor, record)


@pages.signed_in
async def replay_request(request: Request, visitor: Visitor) -> Response:
    """Send the account's logged request again; its page then shows what the replay was
    answered (a replay is not logged, so the page is the only place that shows it)."""
    form = await read_form(request)
    if not sessions.form_is_ours(visitor, form):
        return pages.render(request, "expired.html", visitor, 403)
    record = await pages.store_of(request).get_request(visitor.account_id, _uuid(request))
    if record is None:
        return pages.not_found(request, visitor, "request")
    if not record.replayable:
        return _detail(request, visitor, record, status=409)
    status, body = await replay(request.app, record, REQUEST_ID.get() or new_uuid())
    return _detail(request, visitor, record, Replayed(status, body_document(body)))
