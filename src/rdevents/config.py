"""Settings of a running server, and the one table of them: each field of `Settings` carries its
default and, in its metadata, how `rdevents serve` takes it (option, help, unit, bounds). The
CLI makes its options from this table, and docs/cli.md's table of settings is written from it
(`python -m rdevents.config`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """How `rdevents serve` takes a setting: as `--<field-name>` (dashes for underscores) or
    `flag`, or from the environment variable RDEVENTS_<FIELD_NAME>."""

    help: str  # for --help and docs/cli.md
    more: str = ""  # what else docs/cli.md says: consequences, links
    unit: str | None = None  # of a number: "s", "bytes", "days"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    # For a value that an option writes otherwise (a list, a switch): how the option writes it
    # and how it is read back (ValueError says what is wrong).
    text: Callable[[Any], str] | None = None
    parse: Callable[[str], Any] | None = None


def setting(default: Any, option: Option | None = None) -> Any:
    """A field of Settings: its default, and how `serve` takes it (None: it does not)."""
    return dataclasses.field(default=default, metadata={} if option is None else {"option": option})


def parse_delays(value: str) -> tuple[float, ...]:
    """Seconds separated by commas, each 0 or more."""
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        delays = (-1.0,)
    if any(delay < 0 for delay in delays):
        raise ValueError(f"{value!r}: give seconds (0 or more) separated by commas.")
    return delays


def parse_network_list(value: str) -> tuple[str, ...]:
    """Networks in CIDR notation separated by commas, as the webhook sender reads them."""
    from .outbound.targets import parse_networks  # here: every stage imports this module

    networks = tuple(part.strip() for part in value.split(",") if part.strip())
    parse_networks(networks)
    return networks


def _seconds_list(delays: tuple[float, ...]) -> str:
    return ",".join(f"{delay:g}" for delay in delays)


@dataclass(frozen=True)
class Settings:
    """What a server runs with. A field with an Option is an option of `serve` too, in this
    order; one without (max_group) only tests and code set."""

    # Where the server listens and what it stores in.
    host: str = setting("127.0.0.1", Option(
        "The address to listen on: 0.0.0.0 (or ::) listens on every interface."))
    port: int = setting(8080, Option("The TCP port to listen on.", minimum=1, maximum=65535))
    database_url: str = setting("sqlite:///data/rdevents.db", Option(
        "sqlite:///relative/path.db, sqlite:////absolute/path.db or "
        "postgresql://USER@HOST:PORT/DATABASE",
        more="See the database URLs below.", flag="--database"))
    # Limits of a request.
    max_body_bytes: int = setting(204_800, Option(
        "The largest request body taken (RD's 0.2 MB); a larger one is answered 413.",
        unit="bytes", minimum=1))
    max_batch_events: int = setting(1_000, Option(
        "The most events a batch may hold; more are answered 400 TOO_LONG.", minimum=1))
    # Idempotency keys (http/idempotency.py): how long one is kept.
    idempotency_retention_hours: float = setting(24.0, Option(
        "Hours an Idempotency-Key is kept: a request sent again with it meanwhile is answered "
        "as the first was, and stores nothing again.",
        more="Forgotten within 10 minutes after (see [api.md](api.md#idempotency-keys)).",
        unit="hours", minimum=0))
    # What one account may hold, so that no tenant grows what other tenants' requests read and
    # wait for (DataCaps).
    max_custom_fields: int = setting(500, Option(
        "Custom fields an account may define.",
        more="Events, the contacts API and the fields API define them alike.", minimum=0))
    max_tags_per_contact: int = setting(1_000, Option("Tags a contact may have.", minimum=0))
    # Group commit: the most jobs one transaction takes, and how many may wait before 503.
    max_group: int = setting(256)
    max_pending_writes: int = setting(10_000, Option(
        "Requests that may wait for the writer; past it the server answers 503.",
        more="The 503 comes with `Retry-After`.", minimum=1))
    token_cache_seconds: float = setting(1.0, Option(
        "How long a live token is trusted without a database read (a revoked token works at "
        "most this long).", unit="s", minimum=0))
    # Administrators' sign-in (sign_in.py).
    sign_in_failures_per_username: int = setting(5, Option(
        "Failed sign-ins of an administrator allowed within the window; past them, refused "
        "until the window ends.",
        more="Refused with `429` (see [api.md](api.md#the-consent-page)).", minimum=1))
    sign_in_failures_per_address: int = setting(20, Option(
        "Failed sign-ins allowed from one client address (an IPv6 /64) within the window.",
        minimum=1))
    sign_in_window_seconds: float = setting(900.0, Option(
        "The window of the sign-in limits, from the first failure counted.", unit="s",
        minimum=1))
    # The dashboard (/ui/): how long a sign-in lasts before the administrator signs in again.
    ui_session_seconds: float = setting(43_200.0, Option(
        "How long a sign-in to the dashboard (/ui/) lasts.",
        more="The default is 12 hours; less than a minute is refused.", unit="s",
        minimum=60))
    # RD's rate limits (limits.py): off unless asked for.
    rate_limits: bool = setting(False, Option(
        "rd: RD Station's limits (120 events/min an account, 500 on the advanced plan; 120 "
        "events/day a contact), per account overridable.",
        more="See [api.md](api.md#rate-limits).", choices=("off", "rd"),
        text=lambda on: "rd" if on else "off", parse=lambda value: value == "rd"))
    # The sandbox for integrators' tests (docs/testing.md).
    sandbox: bool = setting(False, Option(
        "Add the sandbox's routes: failures of RD Station on demand (/rdevents/v1/sandbox/faults) "
        "and an account's reset (/rdevents/v1/sandbox/reset). For tests, never production.",
        more="See [testing.md](testing.md).", flag="--sandbox/--no-sandbox",
        text=lambda on: "on" if on else "off"))
    bootstrap_token: str = setting("", Option(
        "A token that the account `default` (made if need be) takes at start, never expiring: "
        "a credential a CI job knows in advance. Default: none.",
        more="See [testing.md](testing.md#in-ci)."))
    # Webhook deliveries (outbound/sender.py).
    webhook_timeout: float = setting(5.0, Option(
        "Seconds a webhook receiver has to answer an attempt.", unit="s", minimum=0.1))
    webhook_retry_delays: tuple[float, ...] = setting((10.0, 60.0, 300.0), Option(
        "Seconds to wait before each retry of a failed webhook delivery, comma-separated; after "
        "the last, the delivery is marked failed.",
        more="RD retries 3 times (see [webhooks.md](webhooks.md)).", unit="s",
        text=_seconds_list, parse=parse_delays))
    webhook_poll_seconds: float = setting(1.0, Option(
        "How often a process looks for webhook deliveries that are due.",
        more="Its own writes wake it at once.", unit="s", minimum=0.01))
    webhook_retention_days: float = setting(14.0, Option(
        "Days a delivered, failed or erased webhook delivery is kept.",
        more="It is forgotten then, attempts and all.", unit="days", minimum=0))
    # Connections (http/connections.py).
    head_timeout: float = setting(10.0, Option(
        "Seconds a client has to send a request's line and headers, from the moment it "
        "connects or receives the previous response; then it is disconnected.",
        unit="s", minimum=0.1))
    body_timeout: float = setting(30.0, Option(
        "Seconds a client has to send a request's body once its headers arrived.",
        more="Then it is disconnected, and nothing of the request is stored.", unit="s",
        minimum=0.1))
    keep_alive_timeout: float = setting(5.0, Option(  # uvicorn's
        "Seconds an idle connection is kept open after a response.", unit="s",
        minimum=0.1))
    max_connections: int = setting(10_000, Option(
        "Connections a process keeps open (at most its open-files limit allows); past it, the "
        "one waiting longest for a request is closed.",
        more="The open-files limit is taken less a reserve of min(256, limit/4) (see "
             "[deployment.md](deployment.md#connections-and-slow-clients)).", minimum=1))
    # Proxies trusted for the client's address, which counts in sign-in limits.
    forwarded_allow_ips: str = setting("127.0.0.1", Option(
        "Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: comma-separated "
        "addresses or networks, or * (behind a proxy on another host, give its address, or "
        "every client seems to be the proxy).",
        more="See [deployment.md](deployment.md#reverse-proxy)."))
    # By default no network that is not public, so no tenant can make the server post to itself
    # or to the network behind it.
    webhook_allowed_networks: tuple[str, ...] = setting((), Option(
        "Networks webhooks may be sent to although they are not public (loopback, private, "
        "link-local...), as CIDRs separated by commas, e.g. 10.0.0.0/8,fd00::/8. Default: none.",
        more="A value that is not a network stops `serve` with an error (see "
             "[webhooks.md](webhooks.md#where-webhooks-may-go)).",
        text=",".join, parse=parse_network_list))
    # Attempts under way at once, so that receivers that hang hold up their own account's
    # deliveries, not everyone's.
    webhook_concurrency: int = setting(256, Option(
        "Webhook attempts a process has under way at once.", minimum=1))
    webhook_concurrency_per_account: int = setting(32, Option(
        "Webhook attempts a process has under way at once for one account.",
        more="A receiver that hangs holds up only its own account.", minimum=1))
    max_webhooks_per_account: int = setting(20, Option(
        "Webhook subscriptions an account may have.", minimum=1))
    # Relays (outbound/relay.py): each request's timeout; how often a process looks for events
    # to relay; transient failures' retries: the first wait (doubling each time), the longest,
    # and how long they go on before the event is a dead letter; the most events and bytes an
    # upstream batch holds (RD: 0.2 MB); requests a process has under way for one relay.
    relay_timeout: float = setting(30.0, Option(
        "Seconds an upstream has to answer a relay's request.", unit="s", minimum=0.1))
    relay_poll_seconds: float = setting(1.0, Option(
        "How often a process looks for events to relay.", unit="s", minimum=0.01))
    relay_retry_first_seconds: float = setting(10.0, Option(
        "The wait before the first retry of an event a relay failed to send; it doubles with "
        "each failure (with jitter).", unit="s", minimum=0))
    relay_retry_max_seconds: float = setting(600.0, Option(
        "The longest wait between retries.", unit="s", minimum=0))
    relay_give_up_hours: float = setting(72.0, Option(
        "How long an event's failures are retried before it is a dead letter.",
        more="See [relay.md](relay.md).", unit="hours", minimum=0))
    relay_batch_events: int = setting(500, Option(
        "Events a relay sends in one upstream batch.", minimum=1))
    relay_batch_bytes: int = setting(200_000, Option(
        "The largest body of an upstream batch (RD: 0.2 MB).", unit="bytes", minimum=1000))
    relay_concurrency: int = setting(4, Option(
        "Batches a process has under way at once for one relay.", minimum=1))
    # The request log (request_log.py): which requests to RD's routes it keeps, for how long,
    # how many of an account's and of unauthenticated ones (the oldest go first), and how much of
    # each body.
    request_log: str = setting("rejected", Option(
        "Requests to RD's routes the request log keeps: rejected (answered 4xx or 5xx), all, "
        "or none (off).", more="See [api.md](api.md#the-request-log).",
        choices=("off", "rejected", "all")))
    request_log_retention_days: float = setting(7.0, Option(
        "Days a logged request is kept.", unit="days", minimum=0))
    request_log_max_per_account: int = setting(10_000, Option(
        "Logged requests an account keeps; past it, its oldest go.", minimum=0))
    request_log_max_anonymous: int = setting(1_000, Option(
        "Logged requests kept of those that were not authenticated, all together; past it, "
        "the oldest go.", minimum=0))
    request_log_max_body_bytes: int = setting(65_536, Option(
        "Bytes of each request's and answer's body the request log keeps (a request cut "
        "short cannot be replayed).", unit="bytes", minimum=0))
    # Observing the server.
    access_log: bool = setting(False, Option(
        "Log a line for every request, with its request id (in --log-format).",
        flag="--access-log/--no-access-log", text=lambda on: "on" if on else "off"))
    metrics_token: str = setting("", Option(
        "A token GET /metrics then requires as 'Authorization: Bearer TOKEN'. Default: none, "
        "/metrics is open (keep it off the public internet).",
        more="See [operations.md](operations.md)."))
    # Processes and logs.
    workers: int = setting(1, Option("Server processes sharing the port.", minimum=1))
    log_level: str = setting("info", Option(
        "Log records less severe than this are not written.",
        choices=("critical", "error", "warning", "info", "debug")))
    log_format: str = setting("text", Option(
        "json: one JSON object a line.", choices=("text", "json")))

    @property
    def caps(self) -> DataCaps:
        return DataCaps(self.max_custom_fields, self.max_tags_per_contact)


@dataclass(frozen=True)
class DataCaps:
    """How much one account may hold, so that no tenant grows what other tenants' requests
    read and wait for."""

    custom_fields: int = Settings.max_custom_fields  # per account
    tags_per_contact: int = Settings.max_tags_per_contact


@dataclass(frozen=True)
class ServeOption:
    """A setting as `serve` takes it."""

    name: str  # of the Settings field
    default: Any
    option: Option

    @property
    def flag(self) -> str:
        return self.option.flag or "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return "RDEVENTS_" + self.name.upper()

    @property
    def default_text(self) -> str:
        """The default as the option or the variable would give it."""
        if self.option.text is not None:
            return self.option.text(self.default)
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def serve_options() -> list[ServeOption]:
    """The settings `serve` takes, in the order of Settings."""
    return [ServeOption(field.name, field.default, field.metadata["option"])
            for field in dataclasses.fields(Settings) if "option" in field.metadata]


def markdown_table() -> str:
    """docs/cli.md's table of settings."""
    lines = ["| Option | Variable | Default | What it sets |", "| --- | --- | --- | --- |"]
    for setting in serve_options():
        text = setting.default_text
        default = f"`{text}`" if text else "none"
        if setting.option.unit:
            default += f" {setting.option.unit}"
        says = setting.option.help
        if setting.option.more:
            says = f"{says.removesuffix('.')}. {setting.option.more}"
        lines.append(f"| `{setting.flag}` | `{setting.variable}` | {default} | {says} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
