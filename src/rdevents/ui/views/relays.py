"""Relays (/ui/relays): the account's relays with their state, budget, backlog and lag; one
relay's page (/ui/relays/{uuid}) with its dead letters and their errors; and queuing dead
letters again (a POST form), with the store's operation the API's replay uses.

Relays are made by the operator (`rdevents relays`), never here. Their credentials are never
read: the store's summaries have none, and an upstream's address is shown without a user name
or password in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...http.body import read_form
from ...store.relay_records import RelaySummary
from .. import pages, sessions
from ..faults import Fault, faults_of
from ..sessions import Visitor
from .events import page_number

PAGE_SIZE = 25


@dataclass(frozen=True)
class Totals:
    """What an account's relays hold together."""

    waiting: int
    dead: int
    lag: float | None  # the age of the oldest event any of them has waiting (None: none waits)

    @classmethod
    def of(cls, relays: list[RelaySummary]) -> Totals:
        lags = [relay.lag_seconds for relay in relays if relay.lag_seconds is not None]
        return cls(sum(relay.backlog for relay in relays), sum(relay.dead for relay in relays),
                   max(lags, default=None))


def upstream(url: str) -> str:
    """A relay's upstream as pages show it: without the user name and password it may carry."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def refusal(error: str | None) -> list[Fault]:
    """The RD errors of an upstream's answer that a dead letter or a relay's last error keeps
    as it came (JSON); none for any other text, which pages show as it is."""
    if not error:
        return []
    try:
        document = orjson.loads(error)
    except orjson.JSONDecodeError:
        return []
    return faults_of(document, None, False)


async def _relay(request: Request, visitor: Visitor) -> RelaySummary | None:
    """The relay the address names, if it is of the visitor's account."""
    found = await pages.store_of(request).list_relays(
        visitor.account_id, str(request.path_params["uuid"]).lower())
    return found[0] if found else None


@pages.signed_in
async def relays_page(request: Request, visitor: Visitor) -> Response:
    relays = await pages.store_of(request).list_relays(visitor.account_id)
    return pages.render(request, "relays.html", visitor, relays=relays,
                        totals=Totals.of(relays), upstream=upstream, refusal=refusal)


@pages.signed_in
async def relay_page(request: Request, visitor: Visitor) -> Response:
    relay = await _relay(request, visitor)
    if relay is None:
        return pages.not_found(request, visitor, "relay")
    page = page_number(request)
    letters = await pages.store_of(request).dead_letters(relay.uuid, (page - 1) * PAGE_SIZE,
                                                          PAGE_SIZE + 1)
    replayed = request.query_params.get("replayed", "")
    return pages.render(request, "relay.html", visitor, relay=relay,
                        letters=letters[:PAGE_SIZE], more=len(letters) > PAGE_SIZE, page=page,
                        replayed=int(replayed) if replayed.isdigit() else None,
                        upstream=upstream, refusal=refusal)


@pages.signed_in
async def replay_dead_letters(request: Request, visitor: Visitor) -> Response:
    """Queue the relay's dead letters again: the one the form names (`event_uuid`), or all."""
    form = await read_form(request)
    if not sessions.form_is_ours(visitor, form):
        return pages.render(request, "expired.html", visitor, 403)
    relay = await _relay(request, visitor)
    if relay is None:
        return pages.not_found(request, visitor, "relay")
    one = form.get("event_uuid", "").strip().lower()
    replayed = await pages.store_of(request).replay_dead_letters(relay.uuid,
                                                                 [one] if one else None)
    return RedirectResponse(f"/ui/relays/{relay.uuid}" + pages.query(replayed=replayed), 303,
                            headers={"Cache-Control": "no-store"})
