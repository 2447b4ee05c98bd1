"""Access tokens and API keys: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from .clock import utc_now
from .store import Store

PREFIX = "rdv_"
API_KEY_PREFIX = "rdk_"
MAX_API_KEYS = 5  # per account, as RD Station allows
# How much of a token or key is kept in clear, so that an operator can tell them apart: the
# kind's prefix and 8 random characters (48 of its 256 random bits).
SHOWN_CHARACTERS = 12


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def shown_part(secret: str) -> str:
    return secret[:SHOWN_CHARACTERS]


async def issue_token(store: Store, account_id: int, expires_in: int | None = None,
                      refresh_token_id: int | None = None) -> str:
    """Create a token for the account; `expires_in` seconds from now, or never."""
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in is None else utc_now(expires_in)
    await store.create_token(account_id, hash_secret(token), expires_at, refresh_token_id,
                             prefix=shown_part(token))
    return token


async def issue_api_key(store: Store, account_id: int) -> str | None:
    """Create an active API key for the account; None when it already has MAX_API_KEYS."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    created = await store.create_api_key(account_id, hash_secret(key), shown_part(key),
                                         MAX_API_KEYS)
    return key if created else None
