"""The webhook sender: a background task of every server process that sends what the outbox
holds, after the commit that put it there, never inside a request.

Each process takes due deliveries for the length of an attempt (see store/webhooks.py), so
processes share the work and a delivery taken by a process that dies is taken again later. A
delivery may therefore arrive more than once; its uuid (in the delivery header) tells a
receiver that it has seen it.

Each attempt runs on its own, and new deliveries are taken as attempts end: at most
`webhook_concurrency` attempts are under way in a process, and at most
`webhook_concurrency_per_account` of one account, so a receiver that hangs holds up only its
own account's deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import aiohttp
import orjson

from .. import metrics
from ..clock import utc_now
from ..config import Settings
from ..pruning import PRUNE_INTERVAL, prune_past
from ..store import Store, StoreUnavailable
from ..store.webhook_records import Attempt, DueDelivery
from ..store.webhooks import AttemptOutcome
from ..webhook_rules import DELIVERY_HEADER, SIGNATURE_HEADER, next_delay, signature
from .client import describe, open_client
from .targets import ForbiddenTarget, TargetRules, parse_networks

log = logging.getLogger(__name__)

VALIDATION_HEADER = "X-RDEvents-Validation"
# How long past an attempt's timeout a taken delivery stays with its sender (its lease).
_LEASE_MARGIN = 10.0
# How long a sender lets attempts end together before it records them and takes deliveries for
# their places: a write transaction for each attempt would cost more than the attempts.
_GATHER_SECONDS = 0.002


class WebhookSender:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._rules = TargetRules(parse_networks(settings.webhook_allowed_networks))
        self._timeout = settings.webhook_timeout
        self._retry_delays = tuple(settings.webhook_retry_delays)
        self._poll_seconds = settings.webhook_poll_seconds
        self._retention_days = settings.webhook_retention_days
        self._concurrency = settings.webhook_concurrency
        self._per_account = settings.webhook_concurrency_per_account
        self._next_prune = 0.0
        self._client: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy: Counter[int] = Counter()  # attempts under way, by account
        self._attempts: set[asyncio.Task[None]] = set()
        self._attempt_ended = asyncio.Event()
        self._outcomes: list[AttemptOutcome] = []  # attempts made, to record
        self._recording: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._client = open_client(self._rules, self._timeout)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook-sender")

    async def stop(self) -> None:
        """Finish the attempts under way (each within its timeout) and record them, then stop.
        What is still pending stays in the outbox for the next start."""
        self._stopping = True
        self._store.deliveries_queued.set()
        if self._task is not None:
            # A task that died (see problem()) has nothing to finish; say so, don't raise.
            for outcome in await asyncio.gather(self._task, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    log.warning("the webhook sender had stopped: %r", outcome)
        if self._client is not None:
            await self._client.close()

    async def check_url(self, url: str, webhook_type: str) -> str | None:
        """What is wrong with a URL a subscription is made for, or None once it answered a
        validation request with a 2xx, as RD requires. Raises ForbiddenTarget for a URL
        webhooks may not be sent to."""
        body = orjson.dumps({"validation": True, "event_type": webhook_type,
                             "timestamp": utc_now()})
        try:
            status = await self._post(url, body, {VALIDATION_HEADER: "true"})
        except ForbiddenTarget:
            raise
        except Exception as exc:
            return describe(exc, self._timeout)
        return None if 200 <= status < 300 else f"it answered {status}"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST a JSON body; the answer's status (its body is not read). Redirects are not
        followed: the URL subscribed is the one that must answer."""
        self._rules.check_url(url)
        if self._client is None:
            raise RuntimeError("the webhook sender is not started")
        async with self._client.post(url, data=body, allow_redirects=False, headers={
                "Content-Type": "application/json", **headers}) as response:
            return response.status

    def problem(self) -> str | None:
        """None while the sender runs as it should (for /readyz)."""
        if self._task is not None and self._task.done() and not self._stopping:
            return "The webhook sender has stopped: see the log."
        return None

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._round()
            except Exception:
                log.exception("a round of the webhook sender failed")
                await asyncio.sleep(self._poll_seconds)
        if self._attempts:
            await asyncio.wait(self._attempts)
        if self._recording is not None:
            await self._recording

    async def _round(self) -> None:
        """Start attempts for as many due deliveries as there is room for, then wait until an
        attempt ends, a write of this process queues deliveries, or the poll interval passes."""
        await self._prune_now_and_then()
        queued = self._store.deliveries_queued
        queued.clear()  # before looking: a write queued after this wakes the wait below
        self._attempt_ended.clear()
        room = self._concurrency - sum(self._busy.values())
        if room > 0:
            for delivery in await self._take(room):
                self._busy[delivery.account_id] += 1
                attempt = asyncio.create_task(self._attempt_and_keep(delivery))
                self._attempts.add(attempt)
                attempt.add_done_callback(self._attempts.discard)
        await _first_of(queued, self._attempt_ended, timeout=self._poll_seconds)
        if not queued.is_set():
            await asyncio.sleep(_GATHER_SECONDS)  # for the attempts ending about now

    async def _take(self, room: int) -> list[DueDelivery]:
        try:
            return await self._store.take_due_deliveries(
                self._timeout + _LEASE_MARGIN, room, self._per_account, dict(self._busy))
        except StoreUnavailable as exc:
            log.warning("webhook outbox unreachable: %s", exc)
        except Exception:
            log.exception("taking webhook deliveries failed")
        return []

    async def _attempt_and_keep(self, delivery: DueDelivery) -> None:
        """Make an attempt and have its outcome recorded, with those that end meanwhile."""
        try:
            outcome = await self._attempt(delivery)  # before naming the list: it is swapped
            self._outcomes.append(outcome)
            if self._recording is None or self._recording.done():
                self._recording = asyncio.create_task(self._record_outcomes())
        finally:
            self._busy[delivery.account_id] -= 1
            if not self._busy[delivery.account_id]:
                del self._busy[delivery.account_id]
            self._attempt_ended.set()

    async def _record_outcomes(self) -> None:
        """Record what attempts have ended, in batches, until none is left: one recording at a
        time, the attempts ending meanwhile make the next batch."""
        await asyncio.sleep(_GATHER_SECONDS)  # for the attempts ending about now
        while self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            await self._record(outcomes)

    async def _record(self, outcomes: list[AttemptOutcome]) -> None:
        """One transaction for the batch; if it fails, one for each outcome, so that one
        delivery's trouble does not make the others be sent again."""
        try:
            await self._store.record_attempts(outcomes)
            return
        except StoreUnavailable as exc:
            # Nothing can be recorded: the leases run out and these are sent again.
            log.warning("recording %d webhook attempts failed: %s", len(outcomes), exc)
            return
        except Exception as exc:
            log.warning("recording %d webhook attempts failed (%s); one by one", len(outcomes),
                        exc)
        for outcome in outcomes:
            try:
                await self._store.record_attempts([outcome])
            except Exception:
                # Its lease runs out and it is sent again: late, maybe twice, never lost.
                log.exception("recording an attempt of webhook delivery %s failed",
                              outcome[0].uuid)

    async def _attempt(self, delivery: DueDelivery) -> AttemptOutcome:
        """One attempt, and what it leaves the delivery in."""
        attempted_at, started = utc_now(), time.monotonic()
        status_code, problem = None, None
        try:
            document = orjson.loads(delivery.body)
            document["timestamp"] = utc_now()  # RD's `timestamp`: when it is sent
            body = orjson.dumps(document)
            status_code = await self._post(delivery.url, body, {
                SIGNATURE_HEADER: signature(delivery.secret, body),
                DELIVERY_HEADER: delivery.uuid})
            if not 200 <= status_code < 300:
                problem = f"HTTP {status_code}"
        except Exception as exc:  # no answer, or a URL webhooks may not be sent to
            problem = describe(exc, self._timeout)
        attempt = Attempt(attempted_at, status_code, problem,
                          round((time.monotonic() - started) * 1000))
        delay = None if problem is None else next_delay(delivery.attempts + 1,
                                                        self._retry_delays)
        status = "delivered" if problem is None else "failed" if delay is None else "pending"
        metrics.count_webhook_attempt(status)
        return delivery, attempt, status, delay or 0.0

    async def _prune_now_and_then(self) -> None:
        """Forget deliveries over for longer than the retention, a bounded number at a time."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL
        try:
            await prune_past(self._store.prune_deliveries, self._retention_days * 86_400,
                             lambda: self._stopping)
        except Exception:
            log.exception("pruning old webhook deliveries failed")


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
