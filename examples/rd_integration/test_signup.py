"""signup.py's client against an rdevents sandbox: the `rdevents` fixture (pytest finds it once
rdevents is installed) gives each test an empty account, its URL and token, the faults to
inject, and what was stored."""

from __future__ import annotations

import time

import pytest
from signup import ContactLimited, RDStation, RDStationError

EMAIL = "ana@example.com"


@pytest.fixture
def waits() -> list[float]:
    """The seconds the client would have slept: the tests do not wait them."""
    return []


@pytest.fixture
def client(rdevents, waits) -> RDStation:
    return RDStation(rdevents.url, rdevents.token, sleep=waits.append)


def test_a_signup_becomes_a_contact_with_its_conversion(rdevents, client):
    assert client.account_name() == "default"
    client.send_signup(EMAIL, name="Ana", tags=["newsletter"])
    contact = rdevents.contact(EMAIL)
    assert (contact["name"], contact["tags"]) == ("Ana", ["newsletter"])
    [event] = rdevents.events(EMAIL)
    assert (event["event_type"], event["event_identifier"]) == ("CONVERSION", "signup")


def test_rds_rate_limit_is_waited_out(rdevents, client, waits):
    rdevents.fault("rate_limit", count=2, path="/platform/events")
    client.send_signup(EMAIL)
    assert len(waits) == 2 and all(1 <= wait <= 60 for wait in waits)  # RD's Retry-After
    assert len(rdevents.events(EMAIL)) == 1


@pytest.mark.parametrize("kind", ["server_error", "gateway_timeout_html"])
def test_rd_being_down_is_retried(rdevents, client, waits, kind):
    rdevents.fault(kind, count=2)
    client.send_signup(EMAIL)
    assert waits == [1.0, 2.0]
    assert len(rdevents.events(EMAIL)) == 1


def test_an_expired_token_is_refreshed_once(rdevents, waits):
    refreshed = []

    def refresh() -> str:
        refreshed.append(True)
        return rdevents.token

    rdevents.fault("expired_token")
    RDStation(rdevents.url, rdevents.token, refresh=refresh).send_signup(EMAIL)
    assert refreshed == [True]
    assert rdevents.contact(EMAIL) is not None


def test_a_token_rd_refuses_is_not_retried(rdevents, client, waits):
    rdevents.fault("invalid_token")
    with pytest.raises(RDStationError) as refused:
        client.send_signup(EMAIL)
    assert refused.value.status == 401 and waits == []
    assert rdevents.contact(EMAIL) is None


def test_a_contact_over_its_daily_limit_is_given_up(rdevents, client, waits):
    rdevents.fault("lead_rate_limit")
    with pytest.raises(ContactLimited):
        client.send_signup(EMAIL)
    assert waits == [] and rdevents.events(EMAIL) == []


def test_a_slow_answer_within_the_timeout_is_waited_for(rdevents, client):
    rdevents.fault("latency", latency_ms=300)
    started = time.monotonic()
    client.send_signup(EMAIL)
    assert time.monotonic() - started >= 0.3
    assert rdevents.contact(EMAIL) is not None


def test_each_test_starts_with_an_empty_account(rdevents):
    assert rdevents.contact(EMAIL) is None and rdevents.faults() == []
