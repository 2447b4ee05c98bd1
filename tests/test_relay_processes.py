"""Relays across processes: `kill -9` of a relaying server under load and mid-flight loses
nothing and breaks no contact's order; two processes on PostgreSQL share one relay's budget."""

from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import conversion, event
from relaying import (
    stays,
    upstream_events,
    wait_for_upstream,
)
from serverproc import ServerProcess, rdevents
from waiting import wait_until

# A relaying server that looks for work often, retries soon, and whose leases end soon after
# its process dies (a lease: three timeouts and two more).
RELAYING = ("--relay-poll-seconds", "0.05", "--relay-timeout", "1",
            "--relay-retry-first-seconds", "0.05", "--relay-retry-max-seconds", "0.2")


def create_relay(server: ServerProcess, url: str, token: str, *options: str) -> str:
    return rdevents("relays", "create", "--account", server.account, "--url", url, "--token",
                    token, *options, cwd=server.workdir, env=server.env)


def relay_state(server: ServerProcess, relay: str) -> dict:
    with server.client() as api:
        return api.get(f"/rdevents/v1/relays/{relay}").json()


def test_kill_9_mid_flight_loses_nothing_and_keeps_each_contacts_order(empty_database, stub,
                                                                        tmp_path: Path, request):
    _, url = empty_database
    stub.delay = 0.2  # requests stay in flight a while: the kill finds some
    server = ServerProcess(tmp_path, url, serve_args=RELAYING).start()
    request.addfinalizer(server.stop)  # the process running then, whatever the test's end
    # No budget: with RD's 120 events a minute, what was taken before the kill (sent or lost
    # in flight) could hold the rest back past the deadline below.
    relay = create_relay(server, stub.url, "t", "--events-per-minute", "0")
    acked: dict[str, list[str]] = {}  # e-mail -> markers of its acknowledged events, in order
    lock, stop = threading.Lock(), threading.Event()

    def client() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as api:
            while not stop.is_set():
                email, marker = f"{uuid.uuid4().hex[:12]}@crash.example", uuid.uuid4().hex
                events = [conversion(email, marker=marker + "-1"),
                          event("OPPORTUNITY", email=email, funnel_name="default",
                                marker=marker + "-2")]
                try:
                    if random.random() < 0.5:
                        answers = [api.post("/platform/events/batch", json=events)]
                    else:
                        answers = [api.post("/platform/events", json=e) for e in events]
                except httpx.HTTPError:
                    return  # the server is gone
                statuses = [a.status_code for a in answers] * (len(events) // len(answers))
                with lock:
                    acked[email] = [e["payload"]["marker"]
                                    for e, status in zip(events, statuses, strict=True)
                                    if status == 200]

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    def relaying_under_load() -> bool:
        """Events acknowledged aplenty, and a request to the upstream under way."""
        with lock:
            acknowledged = sum(len(markers) for markers in acked.values())
        return acknowledged >= 40 and stub.arrivals > len(stub.answered)

    wait_until(relaying_under_load, timeout=30, interval=0.01)
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join(30)
    server.start()  # the same database
    expected = {marker for markers in acked.values() for marker in markers}
    assert len(expected) > 10

    def arrived() -> set[str]:
        return {e["payload"]["marker"] for request, status in list(stub.answered)
                if status == 200 for e in request.events}

    deadline = time.monotonic() + 30
    while not expected <= arrived():
        assert time.monotonic() < deadline, f"{len(expected - arrived())} events never arrived"
        time.sleep(0.1)
    # Nothing relayed that the server had not stored (a commit whose answer the kill lost
    # counts: it was accepted).
    with server.client() as api:
        for marker in arrived() - expected:
            email = next(e["payload"]["email"] for r, _ in stub.answered for e in r.events
                         if e["payload"]["marker"] == marker)
            found = api.get(f"/platform/contacts/email:{email}")
            assert found.status_code == 200, f"{marker} was relayed but never stored"
    # Each contact's events arrived in the order they were accepted: the first arrival of its
    # OPPORTUNITY came after that of its CONVERSION.
    first: dict[str, int] = {}
    for position, (request, _) in enumerate(stub.answered):
        for e in request.events:
            first.setdefault(e["payload"]["marker"], position * 10_000 + len(first))
    for markers in acked.values():
        if len(markers) == 2:
            assert first[markers[0]] < first[markers[1]], markers
    deadline = time.monotonic() + 30
    while (state := relay_state(server, relay))["backlog"]:
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["dead"] == 0 and state["state"] == "active"


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_two_processes_on_postgresql_share_one_relays_budget(empty_database, upstream,
                                                             tmp_path: Path):
    _, url = empty_database
    up_account, up_token = upstream.new_account()
    upstream.call(upstream.store.set_account_limits(up_account, None, 10, None))
    # Two processes sharing the port (and one with a host of its own would do the same).
    server = ServerProcess(tmp_path, url, serve_args=(*RELAYING, "--workers", "2")).start()
    try:
        relayed_within_budget(server, upstream, up_account, up_token)
    finally:  # SIGTERM: the supervisor stops its workers (a SIGKILL would leave them running)
        server.process.terminate()
        server.process.wait(30)


def relayed_within_budget(server: ServerProcess, upstream, up_account: int,
                          up_token: str) -> None:
    relay = create_relay(server, upstream.url, up_token, "--events-per-minute", "10")
    with server.client() as api:
        for _ in range(6):
            answer = api.post("/platform/events/batch", json=[
                conversion(f"{uuid.uuid4().hex[:12]}@budget.example") for _ in range(5)])
            assert answer.status_code == 200
    wait_for_upstream(upstream, up_account, 10)
    assert stays(lambda: len(upstream_events(upstream, up_account)) == 10, 1.5)
    state = relay_state(server, relay)
    # Ten sent, twenty waiting for the next minute, and not one request refused for a limit.
    assert (state["sent"], state["backlog"], state["retried"], state["last_error"]) == (
        10, 20, 0, None)
