"""Time as rdevents stores it: UTC, ISO 8601, fixed width, so that text order is time order."""

import functools
import time
from datetime import UTC, datetime

STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now(offset_seconds: float = 0) -> str:
    """Now (plus `offset_seconds`), e.g. 2026-11-27T08:58:01.123456Z."""
    micros = time.time_ns() // 1000 + round(offset_seconds * 1_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_whole_second(seconds)}.{fraction:06d}Z"


@functools.lru_cache(maxsize=4)
def _whole_second(seconds: int) -> str:
    """The date and time of a second: formatted once for every call within that second."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def to_stored(moment: datetime) -> str:
    """A moment as stored (a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(STORED)
