"""The event feed's records, and how a process tells its feed readers that events committed.

A reader's place in an account's feed is a `FeedPosition`: the events after it, up to the
store's horizon, are read in feed order (see `SqlStore.read_feed`). Every event at or before the
horizon is final: no event can commit there later, so a reader that moves to the horizon misses
none. On SQLite one writer commits at a time and takes ids in order: the feed is id order, and
the horizon the highest id committed. On PostgreSQL, writers commit in any order: the feed is
(id of the writing transaction, id) order, and the horizon stops below the oldest transaction
still running (see postgres.py).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # the package imports this module first
    from . import StoredEvent


class FeedPosition(NamedTuple):
    """A place in the feed (after the event at it): the writing transaction's id (0 on
    SQLite) and the event's id. Positions compare in feed order."""

    xid: int
    id: int


START = FeedPosition(-1, 0)  # before every event


@dataclass(frozen=True)
class FeedPage:
    events: list[StoredEvent]
    next: FeedPosition  # where the next page starts


class Commits:
    """Wakes the feed readers of an account that wait for its events, when this process
    commits some; costs a write nothing when no one waits."""

    def __init__(self) -> None:
        self._waiting: dict[int, asyncio.Event] = {}

    def committed(self, account_id: int) -> None:
        event = self._waiting.pop(account_id, None)
        if event is not None:
            event.set()

    async def wait(self, account_id: int, timeout: float) -> None:
        """Until this process commits events of the account, or `timeout` seconds."""
        event = self._waiting.setdefault(account_id, asyncio.Event())
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
