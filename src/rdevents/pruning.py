"""Forgetting what is kept for a time (the request log, webhook deliveries, idempotency keys)
once its retention is over: in the background, a bounded number of rows a transaction, so that
no prune holds the database long."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .clock import utc_now

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 600.0  # seconds between prunes
PRUNE_BATCH = 1_000  # rows a transaction

# Drops up to `limit` rows kept before `cutoff` (a stored time); how many it dropped.
Prune = Callable[[str, int], Awaitable[int]]


async def prune_past(prune: Prune, retention_seconds: float,
                     stopping: Callable[[], bool] = lambda: False) -> None:
    """Drop every row kept longer than `retention_seconds`, PRUNE_BATCH at a time, unless
    `stopping` says to stop."""
    cutoff = utc_now(-retention_seconds)
    while await prune(cutoff, PRUNE_BATCH) == PRUNE_BATCH and not stopping():
        await asyncio.sleep(0)


class Pruner:
    """Prunes one kind of row every PRUNE_INTERVAL seconds, in a task of its own, for what has
    no background task to do it in."""

    def __init__(self, what: str, prune: Prune, retention_seconds: float) -> None:
        self._what = what
        self._prune = prune
        self._retention_seconds = retention_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"prune {self._what}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def prune(self) -> None:
        try:
            await prune_past(self._prune, self._retention_seconds, self._stopping.is_set)
        except Exception:  # the database's trouble, or a defect: the next prune tries again
            log.exception("pruning %s failed", self._what)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self.prune()
            try:
                await asyncio.wait_for(self._stopping.wait(), PRUNE_INTERVAL)
            except TimeoutError:
                continue
