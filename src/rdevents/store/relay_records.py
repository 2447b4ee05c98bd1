"""What the store keeps of relays, as the CLI, the API and the senders see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..relay_rules import contact_email


@dataclass(frozen=True)
class RelayCredentials:
    """How a relay authenticates upstream: a static token, or an OAuth client (id, secret and
    refresh token) with the access token last obtained and when it expires (microseconds since
    1970, database clock; None: unknown)."""

    token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    access_expires_at: int | None = None

    @property
    def oauth(self) -> bool:
        return self.client_id is not None

    @property
    def bearer(self) -> str | None:
        """The token requests carry now."""
        return self.access_token if self.oauth else self.token


@dataclass(frozen=True)
class RelaySummary:
    """A relay as `rdevents relays list` and the API show it (never its credentials). The first
    eight fields are those DESIGN.md names; the others say more of its health."""

    uuid: str
    account: str
    url: str
    state: str  # active or paused
    backlog: int  # events waiting to be sent (retries included, dead letters not)
    sent: int
    dead: int  # dead letters waiting for a person
    last_error: str | None
    retried: int  # retries made: failures and limits
    lag_seconds: float | None  # the age of the oldest waiting event (None: none waits)
    last_success_at: str | None
    last_error_at: str | None
    paused_reason: str | None
    paused_until: str | None  # a pause of the upstream's account limit, which ends by itself
    events_per_minute: int  # 0: no budget
    auth: str  # token or oauth
    created_at: str


@dataclass(frozen=True)
class DeadLetter:
    """An event the upstream refused for good, or that failed past the retries' time."""

    event_uuid: str
    status: int | None  # the upstream's last HTTP status (None: it never answered)
    error: str | None
    failed_at: str | None


@dataclass(frozen=True)
class RelayItem:
    """An event a sender has taken: its outbox row, the body to send, and what its retries
    need."""

    id: int
    event_uuid: str
    body: bytes
    contact_id: int
    attempts: int
    first_failed_at: int | None

    @property
    def email(self) -> str:
        """The e-mail its payload names, lower-cased (as RD's lead limiter names it)."""
        return contact_email(self.body)


@dataclass(frozen=True)
class RelayBatch:
    """Events taken together for one relay, in the order they go, held by the taker until
    `lease` (microseconds, database clock)."""

    relay_id: int
    relay_uuid: str
    url: str
    credentials: RelayCredentials
    events_per_minute: int  # its budget (0: none)
    lease: int
    lease_seconds: float
    items: list[RelayItem]


@dataclass(frozen=True)
class Taken:
    """What a take found: a batch, or none and how long (seconds) the relay certainly cannot
    send (its budget is spent, or the upstream's limit holds it; 0: unknown)."""

    batch: RelayBatch | None
    wait: float


@dataclass
class RelayOutcome:
    """What sending a batch decided for its events and its relay."""

    sent: list[int] = field(default_factory=list)
    # Transient failures: (item, the upstream's status, the error).
    retry: list[tuple[RelayItem, int | None, str]] = field(default_factory=list)
    # Refused for good: (outbox id, status, the upstream's errors).
    dead: list[tuple[int, int | None, str]] = field(default_factory=list)
    # Not sent, or refused only for another's limit: due again at once.
    release: list[int] = field(default_factory=list)
    # A contact's limit: (outbox id, seconds it waits).
    hold_contacts: list[tuple[int, float]] = field(default_factory=list)
    hold_relay: float | None = None  # seconds the account's limit holds the relay
    pause: str | None = None  # why the relay pauses until a person resumes it
    last_error: str | None = None
    attempted: bool = False  # whether the upstream answered something

    @property
    def stopped(self) -> bool:
        """Whether nothing more may be sent for this relay now."""
        return self.pause is not None or self.hold_relay is not None

    def count(self) -> int:
        return (len(self.sent) + len(self.retry) + len(self.dead) + len(self.release)
                + len(self.hold_contacts))


@dataclass(frozen=True)
class Recorded:
    """What recording an outcome changed (for the log): events sent, back to wait (failures,
    limits, pauses), dead letters, and those whose lease had ended (another sender has them)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_lease: int = 0
