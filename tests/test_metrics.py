"""GET /metrics: after known traffic, the counters, histograms and gauges say what happened, in one
process and summed over the processes of `serve --workers 2`; a metrics token guards it."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import LOOPBACK, conversion, event
from receiver import wait_until
from serverproc import ServerProcess


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels (on a connection of its own)."""
    with httpx.Client(timeout=30) as client:
        response = client.get(f"{url}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def email() -> str:
    return f"metrics-{uuid.uuid4().hex[:12]}@example.com"


def send_known_traffic(server: ServerProcess, rounds: int = 1) -> None:
    """Per round, each on a connection of its own (so that with several processes each may
    answer some): 2 single CONVERSIONs, 1 batch (CONVERSION then OPPORTUNITY), 1 event of an
    unknown type (400 INVALID_OPTION) and 1 request with no token (401)."""
    for _ in range(rounds):
        address = email()
        for body, path in ((conversion(email()), "/platform/events"),
                           (conversion(email()), "/platform/events"),
                           ([conversion(address), event("OPPORTUNITY", email=address,
                                                        funnel_name="default")],
                            "/platform/events/batch"),
                           ({"event_type": "NOPE", "event_family": "CDP", "payload": {}},
                            "/platform/events")):
            with server.client() as client:
                client.post(path, json=body)
        with httpx.Client(base_url=server.url) as anonymous:
            assert anonymous.post("/platform/events", json={}).status_code == 401


def assert_known_traffic(samples: dict, rounds: int) -> None:
    requests = "rdevents_http_requests_total"
    route, batch = "/platform/events", "/platform/events/batch"
    assert value(samples, requests, route=route, method="POST", status="200") == 2 * rounds
    assert value(samples, requests, route=batch, method="POST", status="200") == rounds
    assert value(samples, requests, route=route, method="POST", status="400") == rounds
    assert value(samples, requests, route=route, method="POST", status="401") == rounds
    assert value(samples, "rdevents_http_request_duration_seconds_count", route=route,
                 method="POST") == 4 * rounds
    assert value(samples, "rdevents_http_request_duration_seconds_bucket", route=route,
                 method="POST", le="+Inf") == 4 * rounds
    assert value(samples, "rdevents_events_accepted_total", event_type="CONVERSION") == \
        3 * rounds
    assert value(samples, "rdevents_events_accepted_total", event_type="OPPORTUNITY") == rounds
    assert value(samples, "rdevents_requests_rejected_total", error_type="INVALID_OPTION") == \
        rounds
    assert value(samples, "rdevents_requests_rejected_total", error_type="UNAUTHORIZED") == \
        rounds
    # Three write jobs a round (two events and a batch), in one group or several.
    assert value(samples, "rdevents_write_group_size_sum") == 3 * rounds
    assert 1 <= value(samples, "rdevents_write_group_size_count") <= 3 * rounds
    assert value(samples, "rdevents_write_commit_duration_seconds_count") == \
        value(samples, "rdevents_write_group_size_count")
    assert value(samples, "rdevents_pending_writes") == 0
    assert value(samples, "rdevents_outbox_backlog", kind="webhook") == 0
    assert value(samples, "rdevents_outbox_oldest_age_seconds", kind="webhook") == 0
    assert not any("account" in name or any("acct" in str(v) for _, v in labels)
                   for name, labels in samples)


def test_metrics_of_one_process_behind_a_token(tmp_path):
    server = ServerProcess(tmp_path, serve_args=("--metrics-token", "scrape-me")).start()
    try:
        send_known_traffic(server, rounds=2)
        assert_known_traffic(scrape(server.url, Authorization="Bearer scrape-me"), rounds=2)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me"}):
            response = httpx.get(f"{server.url}/metrics", headers=headers)
            assert response.status_code == 401
            assert response.json() == {"errors": {"error_type": "UNAUTHORIZED",
                                                  "error_message": "Invalid token."}}
        samples = scrape(server.url, Authorization="Bearer scrape-me")
        assert value(samples, "rdevents_http_requests_total", route="/metrics", method="GET",
                     status="401") == 3
        assert value(samples, "rdevents_http_requests_total", route="/metrics", method="GET",
                     status="200") == 1
    finally:
        server.stop()


def settled(url: str, rounds: int) -> None:
    """Wait until /metrics shows `rounds` of known traffic (other processes' counts arrive
    within a second)."""
    def shown() -> bool:
        try:
            assert_known_traffic(scrape(url), rounds)
        except AssertionError:
            return False
        return True

    wait_until(shown, timeout=10, interval=0.2)
    assert_known_traffic(scrape(url), rounds)


def metrics_directories(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("rdevents-metrics-*"))


def test_metrics_of_two_processes_are_summed(tmp_path):
    """Counters add up over the workers, whichever of them answers /metrics; each run starts
    from an empty directory of its own, removed when the server stops."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    server = ServerProcess(tmp_path, serve_args=("--workers", "2"))
    server.env["TMPDIR"] = str(tmp)
    server.start()
    try:
        (directory,) = metrics_directories(tmp)
        rounds = 0
        # Until both processes have answered some of it (each keeps its counters in a file
        # of its own).
        while rounds < 4 or len(list(directory.glob("counter_*.db"))) < 2:
            send_known_traffic(server)
            rounds += 1
            assert rounds < 60, "one process answered every request"
        # Each process adds what it counted to its files every second; then whichever
        # process answers, the same sums.
        settled(server.url, rounds)
        for _ in range(4):
            assert_known_traffic(scrape(server.url), rounds)
        server.terminate()
        assert metrics_directories(tmp) == []

        server.start()  # a new run counts afresh
        (second,) = metrics_directories(tmp)
        assert second != directory
        send_known_traffic(server)
        settled(server.url, 1)
    finally:
        server.stop()


def test_webhook_outcomes_and_the_outbox_backlog(own_server, receiver):
    """Attempts by outcome, and the outbox's backlog while a receiver holds a delivery."""
    server = own_server(webhook_allowed_networks=LOOPBACK, webhook_retry_delays=(0.1,))
    _, token = server.new_account()
    before = scrape(server.url)

    def delta(after: dict, name: str, **labels: Any) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    with server.client(token) as api:
        assert api.post("/integrations/webhooks", json={
            "event_type": "WEBHOOK.CONVERTED", "url": receiver.url}).status_code == 201
        receiver.failing = True  # the attempt and its one retry fail: failed
        assert api.send_event(conversion(email())).status_code == 200
        wait_until(lambda: delta(scrape(server.url), "rdevents_webhook_deliveries_total",
                                 outcome="failed") == 1)
        receiver.failing = False
        assert api.send_event(conversion(email())).status_code == 200
        wait_until(lambda: delta(scrape(server.url), "rdevents_webhook_deliveries_total",
                                 outcome="delivered") == 1)
        assert delta(scrape(server.url), "rdevents_webhook_deliveries_total",
                     outcome="retry") == 1
        # The delivery's outcome is counted as it comes, its row marked sent just after.
        wait_until(lambda: value(scrape(server.url), "rdevents_outbox_backlog",
                                 kind="webhook") == 0)

        receiver.delay = 30.0  # held until released (the attempt's timeout is 5 s)
        assert api.send_event(conversion(email())).status_code == 200

        def waited() -> dict | None:
            samples = scrape(server.url)
            age = value(samples, "rdevents_outbox_oldest_age_seconds", kind="webhook")
            return samples if age > 0.3 else None

        assert value(wait_until(waited), "rdevents_outbox_backlog", kind="webhook") == 1
        receiver.release()
        wait_until(lambda: value(scrape(server.url), "rdevents_outbox_backlog",
                                 kind="webhook") == 0)


ROOT = Path(__file__).resolve().parents[1]


def test_the_documented_metrics_are_those_served(server):
    """docs/operations.md lists every metric /metrics serves, and the Grafana dashboard uses no
    other."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    served = set(re.findall(r"^# TYPE (rdevents_\w+) ", text, re.MULTILINE))
    documented = set(re.findall(r"^\| `(rdevents_\w+)` \|",
                                (ROOT / "docs" / "operations.md").read_text(), re.MULTILINE))
    assert served == documented
    dashboard = (ROOT / "docs" / "grafana-dashboard.json").read_text()
    json.loads(dashboard)
    used = {re.sub(r"_(bucket|sum|count)$", "", name)
            for name in re.findall(r"rdevents_\w+", dashboard)}
    assert used <= served
