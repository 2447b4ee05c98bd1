"""The HTTP client webhooks are sent with: it connects only to addresses the target rules allow,
and its failures say nothing of the receiver's network beyond whether it answered."""

from __future__ import annotations

import ipaddress
import logging
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .. import __version__
from .targets import ForbiddenTarget, TargetRules

log = logging.getLogger(__name__)

COULD_NOT_CONNECT = "could not connect to the receiver"


class CheckedResolver(AbstractResolver):
    """Resolves a name, then refuses it whole if any address it resolves to is forbidden: what
    aiohttp connects to is only ever an address checked here. (aiohttp skips resolvers for
    hosts that are addresses: TargetRules.check_url checks those before each request.)"""

    def __init__(self, rules: TargetRules) -> None:
        self._rules = rules
        self._resolver = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        resolved = await self._resolver.resolve(host, port, family)
        addresses = [ipaddress.ip_address(result["host"]) for result in resolved]
        try:
            self._rules.check_resolved(host, addresses)
        except ForbiddenTarget:
            log.warning("webhook target %s refused: it resolves to %s", host,
                        ", ".join(map(str, addresses)))
            raise
        return resolved

    async def close(self) -> None:
        await self._resolver.close()


def open_client(rules: TargetRules, timeout: float) -> aiohttp.ClientSession:
    """A session whose connections go only where `rules` allow. Proxies named in the
    environment are not used (a proxy would connect for us, wherever we ask), and the
    connection pool is not limited: the sender's own caps bound the attempts."""
    connector = aiohttp.TCPConnector(resolver=CheckedResolver(rules), limit=0)
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"User-Agent": f"rdevents/{__version__}"})


def describe(exc: BaseException, timeout: float) -> str:
    """A failed attempt in a line, for the account's people. A refused connection, an address
    no one answers at, a name that does not resolve and a broken exchange all read the same,
    so that webhooks cannot be used to learn which ports are open where; the details go to the
    server's log."""
    if isinstance(exc, ForbiddenTarget):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"Timeout: no answer within {timeout:g} s"
    log.debug("webhook attempt failed: %r", exc)
    return COULD_NOT_CONNECT
