"""RD's rate limits, as pure rules: quotas, fixed windows, and what a job would use.

Off unless the server runs with `--rate-limits rd`. Then an account may send 120 events a
minute (500 on the "advanced" plan) and 120 events a day per contact, unless the account has
limits of its own; a batch counts each of its events. Counters live in the database, so every
process sharing it counts together; a refused request stores and counts nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

MINUTE = 60
DAY = 86_400
PLANS = {"standard": 120, "advanced": 500}  # events per account per minute
PER_CONTACT_PER_DAY = 120

ACCOUNT = ""  # the subject of an account's own counter; contact counters use the e-mail

CounterKey = tuple[int, str, int]  # (account id, subject, window start)


@dataclass(frozen=True)
class Quota:
    per_minute: int
    per_contact_day: int


def quota(plan: str, per_minute: int | None, per_contact_day: int | None) -> Quota:
    """An account's quota: its own limits where it has them, its plan's otherwise."""
    return Quota(per_minute or PLANS.get(plan, PLANS["standard"]),
                 per_contact_day or PER_CONTACT_PER_DAY)


@dataclass(frozen=True)
class Limited:
    """A job refused for a rate limit: what RD's 429 says about it."""

    scope: str  # "account" or "contact"
    key: str  # the e-mail, for the per-contact limit
    max: int
    usage: int
    period: int
    remaining_time: int  # seconds until the window ends
    alone: bool  # the job passes the limit by itself: it could never be accepted


def window(now: float, period: int) -> int:
    return int(now // period) * period


def seconds_left(start: int, period: int, now: float) -> int:
    """Whole seconds until the window that began at `start` ends, 1 at least (Retry-After)."""
    return max(1, int(start + period - now))


def job_counters(account_id: int, emails: list[str], now: float) -> Counter[CounterKey]:
    """What a job of these events would add to each counter."""
    counts: Counter[CounterKey] = Counter()
    counts[(account_id, ACCOUNT, window(now, MINUTE))] += len(emails)
    day = window(now, DAY)
    for email in emails:
        counts[(account_id, email, day)] += 1
    return counts


def check(adds: Counter[CounterKey], current: dict[CounterKey, int], limits: Quota,
          now: float) -> Limited | None:
    """The limit the job would break, the account's first; None when it fits."""
    for (account_id, subject, start), added in sorted(adds.items(), key=lambda kv: kv[0][1]):
        usage = current.get((account_id, subject, start), 0) + added
        period, limit, scope = ((MINUTE, limits.per_minute, "account") if subject == ACCOUNT
                                else (DAY, limits.per_contact_day, "contact"))
        if usage > limit:
            return Limited(scope, subject, limit, usage, period,
                           seconds_left(start, period, now), added > limit)
    return None
