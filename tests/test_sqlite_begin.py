"""SQLite only: where a write group begins its transaction. On the event loop's thread when
SQLite's write lock is free; on the writer thread, without stalling the loop, when a program
that takes no turns holds it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from conftest import conversion
from rdevents.process import ACCEPTED
from rdevents.store.sqlite import BUSY_TIMEOUT_MS, database_path
from sqlite_store import events_job, made_database, opened


@pytest.fixture
def database(tmp_path) -> str:
    return made_database(tmp_path)


def writer_thread_calls(store) -> list[tuple]:
    """What the store hands to its writer thread, as (function name, arguments), from now on."""
    calls: list[tuple] = []
    handed = store.in_writer_thread

    def recording(function, *args):
        calls.append((function.__name__, args))
        return handed(function, *args)

    store.in_writer_thread = recording
    return calls


def test_a_group_begins_on_the_loop_when_the_write_lock_is_free(database):
    async def scenario() -> list[tuple]:
        async with opened(database) as store:
            calls = writer_thread_calls(store)
            assert await store.write(events_job([conversion("free@example.com")])) == ACCEPTED
            assert store._writer.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
            return calls

    # Only the commit (and its disk sync) went to the writer thread.
    assert [name for name, _ in asyncio.run(scenario())] == ["_commit"]


def test_a_group_waits_for_a_foreign_write_lock_on_the_writer_thread_not_the_loop(database):
    blocker = sqlite3.connect(database_path(database), isolation_level=None,
                              check_same_thread=False)

    async def scenario() -> tuple[list[tuple], float]:
        async with opened(database) as store:
            calls = writer_thread_calls(store)
            blocker.execute("BEGIN IMMEDIATE")
            waited = events_job([conversion("waited@example.com")])
            write = asyncio.ensure_future(store.write(waited))
            # The loop goes on while the group waits: ten short sleeps take about 0.1 s.
            started = time.monotonic()
            for _ in range(10):
                await asyncio.sleep(0.01)
            looped = time.monotonic() - started
            assert not write.done()
            blocker.execute("ROLLBACK")
            assert await write == ACCEPTED
            assert store._writer.execute("PRAGMA busy_timeout").fetchone() == (BUSY_TIMEOUT_MS,)
            assert not store._writer.in_transaction
            return calls, looped

    try:
        calls, looped = asyncio.run(scenario())
    finally:
        blocker.close()
    assert looped < 1.0
    assert calls == [("_execute", ("BEGIN IMMEDIATE",)), ("_commit", calls[1][1])]


def test_work_handed_to_the_writer_thread_starts_before_the_loop_comes_back(database):
    """A group's commit starts as soon as it is handed over, not once the event loop gets
    round to it behind the requests then ready (2–3 ms under load, each group)."""
    async def scenario() -> None:
        async with opened(database) as store:
            started = threading.Event()
            handed = store.in_writer_thread(started.set)
            # The loop's thread waits here without letting the loop run.
            assert started.wait(timeout=10)
            assert handed.result(timeout=10) is None

    asyncio.run(scenario())
