"""RD's rate limits (`--rate-limits rd`): per account a minute, per contact a day, RD's 429s."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BACKENDS, Server, backend_settings, conversion
from rdevents.limits import PER_CONTACT_PER_DAY
from serverproc import ServerProcess, rdevents


def away_from_a_minute_boundary() -> None:
    """Counting a minute's events must not straddle two windows."""
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.1)


@pytest.fixture(scope="module", params=BACKENDS)
def limited_server(request, tmp_path_factory) -> Iterator[Server]:
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("limits"),
                                rate_limits=True)
    running = Server(settings).start()
    yield running
    running.stop()


def account(server: Server, **limits) -> str:
    account_id, token = server.new_account()
    server.call(server.store.set_account_limits(account_id, limits.get("plan"),
                                                limits.get("per_minute"),
                                                limits.get("per_contact_day")))
    return token


def new_email() -> str:
    return f"limit-{uuid.uuid4().hex[:10]}@example.com"


def test_per_account_limit_counts_batches_by_event_and_stores_nothing_refused(limited_server):
    away_from_a_minute_boundary()
    with limited_server.client(account(limited_server, per_minute=5)) as client:
        assert client.send_batch([conversion(new_email()) for _ in range(4)]).status_code == 200
        refused_emails = [new_email() for _ in range(2)]
        refused = client.send_batch([conversion(e) for e in refused_emails])
        assert refused.status_code == 429
        assert refused.json() == {"message": "API rate limit exceeded"}
        assert refused.headers["ratelimit-limit-quotas"] == "5"
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 60 and refused.headers["retry-after-quotas"] == str(wait)
        assert all(client.contact(e).status_code == 404 for e in refused_emails)
        assert client.send_event(conversion(new_email())).status_code == 200  # the 5th
        assert client.send_event(conversion(new_email())).status_code == 429


def test_per_contact_limit_answers_rds_lead_limiter_body(limited_server):
    away_from_a_minute_boundary()
    email = new_email()
    with limited_server.client(account(limited_server, per_contact_day=3)) as client:
        for _ in range(3):
            assert client.send_event(conversion(email)).status_code == 200
        response = client.send_event(conversion(email, name="Too many"))
        assert response.status_code == 429
        body = response.json()
        assert set(body) == {"error", "max", "usage", "remaining_time"}
        assert body["error"] == (f"'lead_limiter' rate limit exceeded for 86400 second(s) "
                                 f"period for key '{email}'")
        assert (body["max"], body["usage"]) == (3, 4)
        assert 1 <= body["remaining_time"] <= 86400
        assert response.headers["retry-after"] == str(body["remaining_time"])
        assert "name" not in client.contact(email).json()  # the refused event changed nothing
        assert client.send_event(conversion(new_email())).status_code == 200  # others go on


def test_limits_are_off_by_default(server):
    _, token = server.new_account()
    email = new_email()
    with server.client(token) as client:
        events = [conversion(email) for _ in range(PER_CONTACT_PER_DAY + 10)]
        assert client.send_batch(events).status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_limits_hold_across_two_processes(tmp_path, request, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else None
    first = ServerProcess(tmp_path, url, serve_args=("--rate-limits", "rd"))
    rdevents("accounts", "limits", first.account, "--events-per-minute", "10", cwd=tmp_path,
             env=first.env)
    second = first.sibling()
    first.start()
    second.start()
    try:
        away_from_a_minute_boundary()
        with first.client() as a, second.client() as b:
            barrier = threading.Barrier(12)

            def send(client):
                barrier.wait()
                return client.post("/platform/events", json=conversion(new_email())).status_code

            with ThreadPoolExecutor(12) as pool:
                codes = list(pool.map(send, [a, b] * 6))
        assert sorted(codes) == [200] * 10 + [429] * 2
    finally:
        first.stop()
        second.stop()


def test_a_batch_over_the_limit_by_itself_is_400_not_429(limited_server):
    """Waiting would never let it through: a 429 would have clients retry it forever."""
    with limited_server.client(account(limited_server, per_minute=3)) as client:
        response = client.send_batch([conversion(new_email()) for _ in range(4)])
        assert response.status_code == 400
        assert response.json() == {"errors": [{
            "error_type": "TOO_LONG",
            "error_message": "Must contain at most 3 events, the account's limit a minute.",
            "validation_rules": {"max_items": 3}, "path": "$.body"}]}
