"""The group committer's rules, on a commit function of the test's own."""

from __future__ import annotations

import asyncio

import pytest

from rdevents.process import Failed, Unavailable
from rdevents.store import Overloaded, StoreUnavailable, WriteConflict
from rdevents.store.group_commit import GroupCommitter


def run(coroutine):
    return asyncio.run(coroutine)


def test_jobs_waiting_together_share_one_transaction():
    groups = []

    async def commit(jobs):
        groups.append(list(jobs))
        await asyncio.sleep(0.01)
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        results = await asyncio.gather(*(committer.submit(i) for i in range(10)))
        await committer.stop()
        return results

    assert run(scenario()) == [None] * 10
    assert sorted(job for group in groups for job in group) == list(range(10))
    assert len(groups) < 10


def test_a_job_the_database_refuses_fails_alone():
    """A transaction that fails for one job's data is run again job by job."""
    attempts = []

    async def commit(jobs):
        attempts.append(list(jobs))
        await asyncio.sleep(0)
        if "bad" in jobs:
            raise ValueError("refused")
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        results = await asyncio.gather(*(committer.submit(job)
                                         for job in ["a", "bad", "b", "c"]))
        await committer.stop()
        return results

    results = run(scenario())
    assert [r is None for r in results] == [True, False, True, True]
    assert isinstance(results[1], Failed) and str(results[1].exception) == "refused"


def group_of(jobs, refuse):
    """Submit `jobs` together to a committer whose transactions raise `refuse(jobs)` when it
    says so; return the outcomes and the groups tried."""
    attempts = []

    async def commit(group):
        attempts.append(list(group))
        await asyncio.sleep(0)
        problem = refuse(group)
        if problem is not None:
            raise problem
        return [None] * len(group)

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        results = await asyncio.gather(*(committer.submit(job) for job in jobs))
        await committer.stop()
        return results

    return run(scenario()), attempts


def test_a_refused_job_in_a_large_group_costs_few_transactions():
    jobs = [f"job-{n}" for n in range(256)]
    jobs[200] = "bad"
    results, attempts = group_of(jobs, lambda group: ValueError() if "bad" in group else None)
    assert [r is None for r in results] == [job != "bad" for job in jobs]
    assert attempts[0] == jobs  # one group
    assert len(attempts) <= 2 * 9 + 1  # halving: two transactions a level, not 256


def test_a_group_that_keeps_conflicting_is_split_and_a_lone_conflict_is_unavailable():
    jobs = ["a", "hot", "b"]
    results, _ = group_of(jobs, lambda group: WriteConflict("deadlock") if "hot" in group
                          else None)
    assert results[0] is None and results[2] is None
    assert results[1] == Unavailable("deadlock")


def test_an_unavailable_database_fails_the_whole_group_at_once():
    calls = []

    async def commit(jobs):
        calls.append(len(jobs))
        raise StoreUnavailable("down")

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        results = await asyncio.gather(*(committer.submit(i) for i in range(5)))
        await committer.stop()
        return results

    results = run(scenario())
    assert results == [Unavailable("down")] * 5
    assert sum(calls) == 5  # no job-by-job retry against a database that is down


def test_a_full_queue_refuses_at_once_and_stop_commits_what_was_queued():
    taken, release = asyncio.Event(), asyncio.Event()
    committed = []

    async def commit(jobs):
        taken.set()
        await release.wait()
        committed.extend(jobs)
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit, max_pending=2)
        committer.start()
        first = asyncio.ensure_future(committer.submit("in-flight"))
        await taken.wait()  # the writer took it, and waits
        queued = [asyncio.ensure_future(committer.submit(n)) for n in ("q1", "q2")]
        await asyncio.sleep(0)  # they run until they wait for their outcome: queued
        with pytest.raises(Overloaded):
            await committer.submit("refused")
        stopping = asyncio.ensure_future(committer.stop())
        await asyncio.sleep(0)  # it runs until it waits for room in the queue: closing
        with pytest.raises(StoreUnavailable):
            await committer.submit("too late")
        release.set()
        await stopping
        return await asyncio.gather(first, *queued)

    assert run(scenario()) == [None, None, None]
    assert committed == ["in-flight", "q1", "q2"]


def test_groups_under_way_at_once_are_answered_each_on_its_own_commit():
    """With two slots, a second group starts while the first waits, and is answered as soon as
    it commits; a third waits for a slot; stop waits for every group under way."""
    started: list[list[str]] = []
    release = {"first": asyncio.Event(), "second": asyncio.Event(), "third": asyncio.Event()}
    committer = None

    async def commit(jobs):
        started.append(list(jobs))
        assert committer is not None and committer.pending >= len(jobs)
        await release[jobs[0]].wait()
        return [f"{job} committed" for job in jobs]

    async def until(condition):
        while not condition():
            await asyncio.sleep(0)

    async def scenario():
        nonlocal committer
        committer = GroupCommitter(commit, concurrency=2)
        committer.start()
        first = asyncio.ensure_future(committer.submit("first"))
        await until(lambda: len(started) == 1)
        second = asyncio.ensure_future(committer.submit("second"))
        await until(lambda: len(started) == 2)  # under way beside the first
        third = asyncio.ensure_future(committer.submit("third"))
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(started) == 2 and committer.pending == 3  # no slot for the third

        release["second"].set()
        assert await second == "second committed"
        assert not first.done()
        await until(lambda: len(started) == 3)  # the second's slot went to the third
        stopping = asyncio.ensure_future(committer.stop())
        release["third"].set()
        assert await third == "third committed"
        await asyncio.sleep(0.01)
        assert not stopping.done() and not first.done()  # stop waits for the first
        release["first"].set()
        await stopping
        assert committer.pending == 0
        return await first

    assert run(asyncio.wait_for(scenario(), 5)) == "first committed"
    assert started == [["first"], ["second"], ["third"]]


def test_a_group_whose_commit_breaks_is_answered_and_the_next_ones_go_on():
    """A bug after the transaction (here: outcomes that do not match the jobs) fails that
    group's jobs instead of leaving them waiting, and later groups are committed."""
    async def commit(jobs):
        await asyncio.sleep(0)
        return [] if "broken" in jobs else [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit, concurrency=2)
        committer.start()
        broken = await committer.submit("broken")
        later = await committer.submit("later")
        await committer.stop()
        return broken, later

    broken, later = run(asyncio.wait_for(scenario(), 5))
    assert isinstance(broken, Failed) and isinstance(broken.exception, ValueError)
    assert later is None


def test_beside_a_group_under_way_a_group_starts_once_as_many_jobs_wait():
    started: list[list[str]] = []
    release = asyncio.Event()

    async def commit(jobs):
        started.append(list(jobs))
        if len(started) == 1:
            await release.wait()
        return [None] * len(jobs)

    async def settle():
        for _ in range(10):
            await asyncio.sleep(0)

    async def scenario():
        committer = GroupCommitter(commit, concurrency=2)
        committer.start()
        first = [asyncio.ensure_future(committer.submit(f"a{n}")) for n in range(3)]
        await settle()
        assert started == [["a0", "a1", "a2"]]
        lone = asyncio.ensure_future(committer.submit("b0"))
        await settle()
        assert len(started) == 1  # one job would be a transaction for little: it waits
        more = [asyncio.ensure_future(committer.submit(f"b{n}")) for n in (1, 2)]
        await settle()
        assert started[1:] == [["b0", "b1", "b2"]]  # as many as the group under way
        await asyncio.gather(lone, *more)
        late = asyncio.ensure_future(committer.submit("c0"))
        await settle()
        assert len(started) == 2  # still beside the first group: it waits
        release.set()  # the first group ends: the lone job goes at once
        await asyncio.gather(*first, late)
        await committer.stop()

    run(asyncio.wait_for(scenario(), 5))
    assert started == [["a0", "a1", "a2"], ["b0", "b1", "b2"], ["c0"]]


def test_a_group_that_ends_before_an_earlier_one_is_told_of_again_when_that_one_ends():
    release = {"a": asyncio.Event(), "b": asyncio.Event(), "c": asyncio.Event()}
    started: list[str] = []
    told: list[list[str]] = []

    async def commit(jobs):
        started.append(jobs[0])
        await release[jobs[0]].wait()
        return [None] * len(jobs)

    async def until(condition):
        while not condition():
            await asyncio.sleep(0)

    async def scenario():
        committer = GroupCommitter(commit, concurrency=2, held_back=told.append)
        committer.start()
        a = asyncio.ensure_future(committer.submit("a"))
        await until(lambda: started == ["a"])
        b = asyncio.ensure_future(committer.submit("b"))
        await until(lambda: started == ["a", "b"])
        release["b"].set()
        await b
        c = asyncio.ensure_future(committer.submit("c"))
        await until(lambda: started == ["a", "b", "c"])
        assert told == []  # "a", earlier, is still under way
        release["c"].set()
        await c
        assert told == []
        release["a"].set()
        await a
        assert told == [["b"], ["c"]]  # in the order they ended, once "a" has
        await committer.stop()

    run(asyncio.wait_for(scenario(), 5))


def test_groups_one_at_a_time_are_never_held_back():
    told: list[list[int]] = []

    async def commit(jobs):
        await asyncio.sleep(0)
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit, held_back=told.append)
        committer.start()
        for n in range(5):
            await committer.submit(n)
        await committer.stop()

    run(asyncio.wait_for(scenario(), 5))
    assert told == []


def test_a_slot_whose_group_ends_begins_the_next_in_the_same_step_of_the_loop():
    """Under load each step of the event loop is a turn of every other request's work: the
    next group must not wait for one."""
    order: list[str] = []
    release = asyncio.Event()

    async def commit(jobs):
        order.append(f"commit {jobs[0]}")
        if jobs[0] == "a":
            await release.wait()
            asyncio.get_running_loop().call_soon(order.append, "next step")
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        a = asyncio.ensure_future(committer.submit("a"))
        while order != ["commit a"]:
            await asyncio.sleep(0)
        b = asyncio.ensure_future(committer.submit("b"))
        await asyncio.sleep(0)  # queued behind "a"
        release.set()
        await asyncio.gather(a, b)
        await committer.stop()

    run(asyncio.wait_for(scenario(), 5))
    assert order == ["commit a", "commit b", "next step"]


def test_a_job_whose_submitter_is_cancelled_is_written_all_the_same():
    committed: list[str] = []
    release = asyncio.Event()

    async def commit(jobs):
        await release.wait()
        committed.extend(jobs)
        return [None] * len(jobs)

    async def scenario():
        committer = GroupCommitter(commit)
        committer.start()
        gone = asyncio.ensure_future(committer.submit("gone"))
        await asyncio.sleep(0)
        gone.cancel()
        kept = asyncio.ensure_future(committer.submit("kept"))
        await asyncio.sleep(0)
        release.set()
        assert await kept is None
        await committer.stop()
        assert gone.cancelled()

    run(asyncio.wait_for(scenario(), 5))
    assert committed == ["gone", "kept"]
