"""SQLite only: what the writer writes besides the database. Under writes that never pause,
the WAL is started over from its beginning rather than growing until a lull (see
_Checkpointer); statement journals stay in memory; True, False and None are bound without a
search for an adapter."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest

from conftest import conversion
from rdevents.ids import new_uuid
from rdevents.process import ACCEPTED, EventsJob
from rdevents.store.sqlite import _Checkpointer, database_path
from sqlite_store import events_job, made_database, opened

GROUPS = 200  # transactions, written back to back
PAGE = 4096


def job(group: int) -> EventsJob:
    """Twenty new contacts with their events."""
    return events_job([conversion(f"wal-{group}-{k}@example.com", name="Ana", tags=["a", "b"])
                       for k in range(20)], new_uuid())


def largest_wal(database_url: str) -> int:
    """Write GROUPS transactions with no pause between them (the next job is queued before
    each commit ends), checkpointing every 10 ms; the largest the WAL file grew, in pages."""
    wal = database_path(database_url) + "-wal"

    async def scenario() -> int:
        async with opened(database_url) as store:
            jobs = [job(group) for group in range(GROUPS)]
            largest = 0
            pending = [asyncio.ensure_future(store.write(one)) for one in jobs[:2]]
            for one in jobs[2:]:
                assert await pending.pop(0) == ACCEPTED
                largest = max(largest, os.path.getsize(wal))
                pending.append(asyncio.ensure_future(store.write(one)))
            assert await asyncio.gather(*pending) == [ACCEPTED, ACCEPTED]
            return largest // PAGE

    return asyncio.run(scenario())


@pytest.fixture
def database(tmp_path) -> str:
    return made_database(tmp_path)


def test_a_writer_that_never_pauses_keeps_the_wal_small(database, monkeypatch):
    monkeypatch.setattr(_Checkpointer, "INTERVAL", 0.01)
    # Without the writer's rewinds, the WAL holds most of the pages the groups wrote ...
    monkeypatch.setattr(_Checkpointer, "REWIND_FRAMES", 10**9)
    assert largest_wal(database) > 2_000
    # ... with them, it is started over soon after it passes REWIND_FRAMES.
    monkeypatch.setattr(_Checkpointer, "REWIND_FRAMES", 50)
    assert largest_wal(database) < 1_000


def test_the_writer_keeps_its_statement_journals_in_memory(database):
    """A group's INSERT of many rows journals the pages it changes, in case it must be undone
    alone; a journal past 64 KiB went to a temporary file, written on the event loop's thread."""
    async def scenario() -> int:
        async with opened(database) as store:
            assert await store.write(job(0)) == ACCEPTED
            return store._writer.execute("PRAGMA temp_store").fetchone()[0]

    assert asyncio.run(scenario()) == 2  # MEMORY


def test_true_false_and_none_are_bound_through_adapters_as_sqlite_stores_them(database):
    """Without an adapter of their own, each of these values costs Python's sqlite3 a failed
    search for one (two exceptions raised and cleared); a new contact binds seven."""
    assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)] is int
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    with sqlite3.connect(database_path(database)) as conn:
        assert conn.execute("SELECT ?, typeof(?), ?, typeof(?), typeof(?)",
                            (True, True, False, False, None)).fetchone() == (
            1, "integer", 0, "integer", "null")
