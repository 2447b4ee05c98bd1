"""Storage: one interface, one backend per database kind.

Writes go through a group committer (`group_commit.py`) that gathers concurrent requests into one
transaction, in which the processing stage (`process/`) decides what each write does.
"""

from __future__ import annotations

import abc
import asyncio
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..contacts import Contact
from ..custom_fields import FieldDefinition
from ..process import Job, KeptRequest, Outcome
from ..relay_rules import RetryPolicy
from ..sandbox import Fault, FaultRequest
from .dashboard import (
    Backlog,
    DeliveryCounts,
    EventSummary,
    Movement,
    StageCount,
    TransitionRecord,
)
from .feed import Commits, FeedPage, FeedPosition
from .operator import AccountSummary, ApiKeySummary, AppSummary, TokenSummary
from .relay_records import (
    DeadLetter,
    Recorded,
    RelayBatch,
    RelayCredentials,
    RelayOutcome,
    RelaySummary,
    Taken,
)
from .request_records import LoggedRequest, OutboxBacklog, RequestSummary
from .webhook_records import Attempt, DeliveryRecord, DueDelivery, Webhook


class StoreUnavailable(Exception):
    """The database cannot be reached or cannot commit; nothing was stored."""


class Overloaded(Exception):
    """Too many writes are waiting; the caller should retry later."""


class WriteConflict(Exception):
    """The transaction kept conflicting with other processes' writers; nothing was stored. The
    jobs of a group may each succeed alone, or later."""


@dataclass(frozen=True)
class Account:
    id: int
    name: str


@dataclass(frozen=True)
class Token:
    account_id: int
    expires_at: str | None
    revoked: bool
    last_used_at: str | None
    refresh_token_id: int | None = None  # the refresh token it was made from, if any


@dataclass(frozen=True)
class ApiKey:
    account_id: int
    active: bool

    @property
    def revoked(self) -> bool:
        return not self.active


@dataclass(frozen=True)
class App:
    """An OAuth client of one account."""

    id: int
    account_id: int
    client_id: str
    secret_hash: str
    redirect_uri: str


@dataclass(frozen=True)
class Admin:
    """An account's administrator, as listed (the password hash stays in the database)."""

    username: str
    account: str
    created_at: str


@dataclass(frozen=True)
class AdminSession:
    """An administrator signed in to the dashboard (ui/), and the account they see."""

    account_id: int
    account_name: str
    username: str
    expires_at: str


@dataclass(frozen=True)
class SignInCounter:
    """Sign-in attempts counted against one username or address since `window_start` (ms)."""

    window_start: int
    attempts: int


@dataclass(frozen=True)
class StoredEvent:
    uuid: str
    event_type: str
    event_family: str
    event_identifier: str
    payload: dict[str, Any]
    received_at: str
    contact_uuid: str | None
    batch_uuid: str | None


class Store(abc.ABC):
    """What the HTTP layer and the CLI need from a database."""

    # Set when a write of this process has queued webhook deliveries (see outbound/sender.py).
    deliveries_queued: asyncio.Event
    # Told when a write of this process has committed events (for the feed's readers).
    commits: Commits
    # Told of each write group once committed: its jobs and seconds (set before open(); for
    # the metrics).
    group_observer: Callable[[int, float], None] | None = None
    # How long a thread that wants the GIL should wait before asking the thread holding it to
    # let go, in seconds, in a server on this store (see http/server.py); Python's default here.
    GIL_SWITCH_INTERVAL = 0.005

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit what is queued, then release the database."""

    @property
    @abc.abstractmethod
    def pending_writes(self) -> int:
        """Write jobs queued or being committed."""

    @abc.abstractmethod
    async def write(self, job: Job) -> Outcome:
        """Have the processing stage decide a job and store what it decides durably: Accepted
        once committed."""

    @abc.abstractmethod
    async def readiness_problem(self) -> str | None:
        """None when the database answers and its schema is current; else what is wrong."""

    @abc.abstractmethod
    async def find_token(self, token_hash: str) -> Token | None: ...

    @abc.abstractmethod
    async def get_contact(self, account_id: int, by: str, value: str) -> Contact | None:
        """`by` is "email" or "uuid"."""

    @abc.abstractmethod
    async def list_contacts(self, account_id: int, email: str | None, tag: str | None,
                            lifecycle_stage: str | None, offset: int,
                            limit: int) -> list[Contact]:
        """The account's contacts matching every filter given, oldest first."""

    @abc.abstractmethod
    async def contact_events(self, account_id: int, contact_id: int, event_types: list[str],
                             newest_first: bool, offset: int, limit: int) -> list[StoredEvent]: ...

    @abc.abstractmethod
    async def get_event(self, account_id: int, event_uuid: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    async def read_feed(self, account_id: int, after: FeedPosition, limit: int,
                        event_types: list[str], since: str | None) -> FeedPage:
        """Up to `limit` of the account's events after `after` in feed order (see feed.py),
        of these types (any, if none) received at or after `since` (if given)."""

    @abc.abstractmethod
    async def find_kept_request(self, account_id: int, key: str) -> KeptRequest | None:
        """What the account's idempotency key keeps, if it is known."""

    @abc.abstractmethod
    async def prune_idempotency_keys(self, created_before: str, limit: int) -> int:
        """Forget up to `limit` idempotency keys kept before `created_before`; how many."""

    @abc.abstractmethod
    async def create_account(self, name: str) -> Account: ...

    @abc.abstractmethod
    async def get_account(self, name: str) -> Account | None: ...

    @abc.abstractmethod
    async def count_accounts(self) -> int: ...

    @abc.abstractmethod
    async def account_name(self, account_id: int) -> str | None: ...

    @abc.abstractmethod
    async def set_account_limits(self, account_id: int, plan: str | None,
                                 per_minute: int | None, per_contact_day: int | None) -> None:
        """Change what is given: a plan, or limits of the account's own (0: none of its own)."""

    @abc.abstractmethod
    async def create_token(self, account_id: int, token_hash: str, expires_at: str | None,
                           refresh_token_id: int | None = None, *,
                           prefix: str | None = None) -> None:
        """An access token (`prefix`: its first characters, for operators); one made from a
        refresh token is revoked with it."""

    @abc.abstractmethod
    async def revoke_token(self, token_hash: str) -> bool:
        """True when a live token was revoked."""

    @abc.abstractmethod
    async def create_api_key(self, account_id: int, key_hash: str, prefix: str,
                             limit: int) -> bool:
        """Store an active key; False (and nothing stored) when the account has `limit`."""

    @abc.abstractmethod
    async def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    @abc.abstractmethod
    async def set_api_key_active(self, key_hash: str, active: bool) -> bool:
        """False when there is no such key."""

    # --- what an operator sees (see operator.py) -----------------------------------------------

    @abc.abstractmethod
    async def list_accounts(self) -> list[AccountSummary]: ...

    @abc.abstractmethod
    async def list_tokens(self, account_id: int) -> list[TokenSummary]: ...

    @abc.abstractmethod
    async def revoke_token_id(self, token_id: int) -> bool:
        """True when a live token was revoked."""

    @abc.abstractmethod
    async def record_token_use(self, token_hash: str, used_at: str, unless_after: str) -> None:
        """Set the token's last use, unless one after `unless_after` is recorded already."""

    @abc.abstractmethod
    async def list_api_keys(self, account_id: int) -> list[ApiKeySummary]: ...

    @abc.abstractmethod
    async def list_apps(self, account_id: int | None) -> list[AppSummary]:
        """The account's apps, or every account's."""

    # --- OAuth (see oauth.py) ---------------------------------------------------------------------

    @abc.abstractmethod
    async def create_app(self, account_id: int, client_id: str, secret_hash: str,
                         redirect_uri: str) -> None: ...

    @abc.abstractmethod
    async def find_app(self, client_id: str) -> App | None: ...

    @abc.abstractmethod
    async def create_code(self, app_id: int, code_hash: str, expires_at: str) -> None: ...

    @abc.abstractmethod
    async def redeem_code(self, app_id: int, account_id: int, code_hash: str,
                          refresh_hash: str) -> int | None:
        """Consume a live code of the app and store the refresh token made from it: its id.
        None if the code is unknown, used or expired, or another exchange of it won."""

    @abc.abstractmethod
    async def revoke_code_grant(self, app_id: int, code_hash: str) -> int | None:
        """Revoke the live refresh token made from a used code of the app: its id, if any."""

    @abc.abstractmethod
    async def find_refresh_token(self, app_id: int, token_hash: str) -> tuple[int, int] | None:
        """(id, account id) of a live refresh token of the app."""

    @abc.abstractmethod
    async def revoke_refresh_token(self, token_hash: str) -> int | None:
        """Revoke a live refresh token and every access token made from it: its id."""

    # --- administrators and their sign-in (see sign_in.py) ----------------------------------------

    @abc.abstractmethod
    async def create_admin(self, account_id: int, username: str, password_hash: str) -> None:
        """Raises AccountExists when the username is taken."""

    @abc.abstractmethod
    async def find_admin(self, username: str) -> tuple[int, str] | None:
        """(account id, password hash) of an administrator."""

    @abc.abstractmethod
    async def list_admins(self, account_id: int | None) -> list[Admin]:
        """The administrators of an account (of every account: None), by account and name."""

    @abc.abstractmethod
    async def set_admin_password(self, username: str, password_hash: str) -> bool:
        """False when there is no such administrator."""

    @abc.abstractmethod
    async def delete_admin(self, username: str) -> bool:
        """False when there is no such administrator."""

    @abc.abstractmethod
    async def sign_in_counters(self, subjects: list[str]) -> dict[str, SignInCounter]: ...

    @abc.abstractmethod
    async def count_sign_in(self, subjects: list[str], now: int,
                            window: int) -> list[SignInCounter]:
        """Count an attempt against each subject, in a window of `window` ms that starts anew
        when the subject's is over; each subject's counter afterwards."""

    @abc.abstractmethod
    async def uncount_sign_in(self, forget: list[str],
                              take_back: list[tuple[str, int]]) -> None:
        """Drop the counters of `forget`; take one attempt back from each (subject,
        window_start) of `take_back` still in that window."""

    @abc.abstractmethod
    async def prune_sign_in(self, before: int) -> None:
        """Drop the counters whose window started before `before` (ms)."""

    @abc.abstractmethod
    async def create_admin_session(self, token_hash: str, username: str,
                                   expires_at: str) -> bool:
        """A dashboard session of the administrator; False when there is no such
        administrator."""

    @abc.abstractmethod
    async def find_admin_session(self, token_hash: str, now: str) -> AdminSession | None:
        """The session, unless it expired by `now` or its administrator is gone."""

    @abc.abstractmethod
    async def end_admin_session(self, token_hash: str) -> None: ...

    @abc.abstractmethod
    async def prune_admin_sessions(self, now: str) -> None:
        """Drop the sessions that expired by `now`."""


    # --- custom fields (see custom_fields.py) --------------------------------------------------

    @abc.abstractmethod
    async def list_fields(self, account_id: int) -> list[FieldDefinition]: ...

    @abc.abstractmethod
    async def get_field(self, account_id: int, uuid: str) -> FieldDefinition | None: ...

    @abc.abstractmethod
    async def create_field(self, account_id: int, definition: FieldDefinition,
                           limit: int) -> bool:
        """Store a field; False (and nothing stored) when the account has `limit` fields.
        Raises FieldExists when the account has a field of that api_identifier."""

    @abc.abstractmethod
    async def update_field(self, account_id: int, definition: FieldDefinition) -> bool: ...

    @abc.abstractmethod
    async def delete_field(self, account_id: int, uuid: str) -> bool: ...

    # --- webhooks (see outbound/) ---------------------------------------------------------------

    @abc.abstractmethod
    async def create_webhook(self, account_id: int, webhook: Webhook, limit: int) -> bool:
        """False (and nothing stored) when the account has `limit` webhooks already; raises
        WebhookExists when it has a webhook of that type to that URL."""

    @abc.abstractmethod
    async def update_webhook(self, account_id: int, webhook: Webhook) -> bool: ...

    @abc.abstractmethod
    async def list_webhooks(self, account_id: int) -> list[Webhook]: ...

    @abc.abstractmethod
    async def get_webhook(self, account_id: int, uuid: str) -> Webhook | None: ...

    @abc.abstractmethod
    async def set_webhook_secret(self, account_id: int, uuid: str, secret: str,
                                 updated_at: str) -> bool: ...

    @abc.abstractmethod
    async def delete_webhook(self, account_id: int, uuid: str) -> bool: ...

    @abc.abstractmethod
    async def list_deliveries(self, account_id: int, webhook_uuid: str, status: str | None,
                              offset: int, limit: int) -> list[DeliveryRecord]: ...

    @abc.abstractmethod
    async def resend_delivery(self, account_id: int, webhook_uuid: str,
                              delivery_uuid: str) -> str | None: ...

    @abc.abstractmethod
    async def take_due_deliveries(self, lease_seconds: float, limit: int, per_account: int,
                                  busy: Mapping[int, int]) -> list[DueDelivery]:
        """At most `per_account` less `busy[account]` of each account, the accounts in turn."""

    @abc.abstractmethod
    async def record_attempts(
            self, outcomes: list[tuple[DueDelivery, Attempt, str, float]]) -> None: ...

    @abc.abstractmethod
    async def prune_deliveries(self, finished_before: str, limit: int) -> int: ...

    # --- the dashboard's reads (see store/dashboard.py, ui/) -----------------------------------

    @abc.abstractmethod
    async def list_events(self, account_id: int, event_type: str | None,
                          contact_id: int | None, since: str | None, offset: int,
                          limit: int) -> list[EventSummary]: ...

    @abc.abstractmethod
    async def count_events(self, account_id: int, since: str,
                           period: int) -> list[tuple[str, str, int]]: ...

    @abc.abstractmethod
    async def count_contacts(self, account_id: int) -> int: ...

    @abc.abstractmethod
    async def search_contacts(self, account_id: int, email_part: str | None, tag: str | None,
                              stage: str | None, offset: int, limit: int) -> list[Contact]: ...

    @abc.abstractmethod
    async def contacts_by_stage(self, account_id: int) -> list[StageCount]: ...

    @abc.abstractmethod
    async def contact_transitions(self, account_id: int, contact_id: int,
                                  limit: int) -> list[TransitionRecord]: ...

    @abc.abstractmethod
    async def funnel_movements(self, account_id: int, since: str,
                               period: int) -> list[Movement]: ...

    @abc.abstractmethod
    async def webhook_backlog(self, account_id: int) -> Backlog: ...

    @abc.abstractmethod
    async def delivery_counts(self, account_id: int) -> dict[str, DeliveryCounts]: ...

    # --- the bulk commands' reads (see store/bulk.py, bulk/) -------------------------------------

    @abc.abstractmethod
    def event_rows(self, account_id: int, since: str | None,
                   until: str | None) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The account's events received from `since` (included) to `until` (not), in order of
        reception, a page at a time: each as its uuid, type, family, identifier, payload (the
        stored JSON text), reception time, its contact's uuid and its batch's uuid (the values
        of GET /platform/events/{event_uuid}, in their order), then more."""

    @abc.abstractmethod
    def event_lines(self, account_id: int, since: str | None,
                    until: str | None) -> AsyncIterator[list[str]]:
        """The events of `event_rows`, each as its document's JSON text (that of GET
        /platform/events/{event_uuid}, compact, its keys in that order), made by the
        database."""

    @abc.abstractmethod
    def contact_pages(self, account_id: int, since: str | None,
                      until: str | None) -> AsyncIterator[list[Contact]]:
        """The account's contacts last changed from `since` to `until`, oldest first, a page
        at a time."""

    @abc.abstractmethod
    async def count_events_between(self, account_id: int, since: str | None,
                                   until: str | None) -> int: ...

    @abc.abstractmethod
    async def count_contacts_between(self, account_id: int, since: str | None,
                                     until: str | None) -> int: ...

    @abc.abstractmethod
    async def stored_event_uuids(self, uuids: list[str]) -> set[str]:
        """Those of `uuids` that stored events have."""

    @abc.abstractmethod
    async def has_events(self, account_id: int) -> bool:
        """Whether the account has stored any event."""

    # --- the request log (see request_log.py) and the outboxes' backlog -------------------------

    @abc.abstractmethod
    async def add_requests(self, records: list[LoggedRequest], per_account: int,
                           anonymous: int) -> None:
        """Store `records` together; then drop the oldest records of each account they belong
        to past `per_account` (past `anonymous` for those without an account)."""

    @abc.abstractmethod
    async def list_requests(self, account_id: int | None, outcome: str | None, offset: int,
                            limit: int) -> list[RequestSummary]:
        """An account's records (None: the unauthenticated ones), newest first; `outcome`
        "rejected" (answered 4xx or 5xx) or "accepted" (the others) keeps only those."""

    @abc.abstractmethod
    async def count_requests(self, account_id: int | None, outcome: str | None,
                             since: str) -> int:
        """How many of an account's records (None: the unauthenticated ones) were received at
        `since` or later; `outcome` as in list_requests."""

    @abc.abstractmethod
    async def get_request(self, account_id: int | None, uuid: str) -> LoggedRequest | None:
        """A record of the account (None: an unauthenticated one), whole."""

    @abc.abstractmethod
    async def prune_requests(self, received_before: str, limit: int) -> int:
        """Drop up to `limit` records received before `received_before`; how many went."""

    @abc.abstractmethod
    async def outbox_backlog(self) -> list[OutboxBacklog]:
        """Each outbox's pending items and when the oldest was queued."""


    # --- the sandbox (see store/sandbox.py) ------------------------------------------------------

    @abc.abstractmethod
    async def add_fault(self, account_id: int, asked: FaultRequest) -> Fault:
        """Store a fault after the account's others."""

    @abc.abstractmethod
    async def list_faults(self, account_id: int) -> list[Fault]:
        """The account's faults not yet spent, in the order they answer."""

    @abc.abstractmethod
    async def clear_faults(self, account_id: int) -> None: ...

    @abc.abstractmethod
    async def take_fault(self, account_id: int, path: str) -> Fault | None:
        """The account's first live fault that answers `path`, counted once."""

    @abc.abstractmethod
    async def reset_account(self, account_id: int) -> None:
        """Erase the account's data; its credentials and administrators stay."""

    @abc.abstractmethod
    async def ensure_token(self, account_name: str, token_hash: str, prefix: str) -> bool:
        """Make the account if needed, and the token a live one of it that never expires;
        False when the token belongs to another account."""

    # --- relays (see store/relays.py, outbound/relay.py) ----------------------------------------

    @abc.abstractmethod
    async def create_relay(self, account_id: int, url: str, credentials: RelayCredentials,
                           events_per_minute: int, from_start: bool) -> str:
        """A new relay's uuid; `from_start` queues every event the account holds for it."""

    @abc.abstractmethod
    async def delete_relay(self, uuid: str) -> bool: ...

    @abc.abstractmethod
    async def update_relay(self, uuid: str, change: Callable[[RelayCredentials],
                                                             RelayCredentials],
                           url: str | None = None,
                           events_per_minute: int | None = None) -> RelayCredentials | None:
        """None when there is no such relay; ValueError from `change` changes nothing."""

    @abc.abstractmethod
    async def set_relay_paused(self, uuid: str, paused: bool,
                               reason: str | None = None) -> bool: ...

    @abc.abstractmethod
    async def relay_account(self, uuid: str) -> int | None: ...

    @abc.abstractmethod
    async def list_relays(self, account_id: int | None = None,
                          uuid: str | None = None) -> list[RelaySummary]: ...

    @abc.abstractmethod
    async def dead_letters(self, uuid: str, offset: int = 0,
                           limit: int | None = None) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def replay_dead_letters(self, uuid: str, event_uuids: list[str] | None) -> int: ...

    @abc.abstractmethod
    async def relays_due(self) -> list[int]: ...

    @abc.abstractmethod
    async def take_relay_batch(self, relay_id: int, max_events: int, max_bytes: int,
                               lease_seconds: float) -> Taken: ...

    @abc.abstractmethod
    async def spend_relay_budget(self, relay_id: int, events: int) -> bool: ...

    @abc.abstractmethod
    async def renew_relay_lease(self, batch: RelayBatch) -> RelayBatch | None: ...

    @abc.abstractmethod
    async def record_relay_outcome(self, batch: RelayBatch, outcome: RelayOutcome,
                                   policy: RetryPolicy, rng: random.Random) -> Recorded: ...

    @abc.abstractmethod
    async def relay_credentials(self, relay_id: int) -> RelayCredentials | None: ...

    @abc.abstractmethod
    async def save_relay_tokens(self, relay_id: int, replaced: str | None, access_token: str,
                                expires_in: float | None,
                                refresh_token: str | None) -> RelayCredentials | None: ...

    @abc.abstractmethod
    async def database_micros(self) -> int:
        """The database's clock, in microseconds since 1970."""


class AccountExists(Exception):
    pass


class FieldExists(Exception):
    pass


class WebhookExists(Exception):
    pass


def open_store(url: str, **options: Any) -> Store:
    """The store for a database URL (`sqlite:///relative.db`, `sqlite:////absolute.db`,
    `postgresql://user@host:port/database`); DatabaseProblem for another URL."""
    from .problems import check_url

    check_url(url)
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url, **options)
    from .postgres import PostgresStore

    return PostgresStore(url, **options)
