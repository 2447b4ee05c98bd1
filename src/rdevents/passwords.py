"""Administrators' passwords: how long a new one must be, and how they are hashed (scrypt)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets

MIN_LENGTH = 12  # characters
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def problem_with(password: str) -> str | None:
    """What is wrong with a new password, or None."""
    if len(password) < MIN_LENGTH:
        return f"an administrator's password needs at least {MIN_LENGTH} characters."
    return None


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


@functools.cache
def _unknown_admin_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` is the one `stored` hashes. None stands for an administrator that does
    not exist: False, after as long as for one that does."""
    scheme, salt, digest = (stored or _unknown_admin_hash()).split("$")
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest) and stored is not None
