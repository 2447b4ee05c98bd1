"""The benchmark suite: starts rdevents on a fresh database and drives each scenario over HTTP.

    python bench/run.py [--only NAME ...] [--seconds N] [--rounds N]

Load comes from wrk (closed loop, for throughput) and hey (fixed request rate, for latency), both
C/Go programs from Debian that take far less CPU than the server. Each scenario prints events/s,
latency percentiles and the server's RSS; the same run measures the ceiling: the same HTTP stack
answering a constant body (bench/ceiling_app.py).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# The servers and commands started below run this tree's code too, not the rdevents their Python
# would import from elsewhere (an editable install of another checkout, say): two trees compared
# by turns must each measure itself.
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

from databases import drop_postgres_database, fresh_postgres_database  # noqa: E402
from rdevents.catalogue import EVENT_TYPES  # noqa: E402

LUA = ROOT / "bench" / "lua" / "templated.lua"
BATCH_MIX = ("CONVERSION", "OPPORTUNITY", "SALE", "OPPORTUNITY_LOST", "ORDER_PLACED",
             "ORDER_PLACED_ITEM", "CART_ABANDONED", "CHAT_STARTED", "CALL_FINISHED",
             "MEDIA_PLAYBACK_STOPPED")


@dataclass
class Result:
    scenario: str
    events_per_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non2xx: int
    rss_mb: float
    notes: str = ""
    extra: dict = field(default_factory=dict)
    # The server's CPU time an event (all its processes; not PostgreSQL's), where measured.
    cpu_us_per_event: float | None = None


# --- bodies ---------------------------------------------------------------------------------------

def with_email(event_type: str, email: str) -> dict:
    event = copy.deepcopy(EVENT_TYPES[event_type].example)
    event["payload"]["email"] = email
    return event


def single_body() -> str:
    return json.dumps(with_email("CONVERSION", "single-__ID__@bench.example"))


def batch_body() -> str:
    """100 seed examples: ten contacts, each with the ten event types of BATCH_MIX in order."""
    return json.dumps([with_email(t, f"batch-__ID__-{k}@bench.example")
                       for k in range(10) for t in BATCH_MIX])


# --- processes ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def server_processes(pid: int) -> list[int]:
    """`pid` and, with `serve --workers N`, its worker processes (its children running Python;
    not the resource tracker, which takes no share of the work)."""
    children = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(_stat(int(entry.name))[1]) == pid and \
                    b"resource_tracker" not in (entry / "cmdline").read_bytes():
                children.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return [pid, *children]


def _cpu_seconds_of(pids: list[int]) -> float:
    """CPU time (user and system, all threads) these processes have used, in seconds; a
    process that has ended since counts nothing."""
    ticks = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time the server has used (all its threads and worker processes), in seconds."""
    return _cpu_seconds_of(server_processes(pid))


def postgres_cpu_seconds() -> float:
    """CPU time used so far by this machine's PostgreSQL processes, in seconds."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return _cpu_seconds_of(pids)


def written_bytes(pid: int) -> int:
    """Bytes the server has written to storage (its processes' `write_bytes`): the database
    and its WAL, the checkpoints' copies included."""
    total = 0
    for process in server_processes(pid):
        io = Path(f"/proc/{process}/io").read_text()
        total += int(re.search(r"write_bytes:\s+(\d+)", io).group(1))
    return total


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of the server, its worker processes summed, in MB."""
    current = peak = 0
    for process in server_processes(pid):
        status = Path(f"/proc/{process}/status").read_text()
        current += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
        peak += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return current / 1024, peak / 1024


# Worker processes of each server (`serve --workers N`, and the ceiling's): set by --workers.
WORKERS = 1


class Server:
    def __init__(self, command: list[str], cwd: Path, env: dict | None = None,
                 ready_path: str = "/healthz") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workers = ["--workers", str(WORKERS)] if WORKERS > 1 else []
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), *workers],
            cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            wait_until_up(self.url, self.process, ready_path)
            self._wait_for_workers()
        except Exception:
            self.stop()
            raise
        # Its log, read on so that the pipe never fills.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def _wait_for_workers(self) -> None:
        """The first worker to start answers at once and, left alone, would accept every
        connection the load opens: wait until each has started (the log at info level)."""
        if WORKERS == 1:
            return
        started, deadline = 0, time.monotonic() + 60
        while started < WORKERS:
            line = self.process.stderr.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"{started} of {WORKERS} workers started")
            started += "Application startup complete" in line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def rdevents(*args: str, cwd: Path, env: dict) -> str:
    return subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=cwd, check=True,
                          capture_output=True, text=True, env={**os.environ, **env}
                          ).stdout.strip()


def start_rdevents(workdir: Path, database_url: str | None = None) -> tuple[Server, str]:
    """rdevents on a fresh database: a SQLite file under `workdir`, or `database_url`."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"RDEVENTS_DATABASE_URL": database_url} if database_url else {}
    rdevents("accounts", "create", "bench", cwd=workdir, env=env)
    token = rdevents("tokens", "create", "--account", "bench", cwd=workdir, env=env)
    # The webhooks scenario's receiver listens on loopback, which webhooks may not reach
    # unless allowed.
    server = Server([sys.executable, "-m", "rdevents", "serve",
                     "--log-level", "info" if WORKERS > 1 else "warning",
                     "--webhook-allowed-networks", "127.0.0.0/8"], cwd=workdir, env=env)
    return server, token


# --- load generators ------------------------------------------------------------------------------

def wrk(url: str, body: str, token: str, *, path: str, connections: int, seconds: int,
        keyed: bool = False) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        file.write(body)
    env = {**os.environ, "BENCH_BODY_FILE": file.name, "BENCH_PATH": path,
           "BENCH_TOKEN": token, **({"BENCH_KEYED": "1"} if keyed else {})}
    threads = min(2, connections)
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "-s", str(LUA), url + path],
        env=env, check=True, capture_output=True, text=True).stdout
    os.unlink(file.name)
    return json.loads(output.strip().splitlines()[-1])


def hey(url: str, body: str, token: str, *, path: str, rate: int, seconds: int) -> dict:
    """A fixed offered rate: `workers` clients each sending `rate / workers` requests a second."""
    workers = 10
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        file.write(body.replace("__ID__", "steady"))
    output = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(rate // workers),
         "-m", "POST", "-T", "application/json", "-H", f"Authorization: Bearer {token}",
         "-D", file.name, url + path],
        check=True, capture_output=True, text=True).stdout
    os.unlink(file.name)
    percentile = {int(p): float(s) * 1e6 for p, s in
                  re.findall(r"(\d+)%+ in ([\d.]+) secs", output)}
    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", output)}
    total = sum(statuses.values())
    return {"requests": total, "duration_us": seconds * 1e6,
            "non2xx": total - statuses.get(200, 0),
            "p50_us": percentile[50], "p95_us": percentile[95], "p99_us": percentile[99],
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}


def to_result(name: str, measured: dict, events_per_request: int, pid: int,
              notes: str = "") -> Result:
    seconds = measured["duration_us"] / 1e6
    rps = measured.get("rps") or measured["requests"] / seconds
    return Result(name, rps * events_per_request, rps, measured["p50_us"] / 1000,
                  measured["p95_us"] / 1000, measured["p99_us"] / 1000, measured["non2xx"],
                  rss_mb(pid)[0], notes)


# --- scenarios ------------------------------------------------------------------------------------

def scenario_ceiling(workdir: Path, seconds: int) -> list[Result]:
    server = Server([sys.executable, str(ROOT / "bench" / "ceiling_app.py")],
                    cwd=ROOT, ready_path="/")
    try:
        return [with_cpu(server, "ceiling: constant body, 64 connections", 1,
                         lambda: wrk(server.url, single_body(), "x", path="/platform/events",
                                     connections=64, seconds=seconds))]
    finally:
        server.stop()


def with_cpu(server: Server, name: str, events_per_request: int, measure) -> Result:
    """The result of `measure()` on `server`, with the server's CPU time a request (on a
    machine shared with other work, the throughput follows what the others leave, the CPU a
    request much less) and the bytes it wrote to storage an event."""
    pid = server.process.pid
    cpu_before, written_before = cpu_seconds(pid), written_bytes(pid)
    measured = measure()
    cpu = cpu_seconds(pid) - cpu_before
    requests = max(measured["requests"], 1)
    per_request = cpu / requests * 1e6
    written = (written_bytes(pid) - written_before) / (requests * events_per_request)
    result = to_result(name, measured, events_per_request, pid,
                       f"server CPU {per_request:,.0f} us a request, "
                       f"{written / 1000:,.1f} kB written an event")
    result.cpu_us_per_event = per_request / events_per_request
    return result


def _on_rdevents(workdir: Path, name: str, events_per_request: int, measure) -> list[Result]:
    """Start rdevents on a fresh SQLite database, run `measure(url, token)`, stop it."""
    server, token = start_rdevents(workdir / name.split(",")[0].replace(" ", "-"))
    try:
        return [with_cpu(server, name, events_per_request,
                         lambda: measure(server.url, token))]
    finally:
        server.stop()


# The loads run on both backends, named alike so that each PostgreSQL figure is set beside
# SQLite's of the same round.
SINGLE = "single events, 64 connections, new contact each"
MIXED = "batches of 100 mixed seed events, 16 connections"
CONVERSIONS = "batches of 100 conversions, 16 connections, no webhook"


def scenario_single(workdir: Path, seconds: int) -> list[Result]:
    return _on_rdevents(
        workdir, SINGLE, 1,
        lambda url, token: wrk(url, single_body(), token, path="/platform/events",
                               connections=64, seconds=seconds))


def scenario_keyed(workdir: Path, seconds: int) -> list[Result]:
    """The single scenario with an Idempotency-Key of its own on every request: what keys
    cost on the single-event path (to compare with `single` of the same run)."""
    return _on_rdevents(
        workdir, "single events with an Idempotency-Key each, 64 connections", 1,
        lambda url, token: wrk(url, single_body(), token, path="/platform/events",
                               connections=64, seconds=seconds, keyed=True))


def scenario_steady(workdir: Path, seconds: int) -> list[Result]:
    return _on_rdevents(
        workdir, "single events at 1,000 requests/s offered", 1,
        lambda url, token: hey(url, single_body(), token, path="/platform/events", rate=1000,
                               seconds=seconds))


def scenario_batch(workdir: Path, seconds: int) -> list[Result]:
    return _on_rdevents(
        workdir, MIXED, 100,
        lambda url, token: wrk(url, batch_body(), token, path="/platform/events/batch",
                               connections=16, seconds=seconds))


def scenario_memory(workdir: Path, total_events: int) -> list[Result]:
    """RSS after each quarter of `total_events`, sent as batches of 100 by 8 Python clients
    (throughput does not matter here, so a Python driver will do)."""
    server, token = start_rdevents(workdir / "memory")
    template = batch_body()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    quarter_requests = total_events // 4 // 100
    failures = 0

    def send(worker: int, requests: int, quarter: int) -> int:
        failed = 0
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            for n in range(requests):
                body = template.replace("__ID__", f"{quarter}-{worker}-{n}")
                failed += client.post("/platform/events/batch", content=body).status_code != 200
        return failed

    results = []
    try:
        with ThreadPoolExecutor(8) as pool:
            for quarter in range(1, 5):
                started = time.monotonic()
                share = [quarter_requests // 8 + (w < quarter_requests % 8) for w in range(8)]
                failures = sum(pool.map(send, range(8), share, [quarter] * 8))
                elapsed = time.monotonic() - started
                current, peak = rss_mb(server.process.pid)
                events = quarter_requests * 100
                results.append(Result(
                    f"memory: after {quarter * events:,} events", events / elapsed,
                    quarter_requests / elapsed, 0, 0, 0, failures, current,
                    f"peak RSS {peak:.0f} MB"))
        return results
    finally:
        server.stop()


def scenario_postgres(workdir: Path, seconds: int) -> list[Result]:
    """The single, batch and conversions scenarios on PostgreSQL (a fresh database for each,
    dropped after), with the CPU time of rdevents and of PostgreSQL (the machine's)."""
    results = []
    for name, body, path, connections, per_request in (
            (SINGLE, single_body(), "/platform/events", 64, 1),
            (MIXED, batch_body(), "/platform/events/batch", 16, 100),
            (CONVERSIONS, conversions_body(), "/platform/events/batch", 16, 100)):
        url = fresh_postgres_database()
        try:
            server, token = start_rdevents(workdir / f"pg-{len(results)}", url)
            try:
                postgres_before = postgres_cpu_seconds()
                result = with_cpu(server, f"PostgreSQL: {name}", per_request,
                                  functools.partial(wrk, server.url, body, token, path=path,
                                                    connections=connections, seconds=seconds))
                events = result.events_per_s * seconds
                result.notes += (", PostgreSQL CPU "
                                 f"{(postgres_cpu_seconds() - postgres_before) / events * 1e6:,.0f}"
                                 " us an event")
                results.append(result)
            finally:
                server.stop()
        finally:
            drop_postgres_database(url)
    return results


def scenario_feed(workdir: Path, seconds: int) -> list[Result]:
    """The feed's read rate, on each backend: batches written for `seconds`, then the feed read
    from the start by one reader, 1,000 events a page (latencies are a page's)."""
    results = []
    for backend in ("SQLite", "PostgreSQL"):
        url = fresh_postgres_database() if backend == "PostgreSQL" else None
        try:
            server, token = start_rdevents(workdir / f"feed-{backend}", url)
            try:
                wrk(server.url, batch_body(), token, path="/platform/events/batch",
                    connections=16, seconds=seconds)
                results.append(read_feed(backend, server, token))
            finally:
                server.stop()
        finally:
            if url is not None:
                drop_postgres_database(url)
    return results


def read_feed(backend: str, server: Server, token: str) -> Result:
    pages: list[float] = []
    events = 0
    params: dict = {"limit": 1000}
    started = time.monotonic()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:
        while True:
            asked = time.monotonic()
            answer = client.get("/rdevents/v1/events", params=params).json()
            pages.append((time.monotonic() - asked) * 1000)
            if not answer["events"]:
                break
            events += len(answer["events"])
            params["after"] = answer["next_cursor"]
    elapsed = time.monotonic() - started
    pages.sort()
    return Result(f"feed on {backend}: {events:,} events read from the start, 1,000 a page",
                  events / elapsed, len(pages) / elapsed, pages[len(pages) // 2],
                  pages[int(len(pages) * 0.95)], pages[int(len(pages) * 0.99)], 0,
                  rss_mb(server.process.pid)[0])


def conversions_body() -> str:
    return json.dumps([with_email("CONVERSION", f"hook-__ID__-{k}@bench.example")
                       for k in range(100)])


def scenario_conversions(workdir: Path, seconds: int) -> list[Result]:
    """The webhooks scenario's load with no subscription, to compare with."""
    return _on_rdevents(
        workdir, CONVERSIONS, 100,
        lambda url, token: wrk(url, conversions_body(), token, path="/platform/events/batch",
                               connections=16, seconds=seconds))


def scenario_webhooks(workdir: Path, seconds: int) -> list[Result]:
    """Conversions with a webhook subscription (to the ceiling app, a receiver that answers at
    once): the ingest rate while each conversion queues a delivery, then the rate at which
    deliveries leave, from the first event to the last delivery."""
    import sqlite3

    receiver = Server([sys.executable, str(ROOT / "bench" / "ceiling_app.py")],
                      cwd=ROOT, ready_path="/")
    server, token = start_rdevents(workdir / "webhooks")
    database = sqlite3.connect(workdir / "webhooks" / "data" / "rdevents.db")
    try:
        subscribed = httpx.post(f"{server.url}/integrations/webhooks", json={
            "event_type": "WEBHOOK.CONVERTED", "url": f"{receiver.url}/platform/events"},
            headers={"Authorization": f"Bearer {token}"}, timeout=30)
        subscribed.raise_for_status()
        started = time.monotonic()
        measured = wrk(server.url, conversions_body(), token, path="/platform/events/batch",
                       connections=16, seconds=seconds)
        ingest = to_result("batches of 100 conversions, 16 connections, each queuing a webhook",
                           measured, 100, server.process.pid)

        def counts() -> dict[str, int]:
            return dict(database.execute(
                "SELECT status, count(*) FROM webhook_deliveries GROUP BY status").fetchall())

        ingest_ended, backlog = time.monotonic(), counts().get("pending", 0)
        while counts().get("pending", 0):
            time.sleep(0.5)
        ended = time.monotonic()
        done = counts()
        total = sum(done.values())
        sent = Result("webhooks: deliveries sent, first event to last delivery",
                      total / (ended - started), total / (ended - started), 0, 0, 0,
                      total - done.get("delivered", 0), rss_mb(server.process.pid)[0],
                      f"{total:,} deliveries in {ended - started:.0f} s; the {backlog:,} left "
                      f"when the load stopped went at {backlog / (ended - ingest_ended):,.0f}/s")
        return [ingest, sent]
    finally:
        database.close()
        server.stop()
        receiver.stop()


def _relay_state(server: Server, token: str, relay: str) -> dict:
    return httpx.get(f"{server.url}/rdevents/v1/relays/{relay}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30).json()


def _create_relay(workdir: Path, upstream: Server, upstream_token: str,
                  per_minute: int) -> str:
    return rdevents("relays", "create", "--account", "bench", "--url", upstream.url,
                    "--token", upstream_token, "--events-per-minute", str(per_minute),
                    cwd=workdir, env={})


def scenario_relay(workdir: Path, seconds: int, events: int = 100_000) -> list[Result]:
    """Batches of 100 mixed seed events on a fresh server, then on fresh ones whose account
    relays every event, until about `events` are accepted: ingestion without and with an active
    relay, and the relay's send rate from the first event accepted to the last one relayed.
    The upstream is an rdevents without limits (as RD would be, but on the same machine, where
    it takes its share of the cores), then the ceiling app (an upstream that answers at once:
    what the relay itself costs)."""
    plain, token = start_rdevents(workdir / "relay-without")
    try:
        without = wrk(plain.url, batch_body(), token, path="/platform/events/batch",
                      connections=16, seconds=seconds)
        results = [to_result("relay: batches of 100, 16 connections, no relay", without, 100,
                             plain.process.pid)]
    finally:
        plain.stop()
    upstream, upstream_token = start_rdevents(workdir / "relay-upstream")
    try:
        results += _relayed(workdir / "relay-rdevents", "an upstream rdevents", upstream,
                            upstream_token, without, events)
    finally:
        upstream.stop()
    ceiling = Server([sys.executable, str(ROOT / "bench" / "ceiling_app.py")],
                     cwd=ROOT, ready_path="/")
    try:
        results += _relayed(workdir / "relay-ceiling", "an upstream answering at once", ceiling,
                            "any", without, events)
    finally:
        ceiling.stop()
    return results


def _relayed(workdir: Path, upstream_name: str, upstream: Server, upstream_token: str,
             without: dict, events: int) -> list[Result]:
    """Load until `events` are accepted (wrk runs again for what is left, at the rate measured
    so far), then wait until the relay has sent them all."""
    relayed, token = start_rdevents(workdir)
    try:
        relay = _create_relay(workdir, upstream, upstream_token, 0)
        started = time.monotonic()
        rate_without = without["requests"] * 100 / (without["duration_us"] / 1e6)
        runs: list[dict] = []
        while (accepted := sum(run["requests"] for run in runs) * 100) < events:
            rate = (accepted / (sum(run["duration_us"] for run in runs) / 1e6)) if runs \
                else rate_without * 0.8
            runs.append(wrk(relayed.url, batch_body(), token, path="/platform/events/batch",
                            connections=16, seconds=max(2, round((events - accepted) / rate))))
        measured = {**runs[-1], "requests": sum(run["requests"] for run in runs),
                    "duration_us": sum(run["duration_us"] for run in runs)}
        ingest = to_result(f"relay: batches of 100, 16 connections, each event relayed to "
                           f"{upstream_name}", measured, 100, relayed.process.pid,
                           f"{accepted:,} events in {measured['duration_us'] / 1e6:.0f} s; "
                           f"{ingest_ratio(measured, without):.2f}× the rate without")
        ingest_ended, state = time.monotonic(), _relay_state(relayed, token, relay)
        left = state["backlog"]
        while state["backlog"]:
            time.sleep(0.5)
            state = _relay_state(relayed, token, relay)
        ended = time.monotonic()
        sent = state["sent"]
        forwarded = Result(
            f"relay: events forwarded to {upstream_name}, first accepted to last relayed",
            sent / (ended - started), sent / (ended - started), 0, 0, 0, state["dead"],
            rss_mb(relayed.process.pid)[0],
            f"{sent:,} events in {ended - started:.0f} s; the {left:,} left when the load "
            f"stopped went at {left / max(ended - ingest_ended, 1e-9):,.0f}/s; retried "
            f"{state['retried']}, dead {state['dead']}, last error {state['last_error']}")
        return [ingest, forwarded]
    finally:
        relayed.stop()


def ingest_ratio(measured: dict, baseline: dict) -> float:
    return (measured["requests"] / measured["duration_us"]) / (
        baseline["requests"] / baseline["duration_us"])


def scenario_relay_budget(workdir: Path, seconds: int) -> list[Result]:
    """A relay with RD's budget (120 events a minute) to an upstream rdevents that applies RD's
    limits (`--rate-limits rd`: 120 events a minute an account), with far more events queued
    than the budget lets go, for `seconds` (at least two minutes): how many it forwarded, and how
    many the upstream refused (the relay counts each 429 as a retry)."""
    upstream_dir = workdir / "budget-upstream"
    upstream_dir.mkdir(parents=True, exist_ok=True)
    rdevents("accounts", "create", "bench", cwd=upstream_dir, env={})
    upstream_token = rdevents("tokens", "create", "--account", "bench", cwd=upstream_dir, env={})
    upstream = Server([sys.executable, "-m", "rdevents", "serve", "--log-level", "warning",
                       "--rate-limits", "rd"], cwd=upstream_dir)
    relayed, token = start_rdevents(workdir / "budget-relayed")
    try:
        relay = _create_relay(workdir / "budget-relayed", upstream, upstream_token, 120)
        started = time.monotonic()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for n in range(10):  # 1,000 events, far more than the budget's two or three minutes
            body = batch_body().replace("__ID__", f"budget-{n}")
            httpx.post(f"{relayed.url}/platform/events/batch", content=body, headers=headers,
                       timeout=30).raise_for_status()
        duration = max(seconds, 130)
        time.sleep(duration)
        state = _relay_state(relayed, token, relay)
        elapsed = time.monotonic() - started
        refused = state["retried"]
        return [Result(f"relay: 120 events/min budget against an upstream with RD's limits, "
                       f"{elapsed:.0f} s", state["sent"] / elapsed, 0, 0, 0, 0, refused,
                       rss_mb(relayed.process.pid)[0],
                       f"{state['sent']} events forwarded in {elapsed:.0f} s (the budget allows "
                       f"{120 * (int(elapsed // 62) + 1)}); {refused} refused by the upstream; "
                       f"last error {state['last_error']}")]
    finally:
        relayed.stop()
        upstream.stop()


def events_file(path: Path, events: int) -> None:
    """`events` lines for `rdevents import`: the batch scenario's bodies, one event a line, each
    block of 100 with contacts of its own."""
    block = "\n".join(json.dumps(event) for event in json.loads(batch_body())) + "\n"
    with path.open("w") as file:
        for n in range(events // 100):
            file.write(block.replace("__ID__", f"import-{n}"))


def timed_command(name: str, args: list[str], cwd: Path, env: dict, events: int) -> Result:
    """Run `rdevents ARGS` to its end: events/s, its CPU time an event (on a machine shared with
    other work, the throughput follows what the others leave, the CPU an event much less), peak
    RSS, and RSS sampled at each quarter of its run (flat when memory does not grow with what it
    has done)."""
    out, err = cwd / "command.out", cwd / "command.err"
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "rdevents", *args], cwd=cwd,
                                   env={**os.environ, **env}, stdout=stdout, stderr=stderr)
    samples: list[tuple[float, float]] = []
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        try:
            samples.append((time.monotonic() - started, rss_mb(process.pid)[0]))
        except AttributeError:  # ended, not yet reaped: it has no memory to read
            pass
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{args[:2]} failed: {err.read_text()}")
    last = samples[-1][1] if samples else 0
    quarters = [next((mb for at, mb in samples if at >= elapsed * q / 4), last)
                for q in (1, 2, 3)]
    cpu = usage.ru_utime + usage.ru_stime
    return Result(name, events / elapsed, 0, 0, 0, 0, 0, usage.ru_maxrss / 1024,
                  f"{events:,} events in {elapsed:.1f} s, CPU {cpu / events * 1e6:.0f} us an "
                  "event (the process's, start included); RSS at 1/4, 1/2, 3/4 of the run: "
                  + ", ".join(f"{mb:.0f}" for mb in quarters) + f" MB, peak (the RSS column); "
                  f"{out.read_text().strip()}")


def scenario_bulk(workdir: Path, events: int, database_url: str | None = None,
                  label: str = "") -> list[Result]:
    """`rdevents import events` of a file of `events` lines into a fresh database (no server
    running), then `rdevents export events` of them all, as JSONL and as CSV, to /dev/null."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"RDEVENTS_DATABASE_URL": database_url} if database_url else {}
    rdevents("accounts", "create", "bench", cwd=workdir, env=env)
    path = workdir / "events.jsonl"
    events_file(path, events)
    results = [timed_command(f"{label}import: {events:,} events of a JSONL file",
                             ["import", "events", "--account", "bench", str(path)], workdir,
                             env, events)]
    for file_format in ("jsonl", "csv"):
        results.append(timed_command(
            f"{label}export: {events:,} events as {file_format}",
            ["export", "events", "--account", "bench", "--format", file_format,
             "--output", os.devnull], workdir, env, events))
    return results


def scenario_bulk_postgres(workdir: Path, events: int) -> list[Result]:
    url = fresh_postgres_database()
    try:
        return scenario_bulk(workdir / "bulk-pg", events, url, "PostgreSQL: ")
    finally:
        drop_postgres_database(url)


SCENARIOS = {
    "ceiling": scenario_ceiling,
    "single": scenario_single,
    "keyed": scenario_keyed,
    "steady": scenario_steady,
    "batch": scenario_batch,
    "memory": scenario_memory,
    "postgres": scenario_postgres,
    "feed": scenario_feed,
    "conversions": scenario_conversions,
    "webhooks": scenario_webhooks,
    "relay": scenario_relay,
    "relay-budget": scenario_relay_budget,
    "bulk": lambda workdir, events: scenario_bulk(workdir / "bulk", events),
    "bulk-postgres": scenario_bulk_postgres,
}


PG = "PostgreSQL: "


def round_shares(results: list[Result]) -> dict[str, tuple[float, ...]]:
    """One round's shares: each SQLite scenario's of the ceiling, by throughput (events/s over
    the ceiling's requests/s) and by CPU (the ceiling's CPU a request over the server's CPU an
    event, which moves far less with the machine's speed of the moment); each PostgreSQL
    scenario's of SQLite's figure of the same load, by throughput."""
    shares: dict[str, tuple[float, ...]] = {}
    by_name = {r.scenario: r for r in results}
    ceiling = next((r for r in results if r.scenario.startswith("ceiling")), None)
    for r in results:
        if r.scenario.startswith(PG):
            sqlite = by_name.get(r.scenario[len(PG):])
            if sqlite is not None:
                shares[r.scenario] = (r.events_per_s / sqlite.events_per_s,)
        elif (ceiling is not None and r is not ceiling and r.cpu_us_per_event
              and ceiling.cpu_us_per_event):
            shares[r.scenario] = (r.events_per_s / ceiling.requests_per_s,
                                  ceiling.cpu_us_per_event / r.cpu_us_per_event)
    return shares


def print_shares(rounds: list[list[Result]]) -> None:
    """The shares of every round, then (of several rounds) their medians: on a machine shared
    with other work, a single round's can be far off."""
    per_round = [round_shares(results) for results in rounds]
    names = list(dict.fromkeys(name for shares in per_round for name in shares))
    if not names:
        return
    several = len(rounds) > 1
    print("\n| scenario | events/s ÷ ceiling req/s (PostgreSQL: ÷ SQLite events/s) | "
          "ceiling CPU a request ÷ CPU an event |")
    print("| --- | --- | --- |")
    for name in names:
        columns = list(zip(*(shares[name] for shares in per_round if name in shares),
                           strict=True))
        cells = []
        for values in columns:
            text = ", ".join(f"{v:.2f}" for v in values)
            cells.append(f"median {statistics.median(values):.2f} ({text})" if several
                         else text)
        print(f"| {name} | {' | '.join(cells)}{' | –' if len(cells) == 1 else ''} |")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GiB, Python {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--seconds", type=int, default=20, help="duration of each scenario")
    parser.add_argument("--memory-events", type=int, default=1_000_000)
    parser.add_argument("--bulk-events", type=int, default=1_000_000,
                        help="events imported, then exported, by the bulk scenarios")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the scenarios this many times over, and give the median "
                             "of each share of the ceiling")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes of each server: `serve --workers N`, and the ceiling's")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: `apt-get install wrk hey` (or `make bench`)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    print(f"rdevents benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"commit {commit}\n{machine()}"
          f"{f', {WORKERS} worker processes a server' if WORKERS > 1 else ''}\n")
    rounds: list[list[Result]] = []
    for number in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"round {number} of {args.rounds}, "
                  f"{time.strftime('%H:%M:%S UTC', time.gmtime())}", flush=True)
        rounds.append(run_round(args))
    print("\n| scenario | events/s | req/s | p50 ms | p95 ms | p99 ms | non-2xx | RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for number, results in enumerate(rounds, 1):
        for r in results:
            latency = " | ".join("–" if r.scenario.startswith("memory") else f"{ms:.1f}"
                                 for ms in (r.p50_ms, r.p95_ms, r.p99_ms))
            label = f"{r.scenario} (round {number})" if args.rounds > 1 else r.scenario
            print(f"| {label} | {r.events_per_s:,.0f} | {r.requests_per_s:,.0f} | {latency} | "
                  f"{r.non2xx} | {r.rss_mb:.0f} {r.notes} |")
    print_shares(rounds)
    if args.json:
        args.json.write_text(json.dumps(
            [{"round": number, **r.__dict__} for number, results in enumerate(rounds, 1)
             for r in results], indent=2))


def run_round(args: argparse.Namespace) -> list[Result]:
    """Each scenario asked for once, in order, each printed as it ends."""
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rdevents-bench-") as tmp:
        for name in args.only:
            amount = {"memory": args.memory_events, "bulk": args.bulk_events,
                      "bulk-postgres": args.bulk_events}.get(name, args.seconds)
            for result in SCENARIOS[name](Path(tmp), amount):
                results.append(result)
                print(f"{result.scenario}: {result.events_per_s:,.0f} events/s "
                      f"({result.requests_per_s:,.0f} req/s), p50 {result.p50_ms:.1f} ms, "
                      f"p95 {result.p95_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                      f"non-2xx {result.non2xx}, RSS {result.rss_mb:.0f} MB {result.notes}",
                      flush=True)
    return results


if __name__ == "__main__":
    main()
