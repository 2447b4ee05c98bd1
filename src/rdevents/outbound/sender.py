"""The webhook sender: a background task of every server process that sends what the outbox
holds, after the commit that put it there, never inside a request.

Each process takes due deliveries for the length of an attempt (see store/webhooks.py), so
processes share the work and a delivery taken by a process that dies is taken again later. A
delivery may therefore arrive more than once; its uuid (in the delivery header) tells a
receiver that it has seen it.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import orjson

from .. import __version__
from ..clock import utc_now
from ..config import Settings
from ..store import Store, StoreUnavailable
from .webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, Attempt, DueDelivery, next_delay, signature

log = logging.getLogger(__name__)

BATCH = 32  # deliveries taken, and sent concurrently, at a time
VALIDATION_HEADER = "X-RDEvents-Validation"
# How long past an attempt's timeout a taken delivery stays with its sender.
_LEASE_MARGIN = 10.0


class WebhookSender:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._timeout = settings.webhook_timeout
        self._retry_delays = tuple(settings.webhook_retry_delays)
        self._poll_seconds = settings.webhook_poll_seconds
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False,
            headers={"User-Agent": f"rdevents/{__version__}"})
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Finish the attempts under way (each within its timeout), then stop. What is still
        pending stays in the outbox for the next start."""
        self._stopping = True
        self._store.deliveries_queued.set()
        if self._task is not None:
            await self._task
        if self._client is not None:
            await self._client.aclose()

    async def check_url(self, url: str, webhook_type: str) -> str | None:
        """What is wrong with a URL a subscription is made for, or None once it answered a
        validation request with a 2xx, as RD requires."""
        body = orjson.dumps({"validation": True, "event_type": webhook_type,
                             "timestamp": utc_now()})
        try:
            response = await self._client.post(url, content=body, headers={
                "Content-Type": "application/json", VALIDATION_HEADER: "true"})
        except httpx.HTTPError as exc:
            return _describe(exc)
        if 200 <= response.status_code < 300:
            return None
        return f"it answered {response.status_code}"

    async def _run(self) -> None:
        queued = self._store.deliveries_queued
        while not self._stopping:
            due = await self._take()
            if due:
                await asyncio.gather(*(self._deliver(delivery) for delivery in due))
                continue
            queued.clear()
            try:
                await asyncio.wait_for(queued.wait(), self._poll_seconds)
            except TimeoutError:
                pass

    async def _take(self) -> list[DueDelivery]:
        now = time.time()
        try:
            return await self._store.take_due_deliveries(
                now, now + self._timeout + _LEASE_MARGIN, BATCH)
        except StoreUnavailable as exc:
            log.warning("webhook outbox unreachable: %s", exc)
        except Exception:
            log.exception("taking webhook deliveries failed")
        return []

    async def _deliver(self, delivery: DueDelivery) -> None:
        document = orjson.loads(delivery.body)
        document["timestamp"] = utc_now()  # RD's `timestamp`: when it is sent
        body = orjson.dumps(document)
        attempted_at, started = utc_now(), time.monotonic()
        status_code, problem = None, None
        try:
            response = await self._client.post(delivery.url, content=body, headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(delivery.secret, body),
                DELIVERY_HEADER: delivery.uuid})
            status_code = response.status_code
            if not 200 <= status_code < 300:
                problem = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            problem = _describe(exc)
        attempt = Attempt(attempted_at, status_code, problem,
                          round((time.monotonic() - started) * 1000))
        delay = None if problem is None else next_delay(delivery.attempts + 1,
                                                        self._retry_delays)
        status = "delivered" if problem is None else "failed" if delay is None else "pending"
        try:
            await self._store.record_attempt(delivery, attempt, status, time.time() + (delay or 0))
        except Exception:
            # The lease runs out and the delivery is sent again: late, maybe twice, not lost.
            log.exception("recording webhook delivery %s failed", delivery.uuid)


def _describe(exc: Exception) -> str:
    """An HTTP failure in a line: its kind, and what it says if anything."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
