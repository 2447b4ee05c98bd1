"""Which client the sign-in throttle counts a failure against (sign_in.py), without a server;
test_sign_in.py has the throttle through the app."""

from __future__ import annotations

import pytest

from rdevents.sign_in import network


@pytest.mark.parametrize("address, counted_as", [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client of a dual-stack socket
    ("testclient", "testclient"),
])
def test_a_client_is_counted_by_its_address_or_its_ipv6_64(address, counted_as):
    assert network(address) == counted_as
