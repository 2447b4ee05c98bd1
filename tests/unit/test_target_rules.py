"""Where webhooks may go: the address rules (outbound/targets.py) and how failures to connect
read (outbound/client.py), without a server. test_webhook_targets.py has them through the app."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp import ClientConnectorDNSError, ClientConnectorError, ServerDisconnectedError
from aiohttp.client_reqrep import ConnectionKey
from hypothesis import given
from hypothesis import strategies as st

from rdevents.outbound.client import COULD_NOT_CONNECT, describe
from rdevents.outbound.targets import (
    CREDENTIALS_REFUSED,
    ForbiddenTarget,
    TargetRules,
    host_address,
    parse_networks,
)

STRICT = TargetRules()
HINT = "The server's operator can allow networks with --webhook-allowed-networks."

# Hypothesis draws often from IANA's special-purpose ranges: an independent list of them.
ipv4 = st.ip_addresses(v=4)


@pytest.mark.parametrize("address, what", [
    ("127.0.0.1", "a loopback address (the server itself)"),
    ("127.255.0.9", "a loopback address (the server itself)"),
    ("0.0.0.0", "an unspecified address ('this network')"),
    ("10.1.2.3", "a private network address"),
    ("172.31.255.255", "a private network address"),
    ("192.168.0.1", "a private network address"),
    ("100.64.0.1", "a carrier-grade NAT address (a provider's shared network)"),
    ("169.254.169.254", "a link-local address (where cloud metadata services answer)"),
    ("192.0.0.9", "an address reserved for IETF protocol assignments"),
    ("192.0.2.10", "an address reserved for documentation"),
    ("198.18.0.1", "an address reserved for network benchmarks"),
    ("224.0.0.251", "a multicast address"),
    ("255.255.255.255", "an address reserved for future use, or the broadcast address"),
    ("::1", "the loopback address (the server itself)"),
    ("::", "the unspecified address"),
    ("::ffff:127.0.0.1", "a loopback address (the server itself)"),
    ("::ffff:169.254.169.254", "a link-local address (where cloud metadata services answer)"),
    ("64:ff9b::7f00:1", "an IPv6 address embedding a loopback address (the server itself)"),
    ("64:ff9b::a9fe:a9fe", "an IPv6 address embedding a link-local address (where cloud "
                           "metadata services answer)"),
    ("2002:0a00:0001::1", "an IPv6 address embedding a private network address"),
    ("64:ff9b:1::1", "a local-use NAT64 address"),
    ("2001:0:4136:e378::1", "an address reserved for IETF protocol assignments (Teredo among "
                            "them)"),
    ("2001:db8::1", "an address reserved for documentation"),
    ("fd00::1", "a unique local address (a private network)"),
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("ff02::1", "a multicast address"),
    ("::7f00:1", "an IPv6 address outside the global unicast range (2000::/3)"),
    ("4000::1", "an IPv6 address outside the global unicast range (2000::/3)"),
])
def test_non_global_addresses_are_refused_with_what_they_are(address, what):
    assert STRICT.refusal(ipaddress.ip_address(address)) == what


@pytest.mark.parametrize("address", [
    "93.184.215.14", "8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111",
    "::ffff:93.184.215.14", "64:ff9b::5db8:d70e", "2002:5db8:d70e::1"])
def test_public_addresses_are_allowed(address):
    assert STRICT.refusal(ipaddress.ip_address(address)) is None


@given(st.ip_addresses())
def test_whatever_the_standard_library_calls_non_global_is_refused(address):
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # the library calls every mapped address private
    if not address.is_global or address.is_multicast:
        assert STRICT.refusal(address) is not None


@given(ipv4)
def test_an_ipv4_address_reads_the_same_in_its_ipv6_forms(address):
    what = STRICT.refusal(address)
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80) | 1)
    assert STRICT.refusal(mapped) == what
    for embedding in (nat64, six_to_four):
        assert STRICT.refusal(embedding) == (
            None if what is None else f"an IPv6 address embedding {what}")


@given(ipv4)
def test_every_numeric_form_of_a_host_is_the_address_it_names(address):
    number = int(address)
    octets = str(address).split(".")
    for form in (str(address), str(number), hex(number), f"{str(address)}.",
                 ".".join(f"0{int(octet):o}" for octet in octets),
                 f"{octets[0]}.{(number & 0xFFFFFF)}"):
        assert host_address(form) == address, form
        assert ipaddress.IPv4Address(socket.inet_aton(form.removesuffix("."))) == address


@pytest.mark.parametrize("host", ["example.com", "localhost", "1e100.net", "0x7f.example",
                                  "127.0.0.1 x", "08.0.0.1", ""])
def test_names_are_left_to_resolution(host):
    assert host_address(host) is None


def test_allowed_networks_let_their_addresses_through_and_no_others():
    rules = TargetRules(parse_networks(["127.0.0.0/8", "::1/128", "10.1.0.0/16"]))
    for allowed in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.200.3"):
        assert rules.refusal(ipaddress.ip_address(allowed)) is None, allowed
    for refused in ("10.2.0.1", "169.254.169.254", "64:ff9b::7f00:1", "fd00::1"):
        assert rules.refusal(ipaddress.ip_address(refused)) is not None, refused


@given(st.integers(0, 32).flatmap(lambda prefix: st.tuples(
    st.just(prefix), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))))
def test_any_address_of_an_allowed_network_is_allowed(drawn):
    prefix, base, offset = drawn
    network = ipaddress.IPv4Network((base, prefix), strict=False)
    address = network.network_address + offset % network.num_addresses
    assert TargetRules((network,)).refusal(address) is None


@pytest.mark.parametrize("url, message", [
    ("http://127.0.0.1:8080/hook", "Webhooks may not be sent to 127.0.0.1: it is a loopback "
                                   "address (the server itself)."),
    ("http://0x7f000001/", "Webhooks may not be sent to 0x7f000001: it is a loopback address "
                           "(the server itself)."),
    ("http://2130706433/", "Webhooks may not be sent to 2130706433: it is a loopback address "
                           "(the server itself)."),
    ("http://0177.0.0.1/", "Webhooks may not be sent to 0177.0.0.1: it is a loopback address "
                           "(the server itself)."),
    ("https://[::ffff:169.254.169.254]/latest/meta-data", "Webhooks may not be sent to "
     "::ffff:169.254.169.254: it is a link-local address (where cloud metadata services "
     "answer)."),
    ("http://0.0.0.0:80/", "Webhooks may not be sent to 0.0.0.0: it is an unspecified address "
                           "('this network')."),
])
def test_urls_naming_forbidden_addresses_are_refused(url, message):
    with pytest.raises(ForbiddenTarget) as refused:
        STRICT.check_url(url)
    assert str(refused.value) == f"{message} {HINT}"


@pytest.mark.parametrize("url", ["https://user:secret@example.com/hook",
                                 "https://token@example.com/hook", "http://@example.com/"])
def test_urls_with_credentials_are_refused(url):
    with pytest.raises(ForbiddenTarget) as refused:
        TargetRules(parse_networks(["0.0.0.0/0"])).check_url(url)
    assert str(refused.value) == CREDENTIALS_REFUSED


def test_names_are_checked_on_every_address_they_resolve_to():
    public, private = ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")
    STRICT.check_url("https://hooks.example.com/rd")  # a name: checked once resolved
    STRICT.check_resolved("hooks.example.com", [public])
    with pytest.raises(ForbiddenTarget) as refused:
        STRICT.check_resolved("hooks.example.com", [public, private])
    # the kind of address, not the address: internal names are not mapped for tenants
    assert str(refused.value) == ("Webhooks may not be sent to hooks.example.com: it resolves "
                                  f"to a private network address. {HINT}")


@pytest.mark.parametrize("value", ["10.0.0.300/8", "10.0.0.1/8", "fd00::/200", "intranet"])
def test_bad_networks_say_which(value):
    with pytest.raises(ValueError, match=f"'{value}' is not a network in CIDR notation"):
        parse_networks(["127.0.0.0/8", value])


def test_failures_to_connect_read_the_same_whatever_the_cause():
    key = ConnectionKey("hooks.example.com", 443, True, True, None, None, None)
    causes = [ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused")),
              ClientConnectorError(key, OSError(113, "No route to host")),
              ClientConnectorDNSError(key, socket.gaierror(-2, "Name or service not known")),
              ServerDisconnectedError(), ConnectionResetError(104, "Connection reset by peer")]
    assert {describe(cause, 5) for cause in causes} == {COULD_NOT_CONNECT}
    assert describe(TimeoutError(), 5) == "Timeout: no answer within 5 s"
    assert describe(ForbiddenTarget("why"), 5) == "why"
