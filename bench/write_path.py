"""The write path in one process, without HTTP: batches of 100 CONVERSIONs, each a new contact,
validated and written through the SQLite store's group committer as the server does (ten
requests at a time, so that they share groups; the garbage collector set as the server sets it).
With --single, single CONVERSIONs instead, 32 requests at a time (about the groups of the
`single` scenario's 64 connections). With --postgres, through the PostgreSQL store, on a fresh
database of the server of RDEVENTS_BENCH_POSTGRES_URL (see databases.py), dropped after: the
CPU figures are then this process's alone, not the database server's.

Prints the CPU time an event, of the whole process and of the event loop's thread, whose work
bounds the server's throughput. Far steadier than the HTTP scenarios on a machine shared with
other work, so the way to compare two trees: by turns, several times, e.g.

    PYTHONPATH=src python bench/write_path.py --rounds 40
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from databases import drop_postgres_database, fresh_postgres_database
from rdevents.catalogue import EVENT_TYPES
from rdevents.collector import settle_garbage_collector
from rdevents.ingest import ingest_batch, ingest_event
from rdevents.store import Store, open_store

WARM_UP_ROUNDS = 3


@dataclass(frozen=True)
class Shape:
    requests_a_round: int
    events_a_request: int  # 0: a single event's request (its own route)

    @property
    def events(self) -> int:
        """Events a request carries."""
        return max(self.events_a_request, 1)


BATCHES = Shape(10, 100)
SINGLE = Shape(32, 0)


def request_body(shape: Shape, round_: int, request: int) -> bytes:
    events = []
    for k in range(shape.events):
        event = copy.deepcopy(EVENT_TYPES["CONVERSION"].example)
        event["payload"]["email"] = f"c-{round_}-{request}-{k}@bench.example"
        events.append(event)
    return orjson.dumps(events if shape.events_a_request else events[0])


async def one_request(store: Store, shape: Shape, body: bytes) -> None:
    """What a request does past HTTP: decode, then the ingest of account 1."""
    if shape.events_a_request:
        await ingest_batch(store, 1, orjson.loads(body), shape.events_a_request)
    else:
        await ingest_event(store, 1, orjson.loads(body))


async def measure(url: str, shape: Shape, rounds: int) -> tuple[float, float, float]:
    """(process CPU, event loop thread CPU, wall time) an event, in µs."""
    bodies = [[request_body(shape, r, k) for k in range(shape.requests_a_round)]
              for r in range(WARM_UP_ROUNDS + rounds)]
    store = open_store(url)
    await store.open()
    settle_garbage_collector()
    try:
        for round_bodies in bodies[:WARM_UP_ROUNDS]:
            await asyncio.gather(*(one_request(store, shape, body) for body in round_bodies))
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for round_bodies in bodies[WARM_UP_ROUNDS:]:
            await asyncio.gather(*(one_request(store, shape, body) for body in round_bodies))
        cpu_now, loop_cpu_now, wall_now = time.process_time(), time.thread_time(), \
            time.perf_counter()
        scale = 1e6 / (rounds * shape.requests_a_round * shape.events)
        return (cpu_now - cpu) * scale, (loop_cpu_now - loop_cpu) * scale, (wall_now - wall) * scale
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40,
                        help=f"rounds of requests measured, after {WARM_UP_ROUNDS} to warm up")
    parser.add_argument("--single", action="store_true",
                        help=f"single events, {SINGLE.requests_a_round} requests a round "
                             f"(else {BATCHES.requests_a_round} batches of "
                             f"{BATCHES.events_a_request})")
    parser.add_argument("--postgres", action="store_true",
                        help="through the PostgreSQL store, on a fresh database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rdevents-write-path-") as tmp:
        url = fresh_postgres_database() if args.postgres else None
        try:
            # An account (the first: id 1) on a database made as `rdevents` makes it.
            subprocess.run([sys.executable, "-m", "rdevents", "accounts", "create", "bench"],
                           cwd=tmp, check=True, capture_output=True,
                           env={**os.environ, **({"RDEVENTS_DATABASE_URL": url} if url else {})})
            url = url or f"sqlite:///{next(Path(tmp).rglob('*.db'))}"
            cpu, loop_cpu, wall = asyncio.run(measure(url, SINGLE if args.single else BATCHES,
                                                      args.rounds))
        finally:
            if args.postgres and url:
                drop_postgres_database(url)
    print(f"{cpu:.1f} µs of CPU an event ({loop_cpu:.1f} on the event loop's thread), "
          f"{wall:.1f} µs of wall time")


if __name__ == "__main__":
    main()
