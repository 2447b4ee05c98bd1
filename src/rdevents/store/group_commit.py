"""Group commit: one writer gathers concurrent write jobs into one transaction.

Each request waits for the commit of the transaction that holds its job, so an acknowledgement
always follows a durable commit, while many requests share the cost of one fsync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..process import Failed, Job, Outcome, Unavailable
from . import Overloaded, StoreUnavailable, WriteConflict

log = logging.getLogger(__name__)

_STOP = object()


class GroupCommitter:
    """Runs `commit_group(jobs) -> outcomes` for groups of queued jobs, one group at a time.

    A group holds every job waiting when the previous transaction ended, up to `max_group`.
    `commit_group` raising means the transaction did not commit: StoreUnavailable makes every
    job of the group Unavailable; any other error (one job's data the database refuses, a
    conflict with other processes) has the group halved and run again (see `_outcomes`), so
    that no job fails for another's. The queue is bounded by `max_pending`; past it `submit`
    raises Overloaded at once instead of letting memory grow.
    """

    def __init__(self, commit_group: Callable[[list[Job]], Awaitable[list[Outcome]]], *,
                 max_group: int = 256, max_pending: int = 10_000) -> None:
        self._commit_group = commit_group
        self._max_group = max_group
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Outcome]] | object] = \
            asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = 0

    @property
    def pending(self) -> int:
        """Jobs waiting for a transaction or inside the one under way."""
        return self._queue.qsize() + self._in_flight

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def submit(self, job: Job) -> Outcome:
        """Queue `job` and return its outcome once its transaction has ended."""
        if self._closing or self._task is None or self._task.done():
            raise StoreUnavailable("the writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((job, future))
        except asyncio.QueueFull:
            raise Overloaded() from None
        # Shielded: a client that disconnects must not cancel a write already queued.
        return await asyncio.shield(future)

    async def stop(self) -> None:
        """Commit everything queued, then stop."""
        if self._task is None:
            return
        self._closing = True
        await self._queue.put(_STOP)
        await self._task
        self._task = None

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            group: list[tuple[Job, asyncio.Future[Outcome]]] = []
            item = await self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)  # type: ignore[arg-type]  # anything but _STOP is a job
                if len(group) >= self._max_group or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if group:
                await self._commit(group)

    async def _commit(self, group: list[tuple[Job, asyncio.Future[Outcome]]]) -> None:
        jobs = [job for job, _ in group]
        self._in_flight = len(jobs)
        try:
            outcomes = await self._outcomes(jobs)
        finally:
            self._in_flight = 0
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _outcomes(self, jobs: list[Job]) -> list[Outcome]:
        """The outcome of each job. When the transaction fails for a reason other than the
        database being unavailable, the group is halved and each half run again, in order,
        down to single jobs: a job the database refuses fails alone, and a stream of such jobs
        costs a few transactions a group rather than one for every job."""
        try:
            return await self._commit_group(jobs)
        except StoreUnavailable as exc:  # nothing could commit
            log.error("write transaction failed: %s", exc)
            return [Unavailable(str(exc))] * len(jobs)
        except WriteConflict as exc:
            if len(jobs) == 1:  # worth retrying later: unavailable for now
                log.warning("write of one job conflicted with other writers: %s", exc)
                return [Unavailable(str(exc))]
            log.warning("write transaction of %d jobs conflicted (%s); splitting it",
                        len(jobs), exc)
        except Exception as exc:
            if len(jobs) == 1:
                log.exception("write failed")
                return [Failed(exc)]
            log.warning("write transaction of %d jobs failed (%s); splitting it", len(jobs), exc)
        half = len(jobs) // 2
        return [*await self._outcomes(jobs[:half]), *await self._outcomes(jobs[half:])]
