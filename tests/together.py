"""Requests sent at the same moment, to make concurrent writers meet."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx


def fire_together(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Send requests at the same moment from as many threads."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))
