"""Administrators' sign-in (the consent page of OAuth, and any other page that signs them in),
throttled against guessing.

Every attempt that reaches the password check counts against its username and against its
client address (an IPv6 address by its /64), before the password is hashed. Once a username has
`per_username` attempts counted, or an address `per_address`, in a window of `window_seconds`
that starts at the first of them, further attempts are refused until the window ends: they cost
one indexed read, no hashing and no write. The counters are rows of the database, so that every
process and host sharing it counts together. A success forgets its username's counter and takes
its attempt back from the address's.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import passwords
from .store import SignInCounter, Store

PRUNE_EVERY_MS = 60_000  # how often a process drops the counters of windows over


@dataclass(frozen=True)
class Limits:
    per_username: int = 5
    per_address: int = 20
    window_seconds: float = 900.0


@dataclass(frozen=True)
class Refused:
    """Too many attempts: for the administrator ("username") or from the "address"."""

    by: str
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = math.ceil(self.retry_after / 60)
        whom = "for this administrator" if self.by == "username" else "from your network address"
        return (f"Too many failed sign-ins {whom}. Try again in {minutes} "
                f"minute{'' if minutes == 1 else 's'}.")


def subject(kind: str, value: str) -> str:
    """A counter's key: a hash, so that what people type (a password in the username box,
    say) is not kept."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def network(address: str) -> str:
    """The address that stands for a client: an IPv6 client holds a whole /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class SignIn:
    """Checks administrators' credentials, counting attempts in the store. `clock` gives
    seconds since 1970 (tests move it)."""

    def __init__(self, store: Store, limits: Limits = Limits(),
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.limits = limits
        self.clock = clock
        self._pruned_at = 0

    async def attempt(self, username: str, password: str, address: str,
                      account_id: int | None = None) -> int | Refused | None:
        """The administrator's account id; None for wrong credentials, or an administrator of
        another account than `account_id` when it is given; or Refused, before any hashing."""
        subjects = [subject("username", username), subject("address", network(address))]
        now = int(self.clock() * 1000)
        known = await self.store.sign_in_counters(subjects)
        refused = self._refusal([known.get(s) for s in subjects], now, extra=1)
        if refused is not None:
            return refused
        counted = await self.store.count_sign_in(subjects, now, self._window)
        refused = self._refusal(counted, now, extra=0)  # another attempt counted first
        if refused is not None:
            return refused
        await self._prune(now)
        admin = await self.store.find_admin(username)
        # On a thread, and for unknown administrators too: the answer takes as long whether
        # the name exists or not, and the event loop never waits for scrypt.
        valid = await asyncio.to_thread(passwords.verify_password, password,
                                        admin[1] if admin is not None else None)
        if admin is None or not valid or account_id not in (None, admin[0]):
            return None
        await self.store.uncount_sign_in([subjects[0]], [(subjects[1], counted[1].window_start)])
        return admin[0]

    async def forget(self, username: str) -> None:
        """Drop the username's counter (its password was changed)."""
        await self.store.uncount_sign_in([subject("username", username)], [])

    @property
    def _window(self) -> int:
        return int(self.limits.window_seconds * 1000)

    def _refusal(self, counters: Sequence[SignInCounter | None], now: int,
                 extra: int) -> Refused | None:
        """Refused when a counter, plus `extra` attempts, is past its limit in a live window."""
        for by, limit, counter in zip(("username", "address"),
                                      (self.limits.per_username, self.limits.per_address),
                                      counters, strict=True):
            if counter is None or counter.window_start <= now - self._window:
                continue
            if counter.attempts + extra > limit:
                left = counter.window_start + self._window - now
                return Refused(by, max(1, math.ceil(left / 1000)))
        return None

    async def _prune(self, now: int) -> None:
        if now - self._pruned_at >= PRUNE_EVERY_MS:
            self._pruned_at = now
            await self.store.prune_sign_in(now - self._window)
