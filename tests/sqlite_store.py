"""A SQLite store of the tests' own, opened without a server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from rdevents.store.sqlite import SQLiteStore, make_directory


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
