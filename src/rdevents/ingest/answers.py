"""A job's outcome as the exception the HTTP layer renders, for every outcome but Accepted."""

from __future__ import annotations

from ..limits import Limited
from ..process import Accepted, Failed, Invalid, Outcome, Unavailable
from ..store import StoreUnavailable
from ..validation import TOO_LONG, Error, error


class RateLimited(Exception):
    """The request would pass a rate limit; nothing was stored or counted."""

    def __init__(self, limited: Limited) -> None:
        super().__init__(f"{limited.scope} rate limit")
        self.limited = limited


class InvalidEvents(Exception):
    """The request's events are invalid; nothing was stored."""

    def __init__(self, errors: list[Error]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


def raise_for(outcome: Outcome, body_path: str) -> None:
    """Return if the job was accepted; else raise what its outcome means. `body_path` is where
    a limit's error points: the batch, or the single event's payload."""
    if isinstance(outcome, Accepted):
        return
    if isinstance(outcome, Limited):
        if outcome.alone:  # waiting would not help: say so with a 400, not a 429
            raise InvalidEvents([error(
                TOO_LONG, f"Must contain at most {outcome.max} events"
                + (" for one contact, the limit a day." if outcome.scope == "contact"
                   else ", the account's limit a minute."),
                body_path, {"max_items": outcome.max})])
        raise RateLimited(outcome)
    if isinstance(outcome, Invalid):
        raise InvalidEvents(outcome.errors)
    if isinstance(outcome, Unavailable):
        raise StoreUnavailable(outcome.reason)
    if isinstance(outcome, Failed):
        raise RuntimeError("storing the job failed") from outcome.exception
    raise AssertionError(f"unknown outcome {outcome!r}")
