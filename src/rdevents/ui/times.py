"""Times on the dashboard: the periods its charts count by, and how times and durations read.

Stored times are UTC text of fixed width ("2026-12-02T14:03:05.123456Z"); a period is a prefix
of them (see store/dashboard.py). Pages show times in UTC and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..clock import STORED, to_stored


@dataclass(frozen=True)
class Period:
    """A run of equal periods ending with the one `now` is in: each period's prefix of the
    stored times, and its label."""

    prefixes: tuple[str, ...]
    labels: tuple[str, ...]
    since: str  # the stored time the first period starts at

    def index(self) -> dict[str, int]:
        return {prefix: i for i, prefix in enumerate(self.prefixes)}


def parse(stored: str) -> datetime:
    return datetime.strptime(stored, STORED).replace(tzinfo=UTC)


def minutes(now: datetime, count: int, size: int) -> Period:
    """`count` periods of `size` minutes (1 or 10), the last holding `now`."""
    if size not in (1, 10):
        raise ValueError("periods of 1 or 10 minutes")
    last = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % size)
    starts = [last - timedelta(minutes=size * (count - 1 - i)) for i in range(count)]
    length = 16 if size == 1 else 15
    return Period(tuple(to_stored(start)[:length] for start in starts),
                  tuple(start.strftime("%H:%M") for start in starts), to_stored(starts[0]))


def days(now: datetime, count: int) -> Period:
    """`count` days, the last being today (UTC)."""
    last = now.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [last - timedelta(days=count - 1 - i) for i in range(count)]
    return Period(tuple(to_stored(start)[:10] for start in starts),
                  tuple(start.strftime("%b %d") for start in starts), to_stored(starts[0]))


def shown(stored: str | None) -> str:
    """A stored time as pages show it: "2026-12-02 14:03:05 UTC"."""
    if not stored:
        return ""
    return f"{stored[:10]} {stored[11:19]} UTC"


def duration(seconds: float) -> str:
    """A length of time in its two largest units: "45 s", "4 min 12 s", "2 h 5 min", "3 d 4 h"."""
    whole = max(int(seconds), 0)
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        amount, whole = divmod(whole, size)
        if amount or (parts and len(parts) < 2):
            parts.append(f"{amount} {name}")
        if len(parts) == 2:
            break
    return " ".join(part for part in parts if not part.startswith("0 ")) or "0 s"


def age(stored: str, now: datetime) -> float:
    """Seconds from a stored time to `now`."""
    return (now - parse(stored)).total_seconds()
