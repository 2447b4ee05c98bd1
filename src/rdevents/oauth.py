"""RD's OAuth 2 authorization-code flow: apps, codes, access and refresh tokens.

Codes expire on first use or after 60 minutes; a code used again revokes the refresh token it
gave, with its access tokens (RFC 6749 §4.1.2). Access tokens expire after 24 hours; refresh
tokens never, until revoked. Every secret is random, shown once and stored as a SHA-256 hash.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from .clock import utc_now
from .store import App, Store
from .tokens import hash_secret, issue_token

ACCESS_TOKEN_SECONDS = 86_400
CODE_SECONDS = 3_600


def secret_matches(secret: str, app: App) -> bool:
    return hmac.compare_digest(hash_secret(secret), app.secret_hash)


async def create_app(store: Store, account_id: int, redirect_uri: str) -> tuple[str, str]:
    """A new app of the account: (client_id, client_secret)."""
    client_id, client_secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    await store.create_app(account_id, client_id, hash_secret(client_secret), redirect_uri)
    return client_id, client_secret


async def issue_code(store: Store, app: App) -> str:
    code = secrets.token_urlsafe(24)
    await store.create_code(app.id, hash_secret(code), utc_now(CODE_SECONDS))
    return code


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str

    def body(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": self.refresh_token}


class CodeReused(Exception):
    """A used code came back: the refresh token it gave (this id) is now revoked."""

    def __init__(self, refresh_token_id: int) -> None:
        super().__init__(refresh_token_id)
        self.refresh_token_id = refresh_token_id


async def exchange_code(store: Store, app: App, code: str) -> Grant | None:
    """Tokens for a live code of the app; None when the code is unknown, used or expired.
    Raises CodeReused when it had been exchanged already, whoever holds its tokens."""
    code_hash, refresh_token = hash_secret(code), secrets.token_urlsafe(32)
    refresh_id = await store.redeem_code(app.id, app.account_id, code_hash,
                                         hash_secret(refresh_token))
    if refresh_id is None:
        revoked = await store.revoke_code_grant(app.id, code_hash)
        if revoked is not None:
            raise CodeReused(revoked)
        return None
    access_token = await issue_token(store, app.account_id, ACCESS_TOKEN_SECONDS, refresh_id)
    return Grant(access_token, refresh_token)


async def refresh(store: Store, app: App, refresh_token: str) -> Grant | None:
    """A new access token for a live refresh token of the app (which stays the same)."""
    found = await store.find_refresh_token(app.id, hash_secret(refresh_token))
    if found is None:
        return None
    refresh_id, account_id = found
    access_token = await issue_token(store, account_id, ACCESS_TOKEN_SECONDS, refresh_id)
    return Grant(access_token, refresh_token)


async def revoke(store: Store, token: str, hint: str | None) -> int | None:
    """Revoke an access token, or a refresh token with every access token made from it; the
    refresh token's id when it was one."""
    token_hash = hash_secret(token)
    if hint != "access_token":
        refresh_id = await store.revoke_refresh_token(token_hash)
        if refresh_id is not None:
            return refresh_id
    await store.revoke_token(token_hash)
    return None
