"""What the relay tests share: an upstream (another rdevents, or a stub), relays made through
the store, and waiting for a relay with a deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from conftest import Server
from rdevents.store.relay_records import DeadLetter, RelayCredentials, RelaySummary

# A relaying server that looks for work often and retries soon, so that tests wait little.
FAST = {"relay_poll_seconds": 0.05, "relay_retry_first_seconds": 0.05,
        "relay_retry_max_seconds": 0.2, "relay_timeout": 3.0}


def relays_command(server: Server, *args: str) -> str:
    """`rdevents relays ...` on the server's database (in this process, as the CLI runs it);
    its standard output."""
    from click.testing import CliRunner

    from rdevents.cli import main

    result = CliRunner().invoke(main, ["relays", *args, "--database",
                                       server.settings.database_url])
    assert result.exit_code == 0, result.output
    return result.stdout


def new_email(prefix: str = "relay") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def create_relay(server: Server, account_id: int, url: str, token: str | None = None,
                 events_per_minute: int = 0, from_start: bool = False,
                 **oauth: str) -> str:
    credentials = RelayCredentials(token=token) if token else RelayCredentials(**oauth)
    return str(server.call(server.store.create_relay(account_id, url, credentials,
                                                     events_per_minute, from_start)))


def relay_of(server: Server, relay_uuid: str) -> RelaySummary:
    [relay] = server.call(server.store.list_relays(uuid=relay_uuid))
    return relay  # type: ignore[no-any-return]


def wait_for_relay(server: Server, relay_uuid: str, condition: Callable[[RelaySummary], bool],
                   timeout: float = 15) -> RelaySummary:
    """The relay, once `condition` holds of it; TimeoutError (with its last state) if it does
    not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        relay = relay_of(server, relay_uuid)
        if condition(relay):
            return relay
        if time.monotonic() > deadline:
            raise TimeoutError(f"the relay never got there: {relay}")
        time.sleep(0.05)


def dead_letters(server: Server, relay_uuid: str) -> list[DeadLetter]:
    return server.call(server.store.dead_letters(relay_uuid))  # type: ignore[no-any-return]


def upstream_events(upstream: Server, account_id: int) -> list[tuple[str, dict[str, Any]]]:
    """The events the upstream stored for the account, in the order it stored them."""
    import orjson

    rows = upstream.call(upstream.store.fetch(
        "SELECT event_type, payload FROM events WHERE account_id = ? ORDER BY id",
        (account_id,)))
    return [(event_type, orjson.loads(payload)) for event_type, payload in rows]


def wait_for_upstream(upstream: Server, account_id: int, count: int,
                      timeout: float = 15) -> list[tuple[str, dict[str, Any]]]:
    deadline = time.monotonic() + timeout
    while True:
        found = upstream_events(upstream, account_id)
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {count} events reached the upstream")
        time.sleep(0.05)


def stays(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` holds throughout `seconds` (for what must not happen: a relay
    sending past its budget). The one kind of wait that cannot end early."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return condition()
