"""Group commit: a writer gathers concurrent write jobs into one transaction.

Each request waits for the commit of the transaction that holds its job, so an acknowledgement
always follows a durable commit, while many requests share the cost of one fsync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from ..process import Failed, Job, Outcome, Unavailable
from . import Overloaded, StoreUnavailable, WriteConflict

log = logging.getLogger(__name__)

# Told of each group once its transaction has ended: its jobs, and the seconds it took.
GroupObserver = Callable[[int, float], None]
# Told of the jobs of a group that ended while an earlier group was still under way, once every
# earlier group has ended too.
HeldBack = Callable[[list[Job]], None]


class GroupCommitter:
    """Runs `commit_group(jobs) -> outcomes` for groups of queued jobs, up to `concurrency`
    groups at a time (SQLite has one writer: 1).

    Each of `concurrency` slots runs its groups one after another. A group holds every job
    waiting when its slot takes it, up to `max_group`; a slot whose group has ended takes the
    next at once, in the same step of the event loop: every step between a commit and the next
    group, under load, is a loop's turn of other requests' work during which the writer idles.
    While other groups are under way, a free slot waits until as many jobs wait as they hold,
    or until they end: a group of a job or two beside them would cost a transaction's fixed
    work (its round trips, its commit) for little. Groups under way at once may commit in any
    order; a job is answered once its own group has ended.

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
        self._max_pending = max_pending
        self._concurrency = concurrency
        self._observe = observe
        self._queue: deque[tuple[Job, asyncio.Future[Outcome]]] = deque()
        self._slots: list[asyncio.Task[None]] = []
        self._closing = False
        self._in_flight = 0
        self._changed = asyncio.Event()  # a job queued, a group ended, or closing

    @property
    def pending(self) -> int:
        """Jobs waiting for a transaction or inside those under way."""
        return len(self._queue) + self._in_flight

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._slots = [loop.create_task(self._run_slot(), name=f"group-commit-{n}")
                       for n in range(self._concurrency)]

    async def submit(self, job: Job) -> Outcome:
        """Queue `job` and return its outcome once its transaction has ended. A caller
        cancelled meanwhile (a client that disconnects) leaves the job queued: it is written
        all the same."""
        if self._closing or not self._slots or all(slot.done() for slot in self._slots):
            raise StoreUnavailable("the writer is not running")
        if len(self._queue) >= self._max_pending:
            raise Overloaded()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((job, future))
        self._changed.set()
        return await future

    async def stop(self) -> None:
        """Commit everything queued, then stop."""
        if not self._slots:
            return
        self._closing = True
        self._changed.set()
        await asyncio.wait(self._slots)
        self._slots = []

    async def _run_slot(self) -> None:
        """Take groups and commit them, one after another, until closing with nothing queued."""
        while True:
            group = self._next_group()
            if group is not None:
                await self._commit(group)
            elif self._closing and not self._queue:
                return
            else:
                self._changed.clear()
                await self._changed.wait()

    def _next_group(self) -> list[tuple[Job, asyncio.Future[Outcome]]] | None:
        """The jobs waiting, up to `max_group`, counted as under way; None if none wait, or
        if fewer wait than the groups under way hold (unless closing)."""
        if not self._queue or (self._in_flight and len(self._queue) < self._in_flight
                               and not self._closing):
            return None
        take = min(len(self._queue), self._max_group)
        group = [self._queue.popleft() for _ in range(take)]
        self._in_flight += take  # now: another slot's wait counts them
        return group

    async def _commit(self, group: list[tuple[Job, asyncio.Future[Outcome]]]) -> None:
        jobs = [job for job, _ in group]
        number, self._formed = self._formed, self._formed + 1
        self._numbers_under_way.add(number)
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
