"""GET /metrics: Prometheus' text format (see rdevents/metrics.py).

Open unless the server has a metrics token (`--metrics-token`), which a scraper then sends as a
Bearer token; either way, keep it off the public internet (it tells traffic and backlogs).
"""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import metrics
from ..store import StoreUnavailable
from ..store.request_records import OutboxBacklog
from .errors import ApiError

log = logging.getLogger(__name__)


async def get_metrics(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 token.encode()):
            raise ApiError(401, "UNAUTHORIZED", "Invalid token.",
                           {"WWW-Authenticate": 'Bearer realm="rdevents metrics"'})
    store = request.app.state.store
    backlogs: list[OutboxBacklog] | None
    try:
        backlogs = await store.outbox_backlog()
    except StoreUnavailable as exc:  # the rest is still worth scraping
        log.warning("the outboxes' backlog is unknown: %s", exc)
        backlogs = None
    return Response(metrics.exposition(store.pending_writes, backlogs),
                    media_type=metrics.CONTENT_TYPE)


routes = [Route("/metrics", get_metrics, methods=["GET"])]
