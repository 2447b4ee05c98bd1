"""A job's outcome as the exception the HTTP layer renders, for every outcome but Accepted; and
what a request with an idempotency key its account keeps is answered."""

from __future__ import annotations

from typing import NoReturn

from ..limits import Limited
from ..process import (
    Accepted,
    Failed,
    Invalid,
    KeyTaken,
    Outcome,
    Repeated,
    RequestKey,
    Unavailable,
)
from ..store import Store, StoreUnavailable
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


class Replay(Exception):
    """The request's idempotency key was committed with the same request: it is answered what
    that one was (these events), and nothing is stored."""

    def __init__(self, repeated: Repeated) -> None:
        super().__init__("an idempotent request repeated")
        self.event_uuids = repeated.event_uuids
        self.batch_uuid = repeated.batch_uuid


class KeyReused(Exception):
    """The request's idempotency key was committed with another request; nothing was stored."""


class KeyInFlight(Exception):
    """Another request with the same idempotency key is being committed; nothing was stored."""


async def refuse(store: Store, account_id: int, key: RequestKey | None,
                 errors: list[Error]) -> NoReturn:
    """Raise InvalidEvents for a request's errors, unless its account keeps its idempotency
    key: then what the key answers (the first request's events again, even if that request
    would not be valid now, or the key's refusal). A valid request's key is checked by the
    writer, under the key's lock: this read costs only the invalid ones."""
    if key is not None:
        kept = await store.find_kept_request(account_id, key.key)
        if kept is not None:
            raise_for(kept.answer(key), "")
    raise InvalidEvents(errors)


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
    if isinstance(outcome, Repeated):
        raise Replay(outcome)
    if isinstance(outcome, KeyTaken):
        raise KeyInFlight() if outcome.in_flight else KeyReused()
    if isinstance(outcome, Unavailable):
        raise StoreUnavailable(outcome.reason)
    if isinstance(outcome, Failed):
        raise RuntimeError("storing the job failed") from outcome.exception
    raise AssertionError(f"unknown outcome {outcome!r}")
