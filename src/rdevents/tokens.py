"""Access tokens: random, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets

from .clock import utc_now
from .store import Store

PREFIX = "rdv_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(store: Store, account_id: int, expires_in: int | None = None) -> str:
    """Create a token for the account; `expires_in` seconds from now, or never."""
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in is None else utc_now(expires_in)
    await store.create_token(account_id, hash_token(token), expires_at)
    return token
