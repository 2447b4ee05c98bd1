"""RD's OAuth 2 authorization-code flow: apps, codes, access and refresh tokens.

Codes expire on first use or after 60 minutes; access tokens after 24 hours; refresh tokens
never, until revoked. Every secret is random, shown once and stored as a SHA-256 hash;
administrator passwords with scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from .clock import utc_now
from .store import App, Store
from .tokens import hash_secret, issue_token

ACCESS_TOKEN_SECONDS = 86_400
CODE_SECONDS = 3_600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


# Verified against when the administrator does not exist, so that the answer takes as long.
UNKNOWN_ADMIN_HASH = hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str) -> bool:
    scheme, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


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

    def body(self) -> dict:
        return {"access_token": self.access_token, "expires_in": ACCESS_TOKEN_SECONDS,
                "refresh_token": self.refresh_token}


async def exchange_code(store: Store, app: App, code: str) -> Grant | None:
    """Tokens for a live code of the app; None when the code is unknown, used or expired."""
    if not await store.use_code(app.id, hash_secret(code)):
        return None
    refresh_token = secrets.token_urlsafe(32)
    refresh_id = await store.create_refresh_token(app.id, app.account_id,
                                                  hash_secret(refresh_token))
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


async def revoke(store: Store, token: str, hint: str | None) -> None:
    """Revoke an access token, or a refresh token with every access token made from it."""
    token_hash = hash_secret(token)
    if hint != "access_token" and await store.revoke_refresh_token(token_hash):
        return
    await store.revoke_token(token_hash)
