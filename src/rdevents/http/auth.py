"""Bearer-token authentication with RD's 401 bodies."""

from __future__ import annotations

import time

from starlette.requests import Request

from typing import Any, Awaitable, Callable

from ..clock import utc_now
from ..tokens import hash_secret
from .errors import JSON, ApiError

REALM = "rdevents"


def _invalid() -> ApiError:
    return ApiError(401, "UNAUTHORIZED", "Invalid token.")


class MissingToken(ApiError):
    """RD answers a request without a token with an OAuth-style body of its own."""

    def __init__(self) -> None:
        super().__init__(401, "UNAUTHORIZED", "The access token is missing")

    def response(self) -> JSON:
        return JSON({"error": "invalid_request", "error_description": self.message}, 401,
                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


class CredentialCache:
    """Live credentials (tokens, API keys) remembered for `ttl` seconds, sparing a database
    read per request. A revoked or deactivated one stops working within `ttl` seconds; token
    expiry is checked on every request."""

    def __init__(self, lookup: Callable[[str], Awaitable[Any]], ttl: float = 1.0,
                 max_entries: int = 10_000) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[Any, float]] = {}

    def discard(self, secret_hash: str) -> None:
        """Forget one credential: revoked by this process, it works no more here."""
        self._entries.pop(secret_hash, None)

    def discard_where(self, condition: Callable[[Any], bool]) -> None:
        """Forget every credential whose record meets `condition`."""
        for secret_hash in [key for key, (record, _) in self._entries.items()
                            if condition(record)]:
            del self._entries[secret_hash]

    async def find(self, secret_hash: str) -> Any:
        now = time.monotonic()
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


async def authenticate(request: Request) -> int:
    """The account id the request's Bearer token belongs to, or a 401."""
    header = request.headers.get("authorization")
    if not header:
        raise MissingToken()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid()
    record = await request.app.state.tokens.find(hash_secret(token))
    if record is None or record.revoked:
        raise _invalid()
    if record.expires_at is not None and record.expires_at <= utc_now():
        raise ApiError(401, "UNAUTHORIZED", "Invalid token.", {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="expired_token", '
                                'error_description="The access token expired"'})
    return record.account_id


async def authenticate_api_key(request: Request) -> int:
    """The account id of the request's `api_key` query parameter, or a 401."""
    key = request.query_params.get("api_key", "").strip()
    record = await request.app.state.api_keys.find(hash_secret(key)) if key else None
    if record is None or record.revoked:
        raise ApiError(401, "UNAUTHORIZED", "Invalid API key.")
    return record.account_id
