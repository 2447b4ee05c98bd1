"""The relay's rules: what an upstream's answers mean, batch bodies, retry delays."""

from __future__ import annotations

import random

import orjson
import pytest

from rdevents.relay_rules import (
    AccountLimit,
    Answer,
    ContactLimit,
    Delivered,
    Grant,
    Misconfigured,
    Refused,
    RetryPolicy,
    Transient,
    Unauthorized,
    batch_body,
    contact_email,
    event_body,
    fitting,
    gives_up,
    grant,
    retry_delay,
    verdict,
)

# RD's gateway page when it is down (RD's Ruby client, issue #47).
RD_DOWN = (b'<!DOCTYPE html><html><head><meta charset="utf-8">'
           b"<title> RD Station fora do ar </title></head><body>...</body></html>")


def answer(status: int, body: object = b"", **headers: str) -> Answer:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return Answer(status, {name.replace("_", "-").lower(): value
                           for name, value in headers.items()}, raw)


def test_a_2xx_with_json_is_delivered_and_one_with_html_is_not() -> None:
    assert verdict(answer(200, {"event_uuid": "x"})) == Delivered()
    assert isinstance(verdict(answer(200, RD_DOWN)), Transient)


def test_rds_html_504_is_transient_and_says_the_pages_title() -> None:
    found = verdict(answer(504, RD_DOWN, content_type="text/html"))
    assert found == Transient("HTTP 504 with a body that is not JSON: RD Station fora do ar",
                              504)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
def test_server_errors_and_timeouts_are_transient(status: int) -> None:
    found = verdict(answer(status, {"errors": {
        "error_type": "SERVICE_UNAVAILABLE", "error_message": "Service temporarily unavailable"}}))
    assert isinstance(found, Transient) and found.status == status


def test_the_gateways_429_holds_the_account_for_retry_after_quotas() -> None:
    found = verdict(answer(429, {"message": "API rate limit exceeded"}, retry_after="12",
                           ratelimit_limit_quotas="120", retry_after_quotas="31"))
    assert isinstance(found, AccountLimit) and found.seconds == 31.0
    assert verdict(answer(429, {"message": "API rate limit exceeded"}, retry_after="7")
                   ) == AccountLimit('HTTP 429: {"message":"API rate limit exceeded"}', 7.0)
    assert verdict(answer(429, b"")).seconds == 60.0  # type: ignore[union-attr]


def test_the_lead_limiters_429_holds_the_contact_it_names() -> None:
    body = {"error": "'lead_limiter' rate limit exceeded for 86400 second(s) period for key "
                     "'Ana@Example.com'", "max": 24, "usage": 25, "remaining_time": 43067}
    found = verdict(answer(429, body))
    assert isinstance(found, ContactLimit)
    assert (found.email, found.seconds) == ("ana@example.com", 43067.0)
    assert verdict(answer(429, body, retry_after="5")).seconds == 5.0  # type: ignore[union-attr]
    # RD's client documents a key-less body too: its contact is unknown.
    keyless = verdict(answer(429, {"error": "'lead_limiter' rate limit exceeded",
                                   "remaining_time": 10}))
    assert isinstance(keyless, ContactLimit) and keyless.email is None


def test_a_401_says_whether_the_token_expired() -> None:
    invalid = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}}
    assert verdict(answer(401, invalid)).expired is False  # type: ignore[union-attr]
    expired = verdict(answer(401, invalid, www_authenticate='Bearer realm="x", '
                             'error="expired_token", error_description="The access token '
                             'expired"'))
    assert isinstance(expired, Unauthorized) and expired.expired


def test_a_refused_batch_names_the_events_its_errors_are_about() -> None:
    errors = [{"error_type": "CANNOT_BE_NULL", "error_message": "Cannot be null",
               "validation_rules": {}, "path": "$.body[3].payload.email"},
              {"error_type": "INVALID_FORMAT", "error_message": "Invalid", "validation_rules": {},
               "path": "$.body[3].payload.name"},
              {"error_type": "INVALID_OPTION", "error_message": "x", "validation_rules": {},
               "path": "$.body[0].event_type"}]
    found = verdict(answer(400, {"errors": errors}))
    assert isinstance(found, Refused) and sorted(found.by_index) == [0, 3]
    assert orjson.loads(found.by_index[3]) == {"errors": errors[:2]}
    # RD once answered a bare array, with paths from the element.
    bare = verdict(answer(422, [{"error_type": "X", "path": "$[2].payload"}]))
    assert isinstance(bare, Refused) and list(bare.by_index) == [2]
    # A single event's errors name no element.
    single = verdict(answer(400, {"errors": [{"path": "$.body.payload.email"}]}))
    assert isinstance(single, Refused) and single.by_index == {}


def test_wrong_urls_and_rights_pause_the_relay() -> None:
    assert isinstance(verdict(answer(404, {"errors": {}})), Misconfigured)
    assert isinstance(verdict(answer(403, {"errors": {}})), Misconfigured)
    moved = verdict(answer(301, b"", location="https://elsewhere.example/platform/events"))
    assert isinstance(moved, Misconfigured) and "elsewhere.example" in moved.error


def test_a_refresh_answer() -> None:
    assert grant(answer(200, {"access_token": "a", "expires_in": 86400, "refresh_token": "r"})
                 ) == Grant("a", 86400.0, "r")
    refused = grant(answer(401, {"errors": {"error_type": "INVALID_REFRESH_TOKEN",
                                            "error_message": "revoked"}}))
    assert isinstance(refused, Unauthorized) and "INVALID_REFRESH_TOKEN" in refused.error
    assert isinstance(grant(answer(503, RD_DOWN)), Transient)
    assert isinstance(grant(answer(200, {"no": "token"})), Transient)


def test_an_event_body_sends_the_stored_payload_as_it_is() -> None:
    payload = '{"email":"Ana@Example.com","unknown_key":[1,2],"conversion_identifier":"x"}'
    body = event_body("CONVERSION", "CDP", payload)
    assert orjson.loads(body) == {"event_type": "CONVERSION", "event_family": "CDP",
                                  "payload": orjson.loads(payload)}
    assert orjson.loads(batch_body([body, body])) == [orjson.loads(body)] * 2
    assert contact_email(payload) == contact_email(body) == "ana@example.com"
    assert contact_email("not json") == ""


def test_a_batch_holds_what_fits_its_bytes_and_at_least_one_event() -> None:
    assert fitting([10, 10, 10], 34) == 3  # [a,b,c]: 2 brackets, 2 commas, 30 bytes
    assert fitting([10, 10, 10], 33) == 2
    assert fitting([500, 10], 100) == 1  # too large alone: it goes alone
    assert fitting([], 100) == 0


def test_retries_wait_longer_each_time_up_to_the_longest_with_jitter() -> None:
    policy, rng = RetryPolicy(first=10, longest=600, give_up_after=3600), random.Random(1)
    for failures, ceiling in ((1, 10), (2, 20), (3, 40), (7, 600), (50, 600), (500, 600)):
        delays = [retry_delay(failures, policy, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # not all together
    assert not gives_up(None, 10**12, policy)  # the first failure
    assert not gives_up(0, 3599 * 10**6, policy)
    assert gives_up(0, 3600 * 10**6, policy)
