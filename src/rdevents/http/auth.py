"""Bearer-token authentication with RD's 401 bodies."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from starlette.requests import Request

from ..clock import utc_now
from ..store import ApiKey, Store, Token
from ..tokens import hash_secret
from .errors import JSON, REALM, ApiError, expired_token, invalid_token
from .faults import answer_fault
from .observe import ACCOUNT, REPLAY_ACCOUNT

log = logging.getLogger(__name__)

# A token's recorded last use may be this many seconds old: one write a token a minute at most.
USE_RESOLUTION = 60.0


class MissingToken(ApiError):
    """RD answers a request without a token with an OAuth-style body of its own."""

    def __init__(self) -> None:
        super().__init__(401, "UNAUTHORIZED", "The access token is missing")

    def response(self) -> JSON:
        return JSON({"error": "invalid_request", "error_description": self.message}, 401,
                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


class Credential(Protocol):
    @property
    def revoked(self) -> bool: ...


C = TypeVar("C", bound=Credential)


class CredentialCache(Generic[C]):
    """Live credentials (tokens, API keys) remembered for `ttl` seconds, sparing a database
    read per request. A revoked or deactivated one stops working within `ttl` seconds (of
    `clock`, monotonic); token expiry is checked on every request."""

    def __init__(self, lookup: Callable[[str], Awaitable[C | None]], ttl: float = 1.0,
                 max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[C, float]] = {}

    def discard(self, secret_hash: str) -> None:
        """Forget one credential: revoked by this process, it works no more here."""
        self._entries.pop(secret_hash, None)

    def discard_where(self, condition: Callable[[C], bool]) -> None:
        """Forget every credential whose record meets `condition`."""
        for secret_hash in [key for key, (record, _) in self._entries.items()
                            if condition(record)]:
            del self._entries[secret_hash]

    async def find(self, secret_hash: str) -> C | None:
        now = self._clock()
        entry = self._entries.get(secret_hash)
        if entry is not None and now - entry[1] < self._ttl:
            return entry[0]
        record = await self._lookup(secret_hash)
        if record is None or record.revoked:
            self._entries.pop(secret_hash, None)
            return record
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[secret_hash] = (record, now)
        return record


def use_to_record(token: Token) -> bool:
    """Whether a lookup of this token, about to be accepted, should record its use: it is live
    and its recorded use (if any) is more than USE_RESOLUTION old."""
    now = utc_now()
    live = not token.revoked and (token.expires_at is None or token.expires_at > now)
    return live and (token.last_used_at is None
                     or token.last_used_at < utc_now(-USE_RESOLUTION))


class TokenLookup:
    """Looks tokens up for a CredentialCache, and records when each was last used: after a
    lookup that finds the recorded use older than USE_RESOLUTION, one write, in the
    background, never awaited by a request."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._recording: dict[str, asyncio.Task[None]] = {}

    async def find(self, token_hash: str) -> Token | None:
        record = await self._store.find_token(token_hash)
        if record is not None and token_hash not in self._recording and use_to_record(record):
            task = asyncio.create_task(self._record(token_hash))
            self._recording[token_hash] = task
            task.add_done_callback(lambda _: self._recording.pop(token_hash, None))
        return record

    async def _record(self, token_hash: str) -> None:
        try:
            await self._store.record_token_use(token_hash, utc_now(), utc_now(-USE_RESOLUTION))
        except Exception as exc:  # e.g. StoreUnavailable: a later lookup records it
            log.warning("could not record a token's use: %s", exc)

    async def close(self) -> None:
        """Let the uses being recorded reach the store."""
        await asyncio.gather(*self._recording.values())


async def authenticate(request: Request) -> int:
    """The account id the request's Bearer token belongs to, or a 401. (A request replayed from
    the request log runs as the account it was logged for; in the sandbox, a fault the account
    asked for may answer instead: see faults.py.)"""
    replayed: int | None = request.scope.get(REPLAY_ACCOUNT)
    if replayed is not None:
        return replayed
    header = request.headers.get("authorization")
    if not header:
        raise MissingToken()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise invalid_token()
    tokens: CredentialCache[Token] = request.app.state.tokens
    record = await tokens.find(hash_secret(token))
    if record is None:
        raise invalid_token()
    # The request log files a request under the account its token names, even a revoked or
    # expired one: the account's own integration failing is the account's to see (and replay),
    # never another account's.
    request.scope[ACCOUNT] = record.account_id
    if record.revoked:
        raise invalid_token()
    if record.expires_at is not None and record.expires_at <= utc_now():
        raise expired_token()
    await answer_fault(request, record.account_id)
    return record.account_id


async def authenticate_api_key(request: Request) -> int:
    """The account id of the request's `api_key` query parameter, or a 401."""
    replayed: int | None = request.scope.get(REPLAY_ACCOUNT)
    if replayed is not None:
        return replayed
    key = request.query_params.get("api_key", "").strip()
    api_keys: CredentialCache[ApiKey] = request.app.state.api_keys
    record = await api_keys.find(hash_secret(key)) if key else None
    if record is not None:
        request.scope[ACCOUNT] = record.account_id  # as for tokens, a revoked key too
    if record is None or record.revoked:
        raise ApiError(401, "UNAUTHORIZED", "Invalid API key.")
    await answer_fault(request, record.account_id)
    return record.account_id
