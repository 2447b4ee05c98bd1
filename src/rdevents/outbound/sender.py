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

import aiohttp
import orjson

from .. import __version__
from ..clock import utc_now
from ..config import Settings
from ..store import Store, StoreUnavailable
from ..store.webhooks import AttemptOutcome
from .webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, Attempt, DueDelivery, next_delay, signature

log = logging.getLogger(__name__)

BATCH = 128  # deliveries taken at a time
CONNECTIONS = 32  # requests under way at once
VALIDATION_HEADER = "X-RDEvents-Validation"
# How long past an attempt's timeout a taken delivery stays with its sender.
_LEASE_MARGIN = 10.0
_PRUNE_INTERVAL = 600.0  # seconds between looks for deliveries past the retention
_PRUNE_BATCH = 1_000


class WebhookSender:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._timeout = settings.webhook_timeout
        self._retry_delays = tuple(settings.webhook_retry_delays)
        self._poll_seconds = settings.webhook_poll_seconds
        self._retention_days = settings.webhook_retention_days
        self._next_prune = 0.0
        self._connections = asyncio.Semaphore(CONNECTIONS)
        self._client: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
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
            await self._client.close()

    async def check_url(self, url: str, webhook_type: str) -> str | None:
        """What is wrong with a URL a subscription is made for, or None once it answered a
        validation request with a 2xx, as RD requires."""
        body = orjson.dumps({"validation": True, "event_type": webhook_type,
                             "timestamp": utc_now()})
        try:
            status = await self._post(url, body, {VALIDATION_HEADER: "true"})
        except Exception as exc:
            return self._describe(exc)
        return None if 200 <= status < 300 else f"it answered {status}"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST a JSON body; the answer's status (its body is not read). Redirects are not
        followed: the URL subscribed is the one that must answer."""
        async with self._client.post(url, data=body, allow_redirects=False, headers={
                "Content-Type": "application/json", **headers}) as response:
            return response.status

    async def _run(self) -> None:
        """Take due deliveries, send them, and record the outcomes while sending the next ones
        (deliveries taken are leased: no sender takes them again meanwhile)."""
        queued = self._store.deliveries_queued
        recording: asyncio.Task | None = None
        while not self._stopping:
            await self._prune_now_and_then()
            due = await self._take()
            if due:
                outcomes = await asyncio.gather(*(self._deliver(delivery) for delivery in due))
                if recording is not None:
                    await recording
                recording = asyncio.create_task(self._record(outcomes))
                continue
            queued.clear()
            try:
                await asyncio.wait_for(queued.wait(), self._poll_seconds)
            except TimeoutError:
                pass
        if recording is not None:
            await recording

    async def _record(self, outcomes: list[AttemptOutcome]) -> None:
        try:
            await self._store.record_attempts(outcomes)
        except Exception:
            # The leases run out and the deliveries are sent again: late, maybe twice, never
            # lost.
            log.exception("recording %d webhook attempts failed", len(outcomes))

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

    async def _deliver(self, delivery: DueDelivery) -> AttemptOutcome:
        """One attempt, and what it leaves the delivery in."""
        async with self._connections:
            return await self._attempt(delivery)

    async def _attempt(self, delivery: DueDelivery) -> AttemptOutcome:
        document = orjson.loads(delivery.body)
        document["timestamp"] = utc_now()  # RD's `timestamp`: when it is sent
        body = orjson.dumps(document)
        attempted_at, started = utc_now(), time.monotonic()
        status_code, problem = None, None
        try:
            status_code = await self._post(delivery.url, body, {
                SIGNATURE_HEADER: signature(delivery.secret, body),
                DELIVERY_HEADER: delivery.uuid})
            if not 200 <= status_code < 300:
                problem = f"HTTP {status_code}"
        except Exception as exc:  # no answer, or a URL the client cannot use
            problem = self._describe(exc)
        attempt = Attempt(attempted_at, status_code, problem,
                          round((time.monotonic() - started) * 1000))
        delay = None if problem is None else next_delay(delivery.attempts + 1,
                                                        self._retry_delays)
        status = "delivered" if problem is None else "failed" if delay is None else "pending"
        return delivery, attempt, status, time.time() + (delay or 0)

    async def _prune_now_and_then(self) -> None:
        """Forget deliveries over for longer than the retention, a bounded number at a time."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + _PRUNE_INTERVAL
        cutoff = utc_now(-self._retention_days * 86_400)
        try:
            while await self._store.prune_deliveries(cutoff, _PRUNE_BATCH) == _PRUNE_BATCH:
                await asyncio.sleep(0)
        except Exception:
            log.exception("pruning old webhook deliveries failed")

    def _describe(self, exc: Exception) -> str:
        """A failed attempt in a line: what kind of failure, and what it says."""
        if isinstance(exc, TimeoutError):
            return f"Timeout: no answer within {self._timeout:g} s"
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
