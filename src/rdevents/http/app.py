"""The ASGI application."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route

from .. import metrics, ui
from ..config import Settings
from ..ingest import Replay
from ..outbound.relay import RelaySender
from ..outbound.sender import WebhookSender
from ..pruning import Pruner
from ..request_log import RequestLogWriter
from ..sign_in import Limits, SignIn
from ..store import Store, open_store
from . import (
    account,
    consent,
    contacts,
    conversions,
    docs,
    events,
    feed,
    fields,
    home,
    oauth,
    relays,
    request_log,
    sandbox,
    webhooks,
)
from . import metrics as metrics_route
from .auth import CredentialCache, TokenLookup
from .errors import EXCEPTION_HANDLERS, JSON, ApiError
from .nul import RefuseNul
from .observe import ObservedApp


async def healthz(request: Request) -> JSON:
    """Liveness, with the depth of the write queue."""
    return JSON({"status": "ok", "pending_writes": request.app.state.store.pending_writes})


async def readyz(request: Request) -> JSON:
    """Readiness: the database answers, its schema is the one this code needs, and the webhook
    sender runs."""
    problem = (await request.app.state.store.readiness_problem()
               or request.app.state.webhook_sender.problem())
    if problem is not None:
        raise ApiError(503, "SERVICE_UNAVAILABLE", problem, {"Retry-After": "1"})
    return JSON({"status": "ready", **await _relay_detail(request)})


async def _relay_detail(request: Request) -> dict[str, Any]:
    """How the relays fare: told, never a reason to be unready (their upstream is not ours)."""
    sender: RelaySender = request.app.state.relay_sender
    try:
        relayed = await sender.summary()
    except Exception:  # the database just answered: a passing trouble
        return {}
    if not relayed and sender.running():
        return {}
    return {"relays": relayed, "relay_sender": "running" if sender.running() else "stopped"}


def create_app(settings: Settings, store: Store | None = None,
               clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The app; it opens `store` (by default the one `settings.database_url` names) on startup.
    `clock` is what the token and API key caches measure their lifetime with (monotonic)."""
    store = store or open_store(settings.database_url, max_group=settings.max_group,
                                caps=settings.caps,
                                max_pending=settings.max_pending_writes)

    sender = WebhookSender(store, settings)
    relay_sender = RelaySender(store, settings)
    token_lookup = TokenLookup(store)
    request_writer = RequestLogWriter(store, settings)
    key_pruner = Pruner("idempotency keys", store.prune_idempotency_keys,
                        settings.idempotency_retention_hours * 3600)
    store.group_observer = metrics.group_observer(lambda: store.pending_writes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        await sender.start()
        await request_writer.start()
        key_pruner.start()
        flusher = asyncio.create_task(metrics.flush_every_second())
        await relay_sender.start()
        try:
            yield
        finally:
            try:
                await relay_sender.stop()  # before the store, as the webhook sender
                await sender.stop()  # before the store: attempts under way record their outcome
                await token_lookup.close()
                await request_writer.stop()  # what it holds is stored before the store closes
                await key_pruner.stop()
            finally:
                await store.close()
                flusher.cancel()
                metrics.process_ends()

    app = ObservedApp(
        request_writer, settings.access_log,
        # fields before contacts: /platform/contacts/fields is not a contact.
        routes=[*events.routes, *conversions.routes, *fields.routes, *contacts.routes,
                *webhooks.routes, *relays.routes, *feed.routes, *consent.routes, *oauth.routes,
                *account.routes, *request_log.routes, *metrics_route.routes,
                *(sandbox.routes if settings.sandbox else ()),
                *docs.routes(settings.sandbox), *home.routes, ui.mount(),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/readyz", readyz, methods=["GET"])],
        # A repeated request's answer is its events' (events.py), not an error's.
        exception_handlers={**EXCEPTION_HANDLERS, Replay: events.replayed},
        # CORS outermost: its headers go on the conversions route's every answer.
        middleware=[Middleware(conversions.CorsOnConversions), Middleware(RefuseNul)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.request_log = request_writer
    app.state.key_pruner = key_pruner
    app.state.webhook_sender = sender
    app.state.relay_sender = relay_sender
    app.state.tokens = CredentialCache(token_lookup.find, ttl=settings.token_cache_seconds,
                                       clock=clock)
    app.state.api_keys = CredentialCache(store.find_api_key, ttl=settings.token_cache_seconds,
                                         clock=clock)
    app.state.sign_in = SignIn(store, Limits(settings.sign_in_failures_per_username,
                                             settings.sign_in_failures_per_address,
                                             settings.sign_in_window_seconds))
    return app
