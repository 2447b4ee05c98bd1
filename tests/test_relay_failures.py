"""Relays against an upstream that fails on demand (upstream_stub.py): RD's HTML 504, its two
429 bodies, refusals that name no event, a token it stops accepting, answers that never come.
Whatever happens, a contact's events arrive in the order they were accepted, other contacts go
on, and nothing is lost."""

from __future__ import annotations

import time

from conftest import conversion
from relaying import (
    FAST,
    create_relay,
    dead_letters,
    new_email,
    relay_of,
    relays_command,
    wait_for_relay,
)
from upstream_stub import (
    Reply,
    Request,
    gateway_429,
    html_504,
    json_reply,
    lead_429,
)


def send(server, token: str, *emails: str) -> list[str]:
    """One event each, one request each; their uuids."""
    with server.client(token) as api:
        answers = [api.send_event(conversion(email)) for email in emails]
    assert [a.status_code for a in answers] == [200] * len(emails)
    return [a.json()["event_uuid"] for a in answers]


def test_rds_html_504_is_retried_until_the_events_go(own_server, stub):
    stub.replies = [html_504(), html_504()]
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "static-token")
    email = new_email()
    send(server, token, email)
    assert stub.wait_for_accepted(1) == [email]
    found = wait_for_relay(server, relay, lambda r: r.sent == 1)
    assert "HTTP 504 with a body that is not JSON: RD Station fora do ar" in found.last_error
    assert (found.retried, found.backlog, found.dead) == (2, 0, 0)
    assert found.last_success_at > found.last_error_at
    assert [r.headers["authorization"] for r in stub.requests] == ["Bearer static-token"] * 3


def test_a_contact_waiting_for_a_retry_holds_its_later_events_and_no_one_elses(own_server,
                                                                               stub):
    slow, quick = new_email("slow"), new_email("quick")

    def respond(request: Request) -> Reply | None:
        """The slow contact's events fail until the quick one's two have gone."""
        quick_went = sum(r.emails.count(quick) for r, status in stub.answered if status == 200)
        if slow in request.emails and quick_went < 2:
            return json_reply(503, {"errors": {"error_type": "SERVICE_UNAVAILABLE",
                                               "error_message": "Service unavailable"}})
        return None

    stub.responder = respond
    server = own_server(**{**FAST, "relay_retry_first_seconds": 0.3,
                           "relay_retry_max_seconds": 0.3})
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    with server.client(token) as api:
        assert api.send_event(conversion(slow, name="first")).status_code == 200
        stub.wait_for_requests(1)
        for email, name in ((quick, "q1"), (slow, "second"), (quick, "q2")):
            # while the slow contact's first event waits for its retry
            assert api.send_event(conversion(email, name=name)).status_code == 200
    stub.wait_for_accepted(4)
    order = [(event["payload"]["name"], status) for request, status in stub.answered
             for event in request.events]
    accepted = [name for name, status in order if status == 200]
    assert accepted.index("first") < accepted.index("second")
    # The quick contact's events went while the slow one's first waited.
    assert accepted.index("q2") < accepted.index("first")
    # Until the first went, the second was only ever sent after it, in the same request.
    first_went = False
    for request, status in stub.answered:
        names = [event["payload"]["name"] for event in request.events]
        if "second" in names and not first_went:
            assert "first" in names[:names.index("second")], names
        first_went = first_went or (status == 200 and "first" in names)
    found = wait_for_relay(server, relay, lambda r: r.backlog == 0)
    assert (found.sent, found.dead) == (4, 0) and found.retried >= 1


def test_failures_past_the_retry_time_are_dead_letters_that_replay_puts_back(own_server, stub):
    stub.responder = lambda request: json_reply(502, {"errors": {
        "error_type": "BAD_GATEWAY", "error_message": "upstream down"}})
    server = own_server(**{**FAST, "relay_give_up_hours": 0.5 / 3600})  # half a second
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    uuids = send(server, token, *(new_email() for _ in range(3)))
    found = wait_for_relay(server, relay, lambda r: r.dead == 3)
    assert (found.backlog, found.sent) == (0, 0)
    letters = dead_letters(server, relay)
    assert sorted(letter.event_uuid for letter in letters) == sorted(uuids)
    assert all(letter.status == 502 and letter.error.startswith("Retried for ")
               and "upstream down" in letter.error for letter in letters)
    stub.responder = None  # the upstream is back
    with server.client(token) as api:
        bad = api.post(f"/rdevents/v1/relays/{relay}/dead-letters/replay", json={})
        assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "$.body.event_uuids"
        answer = api.post(f"/rdevents/v1/relays/{relay}/dead-letters/replay",
                          json={"event_uuids": uuids[:2] + ["not-a-dead-letter"]})
        assert answer.json() == {"replayed": 2}
    stub.wait_for_accepted(2)
    found = wait_for_relay(server, relay, lambda r: r.sent == 2 and r.backlog == 0)
    assert found.dead == 1 and [d.event_uuid for d in dead_letters(server, relay)] == uuids[2:]


def test_the_gateways_429_holds_the_relay_for_retry_after_quotas(own_server, stub):
    stub.replies = [gateway_429(seconds=1)]
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    email = new_email()
    send(server, token, email)
    held = wait_for_relay(server, relay, lambda r: r.paused_until is not None)
    assert held.state == "paused" and "API rate limit exceeded" in held.last_error
    refused_at = time.monotonic()
    stub.wait_for_accepted(1)
    assert time.monotonic() - refused_at >= 0.5  # not before the hold (of a second) ended
    found = wait_for_relay(server, relay, lambda r: r.sent == 1)
    assert (found.state, found.paused_until, found.backlog) == ("active", None, 0)


def test_the_lead_limiters_429_holds_only_the_contact_it_names(own_server, stub):
    busy, free = new_email("busy"), new_email("free")
    stub.responder = lambda request: (lead_429(busy, seconds=1)
                                      if busy in request.emails and len(stub.requests) < 3
                                      else None)
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    server.call(server.store.set_relay_paused(relay, True))
    send(server, token, busy, free)
    server.call(server.store.set_relay_paused(relay, False))  # both go in one batch
    accepted = stub.wait_for_accepted(2)
    assert accepted == [free, busy]
    assert stub.requests[0].emails == [busy, free]  # the batch, refused for busy's limit
    found = wait_for_relay(server, relay, lambda r: r.sent == 2)
    assert "lead_limiter" in found.last_error and found.dead == 0


def test_a_refused_batch_that_names_no_event_is_split_down_to_the_refused_one(own_server,
                                                                              stub):
    refused = new_email("refused")
    stub.responder = lambda request: (
        json_reply(422, {"errors": {"error_type": "UNPROCESSABLE", "error_message": "no"}})
        if refused in request.emails else None)
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    server.call(server.store.set_relay_paused(relay, True))
    emails = [new_email() for _ in range(2)] + [refused] + [new_email() for _ in range(3)]
    uuids = send(server, token, *emails)
    server.call(server.store.set_relay_paused(relay, False))
    found = wait_for_relay(server, relay, lambda r: r.sent == 5 and r.dead == 1)
    assert sorted(stub.accepted) == sorted(e for e in emails if e != refused)
    [letter] = dead_letters(server, relay)
    assert (letter.event_uuid, letter.status) == (uuids[2], 422)
    assert "UNPROCESSABLE" in letter.error and found.backlog == 0


def test_a_refused_static_token_pauses_the_relay_until_a_person_changes_it(own_server, stub):
    stub.accepted_tokens = {"good"}
    server = own_server(**FAST)
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "stale")
    email = new_email()
    send(server, token, email)
    paused = wait_for_relay(server, relay, lambda r: r.state == "paused")
    assert f"rdevents relays update {relay} --token" in paused.paused_reason
    assert "Invalid token." in paused.paused_reason and paused.backlog == 1
    relays_command(server, "update", relay, "--token", "good")
    assert relay_of(server, relay).state == "paused"  # until resumed
    relays_command(server, "resume", relay)
    assert stub.wait_for_accepted(1) == [email]
    assert wait_for_relay(server, relay, lambda r: r.sent == 1).state == "active"


def test_an_answer_that_never_comes_is_retried(own_server, stub):
    stub.delay = 5  # past the relay's timeout, for the first request
    server = own_server(**{**FAST, "relay_timeout": 0.5})
    account_id, token = server.new_account()
    relay = create_relay(server, account_id, stub.url, "t")
    email = new_email()
    send(server, token, email)
    failed = wait_for_relay(server, relay, lambda r: r.retried >= 1)
    assert failed.last_error == "no answer within 0.5 s"
    stub.delay = 0
    stub.release()
    # Sent at least once more; the first may have arrived too (at least once).
    assert email in stub.wait_for_accepted(1)
    assert wait_for_relay(server, relay, lambda r: r.sent == 1).backlog == 0
