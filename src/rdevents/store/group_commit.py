"""Group commit: a writer gathers concurrent write jobs into one transaction.

Each request waits for the commit of the transaction that holds its job, so an acknowledgement
always follows a durable commit, while many requests share the cost of one fsync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from ..process import Failed, Job, Outcome, Unavailable
from . import Overloaded, StoreUnavailable, WriteConflict

log = logging.getLogger(__name__)

_STOP = object()

# Told of each group once its transaction has ended: its jobs, and the seconds it took.
GroupObserver = Callable[[int, float], None]
# Told of the jobs of a group that ended while an earlier group was still under way, once every
# earlier group has ended too.
HeldBack = Callable[[list[Job]], None]


class GroupCommitter:
    """Runs `commit_group(jobs) -> outcomes` for groups of queued jobs, up to `concurrency`
    groups at a time (SQLite has one writer: 1).

    A group holds every job waiting when a slot comes free (with one slot: when the previous
    transaction ended), up to `max_group`. While other groups are under way, a free slot waits
    until as many jobs wait as they hold, or until they end: a group of a job or two beside
    them would cost a transaction's fixed work (its round trips, its commit) for little. Groups
    under way at once may commit in any order; a job is answered once its own group has ended.

    `commit_group` raising means the transaction did not commit: StoreUnavailable makes every
    job of the group Unavailable; any other error (one job's data the database refuses, a
    conflict with other transactions) has the group halved and run again (see `_outcomes`),
    so that no job fails for another's. The queue is bounded by `max_pending`; past it `submit`
    raises Overloaded at once instead of letting memory grow. `observe`, if given, is told of
    each group (for the metrics). `held_back`, if given, is told of each group that ended while
    an earlier one was under way, once all earlier ones have ended: where a transaction's
    changes are shown in order only after those of the transactions before it (PostgreSQL's
    event feed), whoever was told of its commit at once must be told again then.
    """

    def __init__(self, commit_group: Callable[[list[Job]], Awaitable[list[Outcome]]], *,
                 max_group: int = 256, max_pending: int = 10_000, concurrency: int = 1,
                 observe: GroupObserver | None = None,
                 held_back: HeldBack | None = None) -> None:
        self._commit_group = commit_group
        self._held_back = held_back
        self._formed = 0  # how many groups have been formed: each one's number, in order
        self._numbers_under_way: set[int] = set()
        self._ended_early: list[tuple[int, list[Job]]] = []  # before an earlier group
        self._max_group = max_group
        self._concurrency = concurrency
        self._observe = observe
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Outcome]] | object] = \
            asyncio.Queue(maxsize=max_pending)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = 0
        self._changed = asyncio.Event()  # a job queued, or a group ended

    @property
    def pending(self) -> int:
        """Jobs waiting for a transaction or inside those under way."""
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
        self._changed.set()
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
        slots = asyncio.Semaphore(self._concurrency)
        under_way: set[asyncio.Task[None]] = set()
        try:
            await self._start_groups(slots, under_way)
        finally:  # stopped, or cancelled: the groups under way still end, and answer
            if under_way:
                await asyncio.wait(under_way)

    async def _start_groups(self, slots: asyncio.Semaphore,
                            under_way: set[asyncio.Task[None]]) -> None:
        """Start a group in each slot that comes free, until the queue says stop."""
        stopping = False
        while not stopping:
            group: list[tuple[Job, asyncio.Future[Outcome]]] = []
            await slots.acquire()  # first: the group takes all that waits once a slot is free
            await self._enough_waiting()
            item = await self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)  # type: ignore[arg-type]  # anything but _STOP is a job
                if len(group) >= self._max_group or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if not group:
                slots.release()
                continue
            self._in_flight += len(group)  # now: the next slot's wait counts them
            number, self._formed = self._formed, self._formed + 1
            self._numbers_under_way.add(number)
            task = asyncio.get_running_loop().create_task(self._commit(group, number))
            under_way.add(task)
            task.add_done_callback(under_way.discard)
            task.add_done_callback(lambda _: slots.release())

    async def _enough_waiting(self) -> None:
        """Until as many jobs wait as the groups under way hold, or none is under way."""
        while self._in_flight and self._queue.qsize() < self._in_flight:
            self._changed.clear()
            await self._changed.wait()

    async def _commit(self, group: list[tuple[Job, asyncio.Future[Outcome]]],
                      number: int) -> None:
        jobs = [job for job, _ in group]
        started = time.perf_counter()
        try:
            outcomes = await self._outcomes(jobs)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)
        except Exception as exc:  # a bug: still, no request may wait for ever
            log.exception("a write group failed")
            _answer_the_rest(group, Failed(exc))
            return
        except BaseException:  # cancelled
            _answer_the_rest(group, Unavailable("the write was interrupted"))
            raise
        finally:
            self._in_flight -= len(jobs)
            self._changed.set()
            self._numbers_under_way.discard(number)
            if self._held_back is not None:
                self._tell_held_back(number, jobs)
        seconds = time.perf_counter() - started
        if self._observe is not None:  # once the requests have their outcomes
            try:
                self._observe(len(jobs), seconds)
            except Exception:
                log.exception("observing a write group failed")

    def _tell_held_back(self, number: int, jobs: list[Job]) -> None:
        """Group `number` has ended: keep it if an earlier one is under way; tell of those kept
        that no earlier group holds back any more."""
        assert self._held_back is not None
        oldest = min(self._numbers_under_way, default=None)
        if oldest is not None and oldest < number:
            self._ended_early.append((number, jobs))
        kept = []
        for ended, held_jobs in self._ended_early:
            if oldest is None or ended < oldest:
                try:
                    self._held_back(held_jobs)
                except Exception:
                    log.exception("telling of a group held back failed")
            else:
                kept.append((ended, held_jobs))
        self._ended_early = kept

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


def _answer_the_rest(group: list[tuple[Job, asyncio.Future[Outcome]]], outcome: Outcome) -> None:
    for _, future in group:
        if not future.done():
            future.set_result(outcome)
