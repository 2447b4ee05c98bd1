"""The server's metrics, in Prometheus' text format (GET /metrics), with prometheus_client.

One process keeps its values in memory. Several (`serve --workers N`) use prometheus_client's
multiprocess mode: `run_server` makes a directory for the run and names it in
PROMETHEUS_MULTIPROC_DIR before the workers start; each worker writes its values to files of its
own there, and the worker that answers /metrics adds them all up. The variable must be set
before prometheus_client is first imported, which it is in workers (new processes).

No label holds an account: the labels' values come from closed sets (route templates, methods,
statuses, error and event types, outcomes), so a client cannot make series without bound.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from .store.request_records import OutboxBacklog

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SECONDS = 1.0
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# The `_created` series prometheus_client adds to every counter and histogram in one process
# (not in several) would make the two modes differ; they are left out.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Where rdevents' metrics are defined; in multiprocess mode their values go to files instead,
# and /metrics reads those.
_REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: from 1 ms (a request answered from memory) to 10 s (RD's clients give up).
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

HTTP_REQUESTS = Counter(
    "rdevents_http_requests", "Requests answered, by route template, method and status.",
    ["route", "method", "status"], registry=_REGISTRY)
HTTP_DURATION = Histogram(
    "rdevents_http_request_duration_seconds",
    "Seconds from a request's arrival to the end of its answer, by route template and method.",
    ["route", "method"], buckets=_LATENCY_BUCKETS, registry=_REGISTRY)
EVENTS_ACCEPTED = Counter(
    "rdevents_events_accepted", "Events stored (committed), by type.", ["event_type"],
    registry=_REGISTRY)
REQUESTS_REJECTED = Counter(
    "rdevents_requests_rejected",
    "Requests answered 4xx or 5xx, by the type of each of their errors (once per type).",
    ["error_type"], registry=_REGISTRY)
WRITE_GROUP_SIZE = Histogram(
    "rdevents_write_group_size", "Write jobs (requests) committed together in one transaction.",
    buckets=_GROUP_BUCKETS, registry=_REGISTRY)
WRITE_COMMIT_DURATION = Histogram(
    "rdevents_write_commit_duration_seconds",
    "Seconds a write group's transaction took, from its first statement to its commit.",
    buckets=_LATENCY_BUCKETS, registry=_REGISTRY)
PENDING_WRITES = Gauge(
    "rdevents_pending_writes", "Write jobs queued or being committed (all processes).",
    multiprocess_mode="livesum", registry=_REGISTRY)
WEBHOOK_DELIVERIES = Counter(
    "rdevents_webhook_deliveries",
    "Webhook attempts by outcome: delivered; retry (failed, another attempt is due later); "
    "failed (failed, no retry left).", ["outcome"], registry=_REGISTRY)
REQUEST_LOG_DROPPED = Counter(
    "rdevents_request_log_dropped",
    "Requests the request log could not keep: queue_full (too many waiting to be written), "
    "store_unavailable (the database could not take the batch), failed (a defect: see the "
    "log).", ["reason"], registry=_REGISTRY)

# What the method label may be; any other method counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# What an error type label may be; any other value counts as "OTHER".
_ERROR_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")



class _Tally:
    """What the requests' path counts, in plain dictionaries, until it is added to the metrics
    (`flush`: every second, and before /metrics is answered). A dictionary increment costs a
    request far less than a metric's lock and a histogram's search for its bucket."""

    def __init__(self) -> None:
        # (route, method, status) -> requests answered
        self.requests: dict[tuple[str, str, int], int] = {}
        # (route, method) -> requests in each duration bucket (the last: +Inf), then seconds
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.events: dict[str, int] = {}  # event type -> events stored
        self._flushing = threading.Lock()

    def flush(self) -> None:
        with self._flushing:  # (test suites run several servers, each on a thread)
            requests, self.requests = self.requests, {}
            durations, self.durations = self.durations, {}
            events, self.events = self.events, {}
        for (route, method, status), count in requests.items():
            HTTP_REQUESTS.labels(route, _method(method), str(status)).inc(count)
        for (route, method), counts in durations.items():
            _add_to_histogram(HTTP_DURATION.labels(route, _method(method)), counts)
        for event_type, count in events.items():
            EVENTS_ACCEPTED.labels(event_type).inc(count)


def _method(method: str) -> str:
    return method if method in _METHODS else "other"


def _add_to_histogram(child: Any, counts: list[float]) -> None:
    """Add tallied bucket counts (the last: +Inf) and a sum to a histogram's child.
    prometheus_client has no public way to: its values (one a bucket, not cumulative, and the
    sum) are added to directly. tests/test_metrics.py checks the buckets and the count."""
    for value, count in zip(child._buckets, counts[:-1], strict=True):
        if count:
            value.inc(count)
    child._sum.inc(counts[-1])


_tally = _Tally()
flush = _tally.flush
_BUCKET_COUNT = len(_LATENCY_BUCKETS) + 1  # and +Inf


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count a request answered, and how long it took (added to the metrics at the next
    flush)."""
    key = (route, method, status)
    _tally.requests[key] = _tally.requests.get(key, 0) + 1
    counts = _tally.durations.get(key[:2])
    if counts is None:
        counts = _tally.durations[key[:2]] = [0.0] * (_BUCKET_COUNT + 1)
    counts[bisect_left(_LATENCY_BUCKETS, seconds)] += 1
    counts[-1] += seconds


def count_rejection(error_types: Iterable[str]) -> None:
    for error_type in error_types:
        REQUESTS_REJECTED.labels(error_type if _ERROR_TYPE.fullmatch(error_type)
                                 else "OTHER").inc()


def count_events(event_types: Iterable[str]) -> None:
    """Count events stored, by type (added to the metrics at the next flush)."""
    events = _tally.events
    for event_type in event_types:
        events[event_type] = events.get(event_type, 0) + 1


def count_webhook_attempt(status: str) -> None:
    """Count an attempt by what it left its delivery in: delivered, pending (retry), failed."""
    WEBHOOK_DELIVERIES.labels("retry" if status == "pending" else status).inc()


def count_dropped_request(reason: str, count: int = 1) -> None:
    REQUEST_LOG_DROPPED.labels(reason).inc(count)


def group_observer(pending: Callable[[], int]) -> Callable[[int, float], None]:
    """What the group committer tells of each group (see Store.group_observer); `pending` is
    the depth of the write queue afterwards."""

    def observe(size: int, seconds: float) -> None:
        WRITE_GROUP_SIZE.observe(size)
        WRITE_COMMIT_DURATION.observe(seconds)
        PENDING_WRITES.set(pending())

    return observe


# --- /metrics -------------------------------------------------------------------------------------


class _Collected:
    """Metric families gathered beforehand, for a registry to expose."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def backlog_families(backlogs: list[OutboxBacklog], now: datetime) -> list[Metric]:
    """The outboxes' gauges: what each holds still to send, and the age of its oldest item."""
    pending = GaugeMetricFamily("rdevents_outbox_backlog",
                                "Items an outbox holds still to send, by kind.", labels=["kind"])
    oldest = GaugeMetricFamily(
        "rdevents_outbox_oldest_age_seconds",
        "Seconds since the oldest item an outbox holds still to send was queued (0: none), by "
        "kind.", labels=["kind"])
    for backlog in backlogs:
        pending.add_metric([backlog.kind], backlog.pending)
        age = 0.0
        if backlog.oldest_created_at is not None:
            queued = datetime.strptime(backlog.oldest_created_at, "%Y-%m-%dT%H:%M:%S.%fZ")
            age = max(0.0, (now - queued.replace(tzinfo=UTC)).total_seconds())
        oldest.add_metric([backlog.kind], age)
    return [pending, oldest]


def multiprocess_directory() -> str | None:
    return os.environ.get(MULTIPROCESS_VARIABLE) or None


def exposition(pending_writes: int, backlogs: list[OutboxBacklog] | None) -> bytes:
    """The text /metrics answers: this process's metrics (or every process's, in multiprocess
    mode) and the outboxes' (None: the database could not be asked)."""
    flush()
    PENDING_WRITES.set(pending_writes)
    registry = CollectorRegistry(auto_describe=False)
    directory = multiprocess_directory()
    if directory is not None:
        collector = multiprocess.MultiProcessCollector  # untyped
        collector(registry, directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Collected(list(_REGISTRY.collect())))
    if backlogs is not None:
        registry.register(_Collected(backlog_families(backlogs, datetime.now(UTC))))
    return generate_latest(registry)


# --- several processes ----------------------------------------------------------------------------


def prepare_multiprocess() -> str:
    """Make an empty directory for this run's workers' metrics and name it in the environment
    they inherit; return it (remove it with `remove_multiprocess` when the run ends)."""
    directory = tempfile.mkdtemp(prefix="rdevents-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = directory
    return directory


def remove_multiprocess(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    if os.environ.get(MULTIPROCESS_VARIABLE) == directory:
        del os.environ[MULTIPROCESS_VARIABLE]


async def flush_every_second() -> None:
    """Add what the requests counted to the metrics every second, so that in multiprocess mode
    the process answering /metrics sees the others' counts within a second (until cancelled)."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        flush()


def process_ends() -> None:
    """A worker that stops adds what it counted, and takes its gauges out of the sums (its
    counters stay counted)."""
    flush()
    directory = multiprocess_directory()
    if directory is not None and os.path.isdir(directory):
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
