"""Settings of a running server; the CLI fills them from options and RDEVENTS_* variables."""

from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///data/rdevents.db"
DEFAULT_MAX_BODY_BYTES = 204_800  # RD's documented 0.2 MB
DEFAULT_MAX_BATCH_EVENTS = 1_000
DEFAULT_MAX_CUSTOM_FIELDS = 500
DEFAULT_MAX_TAGS_PER_CONTACT = 1_000


@dataclass(frozen=True)
class DataCaps:
    """How much one account may hold, so that no tenant grows what other tenants' requests
    read and wait for."""

    custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS  # per account
    tags_per_contact: int = DEFAULT_MAX_TAGS_PER_CONTACT
DEFAULT_HEAD_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_KEEP_ALIVE_TIMEOUT = 5.0  # uvicorn's
DEFAULT_MAX_CONNECTIONS = 10_000


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    max_custom_fields: int = DEFAULT_MAX_CUSTOM_FIELDS
    max_tags_per_contact: int = DEFAULT_MAX_TAGS_PER_CONTACT
    # Group commit: the most jobs one transaction takes, and how many may wait before 503.
    max_group: int = 256
    max_pending_writes: int = 10_000
    # How long a live token is trusted without a database read: a revoked token keeps working
    # for at most this long.
    token_cache_seconds: float = 1.0
    # Administrators' sign-in (sign_in.py): failed attempts allowed per username and per client
    # address within a window; past them, refused until the window ends.
    sign_in_failures_per_username: int = 5
    sign_in_failures_per_address: int = 20
    sign_in_window_seconds: float = 900.0
    # The dashboard (/ui/): how long a sign-in lasts before the administrator signs in again.
    ui_session_seconds: float = 43_200.0
    # RD's rate limits (limits.py): off unless asked for.
    rate_limits: bool = False
    # Webhook deliveries: each attempt's timeout, the waits before each retry (RD retries 3
    # times), and how often a sender looks for work other processes queued.
    webhook_timeout: float = 5.0
    webhook_retry_delays: tuple[float, ...] = (10.0, 60.0, 300.0)
    webhook_poll_seconds: float = 1.0
    # Deliveries over (delivered, failed, erased) are forgotten, attempts and all, after this.
    webhook_retention_days: float = 14.0
    # Connections (http/connections.py): seconds for a request's head to arrive (from the
    # connection or the previous response), then for its body; seconds an idle connection is
    # kept after a response; connections a process keeps open (at most what its open-files
    # limit allows).
    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    keep_alive_timeout: float = DEFAULT_KEEP_ALIVE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # Addresses of proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
    # (comma-separated addresses or networks, or *): the client's address counts in sign-in limits.
    forwarded_allow_ips: str = "127.0.0.1"
    # Networks webhooks may be sent to although they are not public (CIDR strings): by default
    # none, so no tenant can make the server post to itself or to the network behind it.
    webhook_allowed_networks: tuple[str, ...] = ()
    # Attempts a process has under way at once, in all and for one account, so that receivers
    # that hang hold up their own account's deliveries, not everyone's.
    webhook_concurrency: int = 256
    webhook_concurrency_per_account: int = 32
    max_webhooks_per_account: int = 20
    # Relays (outbound/relay.py): each request's timeout; how often a process looks for events
    # to relay; transient failures' retries: the first wait (doubling each time), the longest,
    # and how long they go on before the event is a dead letter; the most events and bytes an
    # upstream batch holds (RD: 0.2 MB); requests a process has under way for one relay.
    relay_timeout: float = 30.0
    relay_poll_seconds: float = 1.0
    relay_retry_first_seconds: float = 10.0
    relay_retry_max_seconds: float = 600.0
    relay_give_up_hours: float = 72.0
    relay_batch_events: int = 500
    relay_batch_bytes: int = 200_000
    relay_concurrency: int = 4

    @property
    def caps(self) -> DataCaps:
        return DataCaps(self.max_custom_fields, self.max_tags_per_contact)
