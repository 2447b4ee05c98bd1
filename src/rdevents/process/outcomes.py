"""What became of a job: a closed set of outcomes, one for each job of a group."""

from __future__ import annotations

from dataclasses import dataclass

from ..limits import Limited
from ..validation import Error


@dataclass(frozen=True)
class Accepted:
    """The job commits with its group."""

    makes_deliveries: bool = False  # whether it queued webhook deliveries


@dataclass(frozen=True)
class Invalid:
    """Refused for what the database holds (an unknown contact, a custom field's type, a cap);
    nothing of the job is written."""

    errors: list[Error]


@dataclass(frozen=True)
class Repeated:
    """The job's idempotency key was committed with the same request already: what that
    request's events were; nothing is written."""

    event_uuids: tuple[str, ...]
    batch_uuid: str | None


@dataclass(frozen=True)
class KeyTaken:
    """The job's idempotency key was committed with another request (`in_flight` False), or
    another job holding it is being committed now (True); nothing is written."""

    in_flight: bool


@dataclass(frozen=True)
class Unavailable:
    """The database could not commit (unreachable, locked, read-only, conflicting writers);
    nothing was written, and the same job may succeed later."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """The job raised an unexpected error (a bug, or data the database refuses) and was rolled
    back alone."""

    exception: BaseException


# Limited (limits.py): refused for a rate limit, nothing written or counted.
Outcome = Accepted | Invalid | Limited | Repeated | KeyTaken | Unavailable | Failed

ACCEPTED = Accepted()
ACCEPTED_WITH_DELIVERIES = Accepted(makes_deliveries=True)

__all__ = ["ACCEPTED", "ACCEPTED_WITH_DELIVERIES", "Accepted", "Failed", "Invalid", "KeyTaken",
           "Limited", "Outcome", "Repeated", "Unavailable"]
