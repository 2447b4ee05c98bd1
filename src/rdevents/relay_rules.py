"""Relaying to an upstream RD Station, as rules (pure): how events make a request, what the
upstream's answers mean, how long a retry waits, and the budget's window.

The upstream is RD Station (`https://api.rd.services`) or another rdevents: both answer RD's
events API, its OAuth token endpoint and its two 429 bodies (see shared/spec §4.3, §10).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

SINGLE_PATH = "/platform/events"
BATCH_PATH = "/platform/events/batch"
TOKEN_PATH = "/auth/token"

DEFAULT_EVENTS_PER_MINUTE = 120  # RD's standard plans; 500 on Advanced
# The budget counts the events sent in the last BUDGET_WINDOW seconds: a minute, and a margin
# for requests that take longer than others to arrive, so that no minute of the upstream's
# clock, however it is cut, sees more than the budget.
BUDGET_WINDOW = 62.0
# How long a relay waits after an account 429 that does not say.
DEFAULT_LIMIT_WAIT = 60.0
# The longest a contact limit may hold a contact: RD's lead limiter counts a day.
MAX_CONTACT_WAIT = 86_400.0
# What of an upstream's answer is kept with a dead letter or as a relay's last error.
MAX_ERROR_CHARS = 4_000
# An access token is refreshed this long before it expires.
REFRESH_AHEAD = 60.0

_BATCH_INDEX = re.compile(r"^\$(?:\.body)?\[(\d+)\]")
_LEAD_KEY = re.compile(r"for key '(.*)'\s*$", re.S)


# --- requests ------------------------------------------------------------------------------------

def event_body(event_type: str, event_family: str, payload: str) -> bytes:
    """An event as RD's API takes it, from what the events table keeps: its payload is sent as
    it arrived (JSON text), unknown keys included."""
    return (b'{"event_type":' + orjson.dumps(event_type) + b',"event_family":'
            + orjson.dumps(event_family) + b',"payload":' + payload.encode() + b"}")


def batch_body(bodies: list[bytes]) -> bytes:
    return b"[" + b",".join(bodies) + b"]"


def fitting(sizes: list[int], max_bytes: int) -> int:
    """How many of the first events (of these sizes) one batch body of at most `max_bytes`
    holds; at least one, which goes alone whatever its size."""
    total = 1  # the brackets, less the first comma
    for count, size in enumerate(sizes):
        total += size + 1
        if total > max_bytes:
            return max(count, 1)
    return len(sizes)


def contact_email(event: str | bytes) -> str:
    """The e-mail an event (or its payload) names, as RD's lead limiter keys it (lower-cased)."""
    try:
        document = orjson.loads(event)
    except orjson.JSONDecodeError:
        return ""
    if isinstance(document, dict) and isinstance(document.get("payload"), dict):
        document = document["payload"]
    value = document.get("email") if isinstance(document, dict) else None
    return value.strip().lower() if isinstance(value, str) else ""


# --- answers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """An upstream's answer: status, headers (names lower-cased) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class Transient:
    """Worth trying again later: the upstream failed, did not answer, or answered something
    that is not RD's (an HTML page)."""

    error: str
    status: int | None = None


@dataclass(frozen=True)
class Refused:
    """The upstream refused the events for what they are (400, 422): sending them again changes
    nothing. `by_index` holds the errors of each event a batch's answer names, when it does."""

    error: str
    status: int
    by_index: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountLimit:
    """The account's rate limit (RD's gateway 429): the relay waits `seconds`."""

    error: str
    seconds: float


@dataclass(frozen=True)
class ContactLimit:
    """A contact's rate limit (RD's lead limiter 429): that contact waits `seconds`."""

    error: str
    seconds: float
    email: str | None


@dataclass(frozen=True)
class Unauthorized:
    error: str
    expired: bool  # the access token expired (RD: WWW-Authenticate error="expired_token")


@dataclass(frozen=True)
class Misconfigured:
    """Nothing will go until a person changes the relay (a wrong URL, a token without rights):
    the relay pauses."""

    error: str
    status: int


Verdict = Delivered | Transient | Refused | AccountLimit | ContactLimit | Unauthorized | \
    Misconfigured


def parse_json(body: bytes) -> Any:
    """The body's JSON value, or None when it is not JSON."""
    try:
        return orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return None


def body_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"


def verdict(answer: Answer) -> Verdict:
    """What an answer to a request of events means for them."""
    status, document = answer.status, parse_json(answer.body)
    if 200 <= status < 300:
        if document is None and answer.body.strip():
            return Transient(f"HTTP {status} with a body that is not JSON: "
                             f"{_shown(answer.body)}", status)
        return Delivered()
    error = f"HTTP {status}: {body_text(answer.body)}" if answer.body.strip() else \
        f"HTTP {status}"
    if status == 429:
        return _limit(answer, document, error)
    if status == 401:
        challenge = answer.headers.get("www-authenticate", "") + answer.headers.get(
            "x-amzn-remapped-www-authenticate", "")
        return Unauthorized(error, 'error="expired_token"' in challenge)
    if document is None and answer.body.strip():  # an HTML page from a gateway, a proxy
        return Transient(f"HTTP {status} with a body that is not JSON: {_shown(answer.body)}",
                         status)
    if status in (400, 413, 422):
        return Refused(body_text(answer.body) if answer.body.strip() else error, status,
                       errors_by_index(document))
    if 300 <= status < 400:
        where = answer.headers.get("location")
        return Misconfigured(f"HTTP {status}: the upstream redirects"
                             + (f" to {where}" if where else "") + "; give the relay the URL "
                             "that answers", status)
    if status in (403, 404, 405):
        return Misconfigured(f"{error} (is the relay's URL an RD Station events API, and may "
                             "its credentials send events?)", status)
    if status in (408, 409, 425) or status >= 500:
        return Transient(error, status)
    return Refused(body_text(answer.body) if answer.body.strip() else error, status)


def _shown(body: bytes) -> str:
    """A glimpse of a body that is not JSON: its title, if it is an HTML page."""
    text = body.decode("utf-8", "replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    shown = " ".join((title.group(1) if title else text).split())
    return shown[:200] + ("…" if len(shown) > 200 else "")


def errors_by_index(document: Any) -> dict[int, str]:
    """The errors of each event of a batch an answer names (RD's paths: `$.body[3].payload`,
    or `$[3]` in the bare array RD once answered), as JSON text of RD's shape."""
    errors = document.get("errors") if isinstance(document, dict) else document
    if not isinstance(errors, list):
        return {}
    found: dict[int, list[Any]] = {}
    for item in errors:
        path = item.get("path") if isinstance(item, dict) else None
        match = _BATCH_INDEX.match(path) if isinstance(path, str) else None
        if match:
            found.setdefault(int(match.group(1)), []).append(item)
    return {index: orjson.dumps({"errors": items}).decode() for index, items in found.items()}


def _limit(answer: Answer, document: Any, error: str) -> Verdict:
    """RD's two 429s: the lead limiter's body names a contact and its remaining time; the
    gateway's says the account's limit, with Retry-After-Quotas."""
    retry_after = _seconds(answer.headers.get("retry-after"))
    if isinstance(document, dict) and ("lead_limiter" in str(document.get("error", ""))
                                       or "remaining_time" in document):
        match = _LEAD_KEY.search(str(document.get("error", "")))
        # RD documents remaining_time in milliseconds, but its values read as seconds (and
        # rdevents sends seconds): taken as seconds, at most a day.
        remaining = _seconds(document.get("remaining_time"))
        wait = retry_after if retry_after is not None else remaining
        return ContactLimit(error, min(wait if wait is not None else DEFAULT_LIMIT_WAIT,
                                       MAX_CONTACT_WAIT),
                            match.group(1).strip().lower() if match else None)
    wait = _seconds(answer.headers.get("retry-after-quotas"))
    if wait is None:
        wait = retry_after
    return AccountLimit(error, wait if wait is not None else DEFAULT_LIMIT_WAIT)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return max(float(value), 0.0)
    if isinstance(value, str):
        try:
            return max(float(value.strip()), 0.0)
        except ValueError:
            return None  # an HTTP date, or nonsense: the default wait
    return None


# --- OAuth ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    """A refresh's answer: the new access token, its lifetime, and a new refresh token if the
    upstream gave one."""

    access_token: str
    expires_in: float | None
    refresh_token: str | None


def refresh_body(client_id: str, client_secret: str, refresh_token: str) -> bytes:
    return orjson.dumps({"client_id": client_id, "client_secret": client_secret,
                         "refresh_token": refresh_token})


def grant(answer: Answer) -> Grant | Transient | Unauthorized:
    """What an answer of /auth/token to a refresh means: new tokens; a failure worth trying
    again; or a refusal (a revoked refresh token, a wrong client) that needs a person."""
    document = parse_json(answer.body)
    if 200 <= answer.status < 300:
        if isinstance(document, dict) and isinstance(document.get("access_token"), str):
            expires = _seconds(document.get("expires_in"))
            refresh = document.get("refresh_token")
            return Grant(document["access_token"], expires,
                         refresh if isinstance(refresh, str) and refresh else None)
        return Transient(f"HTTP {answer.status} from the token endpoint without an "
                         "access_token", answer.status)
    if answer.status in (400, 401, 403) and document is not None:
        return Unauthorized(f"the upstream refused to refresh the access token: HTTP "
                            f"{answer.status}: {body_text(answer.body)}", False)
    if document is None and answer.body.strip():
        return Transient(f"HTTP {answer.status} from the token endpoint with a body that is "
                         f"not JSON: {_shown(answer.body)}", answer.status)
    return Transient(f"HTTP {answer.status} from the token endpoint: "
                     f"{body_text(answer.body)}", answer.status)


# --- retries --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures are retried after `first` seconds, doubling up to `longest`, with
    jitter, for `give_up_after` seconds from the first failure; then the event is a dead
    letter."""

    first: float = 10.0
    longest: float = 600.0
    give_up_after: float = 72 * 3600.0


def retry_delay(failures: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after the `failures`-th failure in a row: exponential, capped, and drawn
    from its upper half, so that events failed together do not all come back together."""
    ceiling = min(policy.longest, policy.first * 2.0 ** min(failures - 1, 62))
    return rng.uniform(ceiling / 2, ceiling)


def gives_up(first_failed_at: int | None, now: int, policy: RetryPolicy) -> bool:
    """Whether an event failing now (microseconds) has been retried long enough."""
    return first_failed_at is not None and now - first_failed_at >= policy.give_up_after * 1e6
