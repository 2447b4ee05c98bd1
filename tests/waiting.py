"""Waiting in tests: poll for what is awaited, against a deadline, rather than sleep a fixed time
and hope it happened (too short on a busy machine, too long everywhere else)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 15, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something true, and return that; TimeoutError once
    `timeout` seconds have passed without."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"the condition did not come true within {timeout} s")
        time.sleep(interval)
