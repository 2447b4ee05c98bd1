"""The sandbox for integrators (`serve --sandbox`), as pure rules: the failures of RD Station a
test may ask for, and what a request for one must hold.

A fault is `{"fault": KIND, "count": 1, "path": "/platform/events", "latency_ms": 0}`: the next
`count` requests of the account to an RD route whose path starts with `path` (every RD route
when it is not given) get RD's answer for that failure, after `latency_ms`, and store nothing;
a `latency` fault delays them, then serves them as usual. How each is answered is in
http/faults.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .validation import (
    NUL,
    Error,
    format_error,
    nul_error,
    null_error,
    option_error,
    type_error,
)

KINDS = ("rate_limit", "lead_rate_limit", "expired_token", "invalid_token", "server_error",
         "gateway_timeout_html", "latency")
FIELDS = ("fault", "count", "path", "latency_ms")
EVERY_ROUTE = "/"  # the path of a fault that answers every RD route
MAX_COUNT = 1_000_000
MAX_LATENCY_MS = 120_000  # longer than any client's timeout worth testing


@dataclass(frozen=True)
class FaultRequest:
    """A fault as a test asks for it."""

    fault: str
    count: int
    path: str
    latency_ms: int


@dataclass(frozen=True)
class Fault:
    """A fault as stored: what was asked, and how many requests it still answers."""

    uuid: str
    fault: str
    count: int
    remaining: int
    path: str
    latency_ms: int
    created_at: str


def _whole(value: Any, low: int, high: int, path: str, errors: list[Error]) -> int:
    """A whole number from `low` to `high`; else an error (and `low`)."""
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(type_error("INTEGER", path))
    elif not low <= value <= high:
        errors.append(format_error(f"Must be a whole number from {low} to {high}.",
                                   f"{low}..{high}", path))
    else:
        return value
    return low


def fault_request(body: dict[str, Any]) -> tuple[FaultRequest | None, list[Error]]:
    """The fault a request body asks for, or the errors that keep it from being one."""
    errors: list[Error] = []
    kind = body.get("fault")
    if kind is None:
        errors.append(null_error("$.body.fault"))
    elif kind not in KINDS:
        errors.append(option_error(KINDS, "$.body.fault"))
    count = _whole(body.get("count", 1), 1, MAX_COUNT, "$.body.count", errors)
    latency_ms = _whole(body.get("latency_ms", 0), 0, MAX_LATENCY_MS, "$.body.latency_ms",
                        errors)
    if kind == "latency" and latency_ms == 0 and not errors:
        errors.append(format_error("A latency fault needs a latency_ms above 0.",
                                   f"1..{MAX_LATENCY_MS}", "$.body.latency_ms"))
    path = body.get("path")
    if path is None:
        path = EVERY_ROUTE
    elif not isinstance(path, str):
        errors.append(type_error("STRING", "$.body.path"))
    elif NUL in path:
        errors.append(nul_error("$.body.path"))
    elif not path.startswith("/"):
        errors.append(format_error("Must be a path, starting with /.", "/path", "$.body.path"))
    if errors:
        return None, errors
    return FaultRequest(str(kind), count, path, latency_ms), []
