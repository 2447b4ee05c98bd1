"""A SQLite store of the tests' own, opened without a server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from rdevents.clock import utc_now
from rdevents.ids import new_uuid
from rdevents.ingest.events import stored_payloads
from rdevents.process import EventsJob
from rdevents.store.sqlite import SQLiteStore, make_directory
from rdevents.validation import validate_batch


def made_database(directory: Path) -> str:
    """The URL of a SQLite database under `directory`, made by a first opening of its store."""
    url = f"sqlite:///{directory}/data/rdevents.db"
    make_directory(url)

    async def make() -> None:
        async with opened(url):
            pass

    asyncio.run(make())
    return url


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def events_job(items: list[dict], batch_uuid: str | None = None) -> EventsJob:
    """The write job of account 1 for these (valid) events, as a request would make it."""
    events, errors = validate_batch(items, 100)
    assert not errors
    return EventsJob(1, utc_now(), events, [new_uuid() for _ in events],
                     stored_payloads(events), batch_uuid)
