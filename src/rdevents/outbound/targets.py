"""Where webhooks may go (pure rules).

Webhook URLs are chosen by the accounts, so without rules a tenant could make the server post
its contacts to the server itself, to the network behind it, or to a cloud metadata service.
Deliveries therefore go only to global addresses: loopback, private, link-local, carrier-grade
NAT, unspecified, multicast and other special-use addresses are refused, whether a URL names them
outright, in one of the numeric forms the C library accepts (`2130706433`, `0x7f000001`,
`0177.0.0.1`), embedded in an IPv6 address, or through a name that resolves to one; unless the
server's operator allows their network (`--webhook-allowed-networks`). URLs that carry a user
name or password are refused too: credentials are never sent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_HINT = "The server's operator can allow networks with --webhook-allowed-networks."
CREDENTIALS_REFUSED = ("Webhook URLs may not carry a user name or password: rdevents never sends "
                       "them (receivers can check the X-RDEvents-Signature header instead).")

_PRIVATE = "a private network address"
_DOCUMENTATION = "an address reserved for documentation"
_MULTICAST = "a multicast address"

# IANA's special-purpose addresses that are not global, and multicast, each with what it is.
_IPV4 = tuple((ipaddress.IPv4Network(network), what) for network, what in (
    ("0.0.0.0/8", "an unspecified address ('this network')"),
    ("10.0.0.0/8", _PRIVATE),
    ("100.64.0.0/10", "a carrier-grade NAT address (a provider's shared network)"),
    ("127.0.0.0/8", "a loopback address (the server itself)"),
    ("169.254.0.0/16", "a link-local address (where cloud metadata services answer)"),
    ("172.16.0.0/12", _PRIVATE),
    ("192.0.0.0/24", "an address reserved for IETF protocol assignments"),
    ("192.0.2.0/24", _DOCUMENTATION),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("192.168.0.0/16", _PRIVATE),
    ("198.18.0.0/15", "an address reserved for network benchmarks"),
    ("198.51.100.0/24", _DOCUMENTATION),
    ("203.0.113.0/24", _DOCUMENTATION),
    ("224.0.0.0/4", _MULTICAST),
    ("240.0.0.0/4", "an address reserved for future use, or the broadcast address"),
))
_IPV6 = tuple((ipaddress.IPv6Network(network), what) for network, what in (
    ("::/128", "the unspecified address"),
    ("::1/128", "the loopback address (the server itself)"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001::/23", "an address reserved for IETF protocol assignments (Teredo among them)"),
    ("2001:db8::/32", _DOCUMENTATION),
    ("3fff::/20", _DOCUMENTATION),
    ("5f00::/16", "a segment routing (SRv6) address"),
    ("fc00::/7", "a unique local address (a private network)"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address (a private network)"),
    ("ff00::/8", _MULTICAST),
))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# What inet_aton may read as an IPv4 address (it would ignore anything after a space).
_NUMERIC = re.compile(r"[0-9][0-9a-fA-FxX.]*")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The networks an operator allows, from CIDR strings; ValueError says which one is wrong."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip()))
        except ValueError as exc:
            raise ValueError(f"{value.strip()!r} is not a network in CIDR notation, such as "
                             f"10.0.0.0/8 or fd00::/8 ({exc}).") from None
    return tuple(networks)


def _unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address is the IPv4 address: the kernel connects to that."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _special_use(address: Address) -> str | None:
    """What a non-global address is, in words; None for an address on the public internet."""
    table = _IPV4 if isinstance(address, ipaddress.IPv4Address) else _IPV6
    for network, what in table:
        if address in network:
            return what
    if isinstance(address, ipaddress.IPv4Address):
        return None
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        inner = _special_use(embedded)
        return None if inner is None else f"an IPv6 address embedding {inner}"
    if address not in _GLOBAL_UNICAST:
        return "an IPv6 address outside the global unicast range (2000::/3)"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 or 6to4 address leads to."""
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


@functools.lru_cache(maxsize=1024)  # every attempt asks again, mostly of the same few hosts
def host_address(host: str) -> Address | None:
    """The address a URL's host names by itself, in any form the C library reads as one (so
    `2130706433` and `0x7f.1` are 127.0.0.1); None for a name that must be resolved."""
    host = host.removesuffix(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            pass
    return None


class ForbiddenTarget(Exception):
    """A URL webhooks may not be sent to; the message says why, for the account's people."""


@dataclass(frozen=True)
class TargetRules:
    """The rules with the networks the operator allows."""

    allowed: tuple[Network, ...] = ()

    def refusal(self, address: Address) -> str | None:
        """What `address` is when webhooks may not go there; None when they may."""
        address = _unmapped(address)
        if any(address in network for network in self.allowed):
            return None
        return _special_use(address)

    def check_url(self, url: str) -> None:
        """Raise ForbiddenTarget for a URL with credentials or whose host is a forbidden
        address. A host that is a name is checked once resolved (check_resolved)."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ForbiddenTarget(CREDENTIALS_REFUSED)
        address = host_address(parts.hostname or "")
        if address is not None and (what := self.refusal(address)) is not None:
            raise ForbiddenTarget(f"Webhooks may not be sent to {parts.hostname}: it is {what}. "
                                  f"{_HINT}")

    def check_resolved(self, host: str, addresses: Iterable[Address]) -> None:
        """Raise ForbiddenTarget when any address `host` resolves to is forbidden: a name is
        used whole or not at all. The message names the kind of address, not the address, so
        that the server's internal names are not mapped for whoever asks."""
        for address in addresses:
            what = self.refusal(address)
            if what is not None:
                raise ForbiddenTarget(f"Webhooks may not be sent to {host}: it resolves to "
                                      f"{what}. {_HINT}")
