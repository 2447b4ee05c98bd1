"""What the SQL backends share: the statements, the group write and the reads.

A backend says how to connect, how a transaction begins and ends, how ids are handed out, and
(PostgreSQL) how concurrent writers of other processes are kept off the same contacts. Statements
are written with `?` placeholders; a backend that uses another style converts them once.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

from ..clock import utc_now
from ..config import DataCaps
from ..contacts import Contact
from ..custom_fields import inferred_definition
from ..ids import new_uuid
from ..limits import ACCOUNT, DAY, CounterKey, Quota, quota, window
from ..process import (
    Accepted,
    ContactKey,
    EventsJob,
    FieldKey,
    GroupContext,
    GroupRows,
    Job,
    KeptRequest,
    KeyRef,
    Outcome,
    process_group,
)
from ..webhook_rules import Subscription
from . import (
    Account,
    AccountExists,
    ApiKey,
    App,
    Store,
    StoredEvent,
    StoreUnavailable,
    Token,
)
from .admins import AdminQueries
from .bulk import BulkQueries
from .dashboard import DashboardQueries
from .feed import Commits, FeedPage, FeedPosition
from .fields import FIELD_COLUMNS, FieldQueries, field_row
from .group_commit import GroupCommitter
from .operator import OperatorQueries
from .outbox import OutboxQueries
from .queries import Row, Statement, TableRows, from_json, placeholders, to_json
from .relays import RelayQueries, relay_outbox_rows, relays_by_account, relays_read
from .request_log import RequestLogQueries
from .sandbox import SandboxQueries
from .schema import head_revision
from .tag_index import tag_key, tag_keys
from .webhooks import WebhookQueries

T = TypeVar("T")

CONTACT_COLUMNS = ("id, uuid, email, profile, tags, legal_bases, lifecycle_stage, opportunity, "
                   "contact_owner_email, created_at, updated_at")
EVENT_COLUMNS = ("e.uuid, e.event_type, e.event_family, e.event_identifier, e.payload, "
                 "e.received_at, c.uuid, e.batch_uuid")
EVENTS_WITH_CONTACT = "events e LEFT JOIN contacts c ON c.id = e.contact_id"
KEPT_COLUMNS = "account_id, key, fingerprint, event_uuids, batch_uuid"
KEY_COLUMNS = ("account_id", "key", "fingerprint", "event_uuids", "batch_uuid", "created_at")
# Well below every backend's limit of parameters a statement.
CHUNK = 500


def contact_from_row(row: tuple[Any, ...]) -> Contact:
    return Contact(
        id=row[0], uuid=row[1], email=row[2], profile=from_json(row[3]),
        tags=from_json(row[4]), legal_bases=from_json(row[5]), lifecycle_stage=row[6],
        opportunity=bool(row[7]), contact_owner_email=row[8], created_at=row[9],
        updated_at=row[10],
    )


def event_from_row(row: tuple[Any, ...]) -> StoredEvent:
    return StoredEvent(uuid=row[0], event_type=row[1], event_family=row[2],
                       event_identifier=row[3], payload=orjson.loads(row[4]),
                       received_at=row[5], contact_uuid=row[6], batch_uuid=row[7])


def kept_from_row(row: tuple[Any, ...]) -> KeptRequest:
    return KeptRequest(row[2], tuple(from_json(row[3])), row[4])


def key_row(job: EventsJob) -> tuple[Any, ...]:
    """The row keeping a job's idempotency key."""
    assert job.key is not None
    return (job.account_id, job.key.key, job.key.fingerprint, to_json(job.event_uuids),
            job.batch_uuid, job.received_at)


def contact_state(c: Contact) -> tuple[Any, ...]:
    return (orjson.dumps(c.profile).decode(), orjson.dumps(c.tags).decode(),
            orjson.dumps(c.legal_bases).decode(), c.lifecycle_stage, c.opportunity,
            c.contact_owner_email, c.updated_at)


def _by_account(keys: set[tuple[int, str]]) -> dict[int, list[str]]:
    """The names of `keys` (contacts' e-mails, fields' identifiers), by account, sorted."""
    by_account: dict[int, list[str]] = {}
    for account_id, name in keys:
        by_account.setdefault(account_id, []).append(name)
    for names in by_account.values():
        names.sort()  # strings: a third of the time sorting the (account, name) pairs took
    return dict(sorted(by_account.items()))


def _field_type_statements(fields: set[FieldKey]) -> list[Statement]:
    statements: list[Statement] = []
    for account_id, names in _by_account(fields).items():
        for start in range(0, len(names), CHUNK):
            chunk = names[start:start + CHUNK]
            statements.append((
                "SELECT account_id, api_identifier, data_type FROM custom_fields "
                f"WHERE account_id = ? AND api_identifier IN ({placeholders(len(chunk))})",
                (account_id, *chunk)))
    return statements


def _field_types(results: list[list[tuple[Any, ...]]]) -> dict[FieldKey, str]:
    return {(account_id, name): data_type
            for rows in results for account_id, name, data_type in rows}


def ids_by_table(results: list[list[tuple[Any, ...]]]) -> dict[str, list[int]]:
    """The keys of rows (table, key), by table, ascending."""
    ids: dict[str, list[int]] = {}
    for rows in results:
        for table, value in rows:
            ids.setdefault(table, []).append(value)
    return {table: sorted(values) for table, values in ids.items()}


def _tag_index_changes(rows: GroupRows) -> tuple[list[Row], list[Row]]:
    """The contact_tags rows the group adds, and those it removes."""
    added: list[Row] = []
    removed: list[Row] = []
    for key, contact in rows.contacts.items():
        tags_before = rows.tags_before.get(key)
        if not tags_before:  # a new contact, or one that had none: each tag is added
            added += [(key[0], tag, contact.id) for tag in tag_keys(contact.tags)]
            continue
        if contact.tags == tags_before:  # the usual case: nothing to hash or write
            continue
        before, now = tag_keys(tags_before), tag_keys(contact.tags)
        added += [(key[0], tag, contact.id) for tag in now - before]
        removed += [(key[0], tag, contact.id) for tag in before - now]
    return added, removed


def _custom_field_rows(new_fields: dict[FieldKey, str]) -> TableRows:
    """The definitions of the fields the group's events defined by sending them."""
    now = utc_now()
    return TableRows("custom_fields", FIELD_COLUMNS + ("account_id",), [
        (*field_row(inferred_definition(name, data_type, new_uuid(), now)), account_id)
        for (account_id, name), data_type in new_fields.items()])


class WriteSession:
    """A group's transaction on the writer's connection: what the processing stage reads and
    writes through (process.ProcessBackend)."""

    def __init__(self, store: SqlStore, conn: Any, jobs: list[Job]) -> None:
        self.store = store
        self.conn = conn
        self._fresh_minutes: set[CounterKey] = set()
        # Sent ahead of the group's first statements (see SqlStore.hold_accounts_statements).
        self._holds = store.hold_accounts_statements({job.account_id for job in jobs})
        self._events = sum(len(job.events) for job in jobs if isinstance(job, EventsJob))
        # Primary keys reserved with the group's reads, taken by its inserts in order.
        self._reserved: dict[str, list[int]] = {}

    def _together(self, statements: list[Statement]) -> list[list[tuple[Any, ...]]]:
        """`read_together`, the accounts' holds first if the group has not taken them yet;
        the rows of `statements` alone."""
        holds, self._holds = self._holds, []
        if not holds and not statements:
            return []
        return self.store.read_together(self.conn, holds + statements)[len(holds):]

    def load_keys(self, keys: set[KeyRef]) -> tuple[dict[KeyRef, KeptRequest], set[KeyRef]]:
        ordered = sorted(keys)
        statements = self.store.try_lock_keys_statements(ordered)
        locks = len(statements)
        for account_id, names in _by_account(keys).items():
            for start in range(0, len(names), CHUNK):
                chunk = names[start:start + CHUNK]
                statements.append((f"SELECT {KEPT_COLUMNS} FROM idempotency_keys WHERE "
                                   f"account_id = ? AND key IN ({placeholders(len(chunk))})",
                                   (account_id, *chunk)))
        results = self._together(statements)
        busy = {ref for ref, (taken,) in zip(ordered, results[0], strict=True)
                if not taken} if locks else set()
        return {(row[0], row[1]): kept_from_row(row)
                for rows in results[locks:] for row in rows}, busy

    def lock_rate_counters(self, account_ids: set[int]) -> None:
        self._together(self.store.lock_counters_statements(sorted(account_ids)))

    def load_rate_state(self, account_ids: set[int], keys: set[CounterKey]
                        ) -> tuple[dict[CounterKey, int], dict[int, Quota]]:
        found: dict[CounterKey, int] = {}
        for account_id in sorted(account_ids):
            subjects = sorted({key[1] for key in keys if key[0] == account_id})
            windows = sorted({key[2] for key in keys if key[0] == account_id})
            for start in range(0, len(subjects), CHUNK):
                chunk = subjects[start:start + CHUNK]
                for subject, window_start, count in self.store.query(
                        self.conn, "SELECT subject, window_start, count FROM rate_counters "
                        f"WHERE account_id = ? AND window_start IN ({placeholders(len(windows))}) "
                        f"AND subject IN ({placeholders(len(chunk))})",
                        (account_id, *windows, *chunk)):
                    found[(account_id, subject, window_start)] = count
        self._fresh_minutes = {key for key in keys if key[1] == ACCOUNT and key not in found}
        ids = sorted(account_ids)
        rows = self.store.query(
            self.conn, "SELECT id, plan, events_per_minute, events_per_contact_day FROM accounts "
            f"WHERE id IN ({placeholders(len(ids))})", ids)
        return found, {row[0]: quota(row[1], row[2], row[3]) for row in rows}

    def load_context(self, contacts: set[ContactKey], account_ids: set[int],
                     fields: set[FieldKey]) -> GroupContext:
        # Read together: on PostgreSQL, one round trip for all of it (the writer waits on each).
        statements: list[Statement] = [relays_read(account_ids)]
        statements += self.store.lock_contacts_statements(contacts)
        locks = len(statements)
        owners: list[int] = []  # the account of each statement reading contacts
        for account_id, emails in _by_account(contacts).items():
            reads = self.store.select_contacts_statements(account_id, emails)
            statements += reads
            owners += [account_id] * len(reads)
        contact_statements = len(statements)
        ids = sorted(account_ids)
        statements.append(("SELECT account_id, id, event_type, include_relations, "
                           f"event_identifiers FROM webhooks WHERE account_id IN "
                           f"({placeholders(len(ids))}) ORDER BY id", ids))
        statements += _field_type_statements(fields)
        reservations = self.store.reserve_ids_statements(
            {"contacts": len(contacts), "events": self._events})
        results = self._together(statements + reservations)
        if reservations:
            self._reserved = ids_by_table(results[-len(reservations):])
            del results[-len(reservations):]
        found: dict[ContactKey, Contact] = {}
        for account_id, rows in zip(owners, results[locks:contact_statements], strict=True):
            for row in rows:
                found[(account_id, row[2])] = contact_from_row(row)
        subscriptions: dict[int, list[Subscription]] = {}
        for account_id, webhook_id, event_type, relations, identifiers in \
                results[contact_statements]:
            subscriptions.setdefault(account_id, []).append(Subscription(
                webhook_id, event_type, tuple(from_json(relations)),
                tuple(from_json(identifiers))))
        return GroupContext(found, subscriptions,
                            _field_types(results[contact_statements + 1:]),
                            relays_by_account(results[0]))

    def lock_fields(self, fields: set[FieldKey]) -> dict[FieldKey, str]:
        statements = self.store.lock_fields_statements(fields)
        locks = len(statements)
        results = self._together(statements + _field_type_statements(fields))
        return _field_types(results[locks:])

    def count_fields(self, account_ids: set[int]) -> dict[int, int]:
        ids = sorted(account_ids)
        return dict(self.store.query(
            self.conn, "SELECT account_id, count(*) FROM custom_fields "
            f"WHERE account_id IN ({placeholders(len(ids))}) GROUP BY account_id", ids))

    def erase_contact(self, key: ContactKey, contact_id: int) -> None:
        # The events stay, as anonymous counts: type, identifier and time, no payload.
        for sql, params in (
                ("UPDATE events SET payload = ?, contact_id = NULL WHERE contact_id = ?",
                 ("{}", contact_id)),
                ("DELETE FROM funnel_transitions WHERE contact_id = ?", (contact_id,)),
                ("DELETE FROM contact_tags WHERE contact_id = ?", (contact_id,)),
                # Webhooks about the contact carry its data: those not sent never will be, and
                # none can be sent again; their attempts stay.
                ("UPDATE webhook_deliveries SET body = ?, contact_id = NULL, status = 'erased' "
                 "WHERE contact_id = ?", ("{}", contact_id)),
                ("DELETE FROM contacts WHERE id = ?", (contact_id,)),
                # Events not yet relayed are not: they have nothing left to say.
                ("DELETE FROM relay_outbox WHERE relay_id IN (SELECT id FROM relays WHERE "
                 "account_id = ?) AND contact_id = ?", (key[0], contact_id)),
                ("DELETE FROM rate_counters WHERE account_id = ? AND subject = ?", key)):
            self.store.execute_many(self.conn, sql, [params])

    def write(self, rows: GroupRows) -> None:
        store, conn = self.store, self.conn
        new = [(key, c) for key, c in rows.contacts.items() if c.id is None]
        changed = [c for c in rows.contacts.values() if c.id is not None]
        ids = self._take_ids({"contacts": len(new), "events": len(rows.events)})
        event_ids = ids["events"]
        for (_, contact), new_id in zip(new, ids["contacts"], strict=True):
            contact.id = new_id
        store.execute_many(
            conn, "UPDATE contacts SET profile = ?, tags = ?, legal_bases = ?, "
            "lifecycle_stage = ?, opportunity = ?, contact_owner_email = ?, updated_at = ? "
            "WHERE id = ?", [(*contact_state(c), c.id) for c in changed])
        events: list[tuple[Any, ...]] = []
        transitions: list[tuple[Any, ...]] = []
        for event_id, (job, event, event_uuid, payload, identifier, key, t) in zip(
                event_ids, rows.events, strict=True):
            contact_id = rows.contacts[key].id
            events.append((event_id, event_uuid, job.account_id, contact_id, job.batch_uuid,
                           event.type.name, event.event_family, identifier, payload,
                           job.received_at))
            if t is not None:
                transitions.append((job.account_id, contact_id, event_id, t.from_stage,
                                    t.to_stage, t.from_opportunity, t.to_opportunity, t.value,
                                    t.reason, job.received_at, "event"))
        for key, t, at in rows.api_transitions:
            transitions.append((key[0], rows.contacts[key].id, None, t.from_stage, t.to_stage,
                                t.from_opportunity, t.to_opportunity, None, None, at, "api"))
        added_tags, removed_tags = _tag_index_changes(rows)
        store.execute_many(conn, "DELETE FROM contact_tags WHERE account_id = ? "
                                 "AND tag_key = ? AND contact_id = ?", removed_tags)
        self._save_counters(rows.counters)
        created = utc_now()
        # Every table's rows at once, in the order of no consequence: no row refers to another
        # written with it through a constraint.
        store.insert_rows(conn, [
            TableRows("contacts", ("profile", "tags", "legal_bases", "lifecycle_stage",
                                   "opportunity", "contact_owner_email", "updated_at", "id",
                                   "uuid", "account_id", "email", "created_at"),
                      [(*contact_state(c), c.id, c.uuid, key[0], c.email, c.created_at)
                       for key, c in new]),
            TableRows("events", ("id", "uuid", "account_id", "contact_id", "batch_uuid",
                                 "event_type", "event_family", "event_identifier", "payload",
                                 "received_at"), events),
            TableRows("funnel_transitions", ("account_id", "contact_id", "event_id",
                                             "from_stage", "to_stage", "from_opportunity",
                                             "to_opportunity", "value", "reason", "created_at",
                                             "cause"), transitions),
            TableRows("contact_tags", ("account_id", "tag_key", "contact_id"), added_tags),
            _custom_field_rows(rows.new_fields),
            # Due at once (0), whatever the hosts' clocks say.
            TableRows("webhook_deliveries", ("uuid", "webhook_id", "contact_id", "event_uuid",
                                             "body", "status", "attempts", "next_attempt_at",
                                             "created_at", "updated_at"),
                      [(new_uuid(), d.webhook_id, rows.contacts[d.contact].id, d.event_uuid,
                        d.body, "pending", 0, 0, created, created) for d in rows.deliveries]),
            relay_outbox_rows(rows, event_ids),
            TableRows("idempotency_keys", KEY_COLUMNS, [key_row(job) for job in rows.keyed])])

    def _take_ids(self, counts: dict[str, int]) -> dict[str, list[int]]:
        """`counts` primary keys of each table, ascending: reserved ones first, then, if they
        fall short (a contact created again after its erasure, in one group), new ones."""
        taken = {}
        for table, count in counts.items():
            reserved = self._reserved.setdefault(table, [])
            taken[table] = reserved[:count]
            del reserved[:count]
        short = {table: count - len(taken[table]) for table, count in counts.items()}
        if any(short.values()):
            for table, ids in self.store.allocate_ids(self.conn, short).items():
                taken[table] += ids
        return taken

    def _save_counters(self, counters: dict[CounterKey, int]) -> None:
        if not counters:
            return
        self.store.execute_many(
            self.conn, "INSERT INTO rate_counters (account_id, subject, window_start, count) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (account_id, subject, window_start) "
            "DO UPDATE SET count = excluded.count",
            [(*key, count) for key, count in counters.items()])
        # The first write of an account in a new minute drops its counters of windows that
        # are over: minutes before this one, days before today.
        self.store.execute_many(
            self.conn, "DELETE FROM rate_counters WHERE account_id = ? AND "
            "(subject = ? AND window_start < ? OR subject <> ? AND window_start < ?)",
            [(account_id, ACCOUNT, start, ACCOUNT, window(start, DAY))
             for account_id, _, start in self._fresh_minutes
             if (account_id, ACCOUNT, start) in counters])


class SqlStore(FieldQueries, WebhookQueries, RelayQueries, OperatorQueries, AdminQueries,
               DashboardQueries, RequestLogQueries, OutboxQueries, SandboxQueries,
               BulkQueries, Store):
    """A store over a SQL database: writes through the group committer, up to WRITERS groups at
    a time, with writer threads of their own for what blocks (see each backend's `commit_group`);
    reads and administration through the backend's own means."""

    def __init__(self, url: str, *, max_group: int = 256, max_pending: int = 10_000,
                 caps: DataCaps = DataCaps()) -> None:
        self.url = url
        self.caps = caps
        # Set when a write of this process queued webhook deliveries: senders need not wait
        # for their next look at the outbox.
        self.deliveries_queued = asyncio.Event()
        self.commits = Commits()
        self._max_group = max_group
        self._max_pending = max_pending
        self._executor: ThreadPoolExecutor | None = None
        self._committer: GroupCommitter | None = None

    # --- what a backend provides ------------------------------------------------------------------

    @abc.abstractmethod
    def query(self, conn: Any, sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
        """Run a statement on a connection of the writer thread and return its rows."""

    @abc.abstractmethod
    def execute_many(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    def read_together(self, conn: Any, statements: list[Statement]) -> list[list[tuple[Any, ...]]]:
        """Run reads (and locks) in order on a connection of the writer thread; the rows of
        each. A backend may send them together."""
        return [self.query(conn, sql, params) for sql, params in statements]

    def select_contacts_statements(self, account_id: int, emails: list[str]
                                   ) -> list[Statement]:
        """Statements that read the account's contacts with these e-mails."""
        return [(f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE account_id = ? "
                 f"AND email IN ({placeholders(len(chunk))})", (account_id, *chunk))
                for chunk in (emails[start:start + CHUNK]
                              for start in range(0, len(emails), CHUNK))]

    @abc.abstractmethod
    def insert_rows(self, conn: Any, inserts: list[TableRows]) -> None:
        """Insert each table's rows, in order, in the backend's cheapest way (not one INSERT a
        row); the tables in any order."""

    @abc.abstractmethod
    def allocate_ids(self, conn: Any, counts: dict[str, int]) -> dict[str, list[int]]:
        """For each table, as many unused primary keys as `counts` says, in ascending order, in
        the current write transaction."""

    def reserve_ids_statements(self, counts: dict[str, int]) -> list[Statement]:
        """Statements reserving, with a group's reads, up to `counts` primary keys of each
        table for its inserts, a row (table, key) each (see `ids_by_table`); none where
        `allocate_ids` costs no round trip (SQLite)."""
        return []

    # Where other processes may write at the same time (PostgreSQL), a group keeps them off
    # what it reads to change until its transaction ends: these give the statements that do.

    def lock_contacts_statements(self, keys: set[ContactKey]) -> list[Statement]:
        return []

    def lock_fields_statements(self, keys: set[FieldKey]) -> list[Statement]:
        return []

    def lock_counters_statements(self, account_ids: list[int]) -> list[Statement]:
        """Statements keeping other writers off these accounts' rate counters until the
        transaction ends."""
        return []

    def try_lock_keys_statements(self, keys: list[KeyRef]) -> list[Statement]:
        """None, or one statement answering for each idempotency key, in order, whether its
        lock was taken (until the transaction ends) rather than held by another transaction:
        never waiting for it."""
        return []

    def hold_accounts_statements(self, account_ids: set[int]) -> list[Statement]:
        """Statements keeping the accounts' relays from being created or deleted, and their
        data from being reset, until the transaction ends: a group sends them before any other,
        so that it runs wholly before such a change or wholly after it."""
        return []

    @abc.abstractmethod
    async def commit_group(self, jobs: list[Job]) -> list[Outcome]:
        """Process `jobs` (see `process_jobs`) in one transaction, and commit it."""

    # --- lifecycle --------------------------------------------------------------------------------

    # How many write transactions of this process may be under way at once, each on a writer
    # thread of its own: one where the database has one writer (SQLite).
    WRITERS = 1

    def start_writer(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.WRITERS, thread_name_prefix="writer")
        self._committer = GroupCommitter(self.commit_group, max_group=self._max_group,
                                         max_pending=self._max_pending,
                                         concurrency=self.WRITERS, observe=self.group_observer,
                                         held_back=self._wake_held_back)
        self._committer.start()

    def _wake_held_back(self, jobs: list[Job]) -> None:
        """Wake the feed readers of these jobs' accounts again: their events were committed
        while an earlier transaction of this process was under way, which kept them from the
        feed (its horizon) until it ended. (Never with one writer: groups end in order.)"""
        for account_id in {job.account_id for job in jobs}:
            self.commits.committed(account_id)

    async def stop_writer(self) -> None:
        if self._committer is not None:
            await self._committer.stop()
            self._committer = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # --- writes -----------------------------------------------------------------------------------

    @property
    def pending_writes(self) -> int:
        return 0 if self._committer is None else self._committer.pending

    async def write(self, job: Job) -> Outcome:
        if self._committer is None:
            raise StoreUnavailable("the store is closed")
        outcome = await self._committer.submit(job)
        if isinstance(outcome, Accepted):
            if outcome.makes_deliveries:
                self.deliveries_queued.set()
            self.commits.committed(job.account_id)
        return outcome

    def in_writer_thread(self, function: Callable[..., T], *args: Any) -> Future[T]:
        """Start `function(*args)` on a writer thread now; the thread's future of its result.
        (Not a coroutine, which would start the work only once the event loop got round to it,
        behind every callback then ready; and the thread's own future, which a caller that is
        cancelled can still wait on: see SQLiteStore._to_the_end.)"""
        if self._executor is None:
            raise StoreUnavailable("the store is closed")
        return self._executor.submit(function, *args)

    def process_jobs(self, conn: Any, jobs: list[Job]) -> list[Outcome]:
        """The processing stage's decisions for `jobs`, written in the transaction open on
        `conn`."""
        return process_group(WriteSession(self, conn, jobs), jobs,
                             self.caps)

    # --- reads ------------------------------------------------------------------------------------

    async def readiness_problem(self) -> str | None:
        try:
            rows = await self.fetch("SELECT version_num FROM alembic_version")
        except StoreUnavailable as exc:
            return f"The database is unreachable: {exc}"
        current, needed = (rows[0][0] if rows else None), head_revision()
        if current != needed:
            return f"The database schema is at {current}, this version needs {needed}."
        return await self.write_problem()

    @abc.abstractmethod
    async def write_problem(self) -> str | None:
        """None when a write could commit now; else why it could not."""

    async def find_token(self, token_hash: str) -> Token | None:
        # A token made from a refresh token is revoked with it: read both in one statement.
        rows = await self.fetch(
            "SELECT t.account_id, t.expires_at, t.revoked_at, r.revoked_at, t.last_used_at, "
            "t.refresh_token_id "
            "FROM tokens t LEFT JOIN refresh_tokens r ON r.id = t.refresh_token_id "
            "WHERE t.token_hash = ?", (token_hash,))
        if not rows:
            return None
        account_id, expires_at, revoked_at, refresh_revoked_at, last_used_at, refresh_id = rows[0]
        return Token(account_id, expires_at,
                     revoked_at is not None or refresh_revoked_at is not None, last_used_at,
                     refresh_id)

    async def get_contact(self, account_id: int, by: str, value: str) -> Contact | None:
        column = {"email": "email", "uuid": "uuid"}[by]
        rows = await self.fetch(f"SELECT {CONTACT_COLUMNS} FROM contacts "
                                f"WHERE account_id = ? AND {column} = ?", (account_id, value))
        return contact_from_row(rows[0]) if rows else None

    # How a backend asks "the contact has this tag" (tags are JSON): SQL, and the parameter.
    TAG_CONDITION = "EXISTS (SELECT 1 FROM json_each(contacts.tags) WHERE json_each.value = ?)"

    def tag_parameter(self, tag: str) -> Any:
        return tag

    def contact_conditions(self, account_id: int, stage: str | None,
                           tag: str | None) -> tuple[list[str], list[Any]]:
        """The WHERE conditions (and their parameters) of an account's contacts at `stage` and
        with `tag`, each as given; a caller adds its own."""
        where = ["account_id = ?"]
        params: list[Any] = [account_id]
        if stage is not None:
            where.append("lifecycle_stage = ?")
            params.append(stage)
        if tag is not None:  # the index finds the candidates; the tags themselves decide
            where.append("id IN (SELECT contact_id FROM contact_tags WHERE account_id = ? "
                         f"AND tag_key = ?) AND {self.TAG_CONDITION}")
            params += [account_id, tag_key(tag), self.tag_parameter(tag)]
        return where, params

    async def list_contacts(self, account_id: int, email: str | None, tag: str | None,
                            lifecycle_stage: str | None, offset: int,
                            limit: int) -> list[Contact]:
        where, params = self.contact_conditions(account_id, lifecycle_stage, tag)
        if email is not None:
            where.append("email = ?")
            params.append(email)
        rows = await self.fetch(f"SELECT {CONTACT_COLUMNS} FROM contacts "
                                f"WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
                                (*params, limit, offset))
        return [contact_from_row(row) for row in rows]

    async def contact_events(self, account_id: int, contact_id: int, event_types: list[str],
                             newest_first: bool, offset: int, limit: int) -> list[StoredEvent]:
        where = "e.account_id = ? AND e.contact_id = ?"
        params: list[Any] = [account_id, contact_id]
        if event_types:
            where += f" AND e.event_type IN ({placeholders(len(event_types))})"
            params.extend(event_types)
        order = "DESC" if newest_first else "ASC"
        rows = await self.fetch(
            f"SELECT {EVENT_COLUMNS} FROM {EVENTS_WITH_CONTACT} WHERE {where} "
            f"ORDER BY e.id {order} LIMIT ? OFFSET ?", (*params, limit, offset))
        return [event_from_row(row) for row in rows]

    async def get_event(self, account_id: int, event_uuid: str) -> StoredEvent | None:
        rows = await self.fetch(f"SELECT {EVENT_COLUMNS} FROM {EVENTS_WITH_CONTACT} "
                                "WHERE e.uuid = ? AND e.account_id = ?", (event_uuid, account_id))
        return event_from_row(rows[0]) if rows else None

    # The feed (see feed.py). On SQLite, one writer at a time gives events their ids in commit
    # order: the feed is id order, and everything up to the highest id committed is final.
    FEED_HORIZON = "SELECT 0, coalesce(max(id), 0) FROM events"
    FEED_POSITION = "0, e.id"
    FEED_ORDER = "e.id"

    def feed_range(self, after: FeedPosition, horizon: FeedPosition
                   ) -> tuple[str, tuple[Any, ...]]:
        """The condition (and its parameters) of the events after `after`, up to `horizon`."""
        return "e.id > ? AND e.id <= ?", (after.id, horizon.id)

    async def read_feed(self, account_id: int, after: FeedPosition, limit: int,
                        event_types: list[str], since: str | None) -> FeedPage:
        # The horizon first: every event at or before it has committed, so the read after it
        # sees them all.
        horizon = FeedPosition(*(await self.fetch(self.FEED_HORIZON))[0])
        where, range_params = self.feed_range(after, horizon)
        params: list[Any] = [account_id, *range_params]
        if event_types:
            where += f" AND e.event_type IN ({placeholders(len(event_types))})"
            params += event_types
        if since is not None:
            where += " AND e.received_at >= ?"
            params.append(since)
        rows = await self.fetch_in_index_order(
            f"SELECT {EVENT_COLUMNS}, {self.FEED_POSITION} FROM {EVENTS_WITH_CONTACT} "
            f"WHERE e.account_id = ? AND {where} ORDER BY {self.FEED_ORDER} LIMIT ?",
            (*params, limit))
        # A page that is not full has read every event up to the horizon.
        following = FeedPosition(*rows[-1][-2:]) if len(rows) == limit else max(after, horizon)
        return FeedPage([event_from_row(row) for row in rows], following)

    # --- idempotency keys -------------------------------------------------------------------------

    async def find_kept_request(self, account_id: int, key: str) -> KeptRequest | None:
        rows = await self.fetch(f"SELECT {KEPT_COLUMNS} FROM idempotency_keys "
                                "WHERE account_id = ? AND key = ?", (account_id, key))
        return kept_from_row(rows[0]) if rows else None

    async def prune_idempotency_keys(self, created_before: str, limit: int) -> int:
        return await self.prune_oldest("idempotency_keys", "created_at", created_before, limit)

    # --- administration ---------------------------------------------------------------------------

    async def create_account(self, name: str) -> Account:
        try:
            _, rows = await self.change("INSERT INTO accounts (name, created_at) VALUES (?, ?) "
                                        "RETURNING id", (name, utc_now()))
        except self.integrity_errors:
            raise AccountExists(name) from None
        return Account(rows[0][0], name)

    async def get_account(self, name: str) -> Account | None:
        rows = await self.fetch("SELECT id, name FROM accounts WHERE name = ?", (name,))
        return Account(*rows[0]) if rows else None

    async def count_accounts(self) -> int:
        return int((await self.fetch("SELECT count(*) FROM accounts"))[0][0])

    async def account_name(self, account_id: int) -> str | None:
        rows = await self.fetch("SELECT name FROM accounts WHERE id = ?", (account_id,))
        return str(rows[0][0]) if rows else None

    async def set_account_limits(self, account_id: int, plan: str | None,
                                 per_minute: int | None, per_contact_day: int | None) -> None:
        given: dict[str, Any] = {}
        if plan is not None:
            given["plan"] = plan
        if per_minute is not None:
            given["events_per_minute"] = per_minute or None
        if per_contact_day is not None:
            given["events_per_contact_day"] = per_contact_day or None
        if given:
            await self.change(f"UPDATE accounts SET {', '.join(f'{n} = ?' for n in given)} "
                              "WHERE id = ?", (*given.values(), account_id))

    async def create_token(self, account_id: int, token_hash: str, expires_at: str | None,
                           refresh_token_id: int | None = None, *,
                           prefix: str | None = None) -> None:
        await self.change("INSERT INTO tokens (account_id, token_hash, prefix, created_at, "
                          "expires_at, refresh_token_id) VALUES (?, ?, ?, ?, ?, ?)",
                          (account_id, token_hash, prefix, utc_now(), expires_at,
                           refresh_token_id))

    async def revoke_token(self, token_hash: str) -> bool:
        changed, _ = await self.change("UPDATE tokens SET revoked_at = ? "
                                       "WHERE token_hash = ? AND revoked_at IS NULL",
                                       (utc_now(), token_hash))
        return changed > 0

    async def create_api_key(self, account_id: int, key_hash: str, prefix: str,
                             limit: int) -> bool:
        changed, _ = await self.change(
            "INSERT INTO api_keys (account_id, key_hash, prefix, active, created_at) "
            "SELECT ?, ?, ?, ?, ? "
            "WHERE (SELECT count(*) FROM api_keys WHERE account_id = ?) < ?",
            (account_id, key_hash, prefix, True, utc_now(), account_id, limit))
        return changed > 0

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        rows = await self.fetch("SELECT account_id, active FROM api_keys WHERE key_hash = ?",
                                (key_hash,))
        return ApiKey(rows[0][0], bool(rows[0][1])) if rows else None

    async def set_api_key_active(self, key_hash: str, active: bool) -> bool:
        changed, _ = await self.change("UPDATE api_keys SET active = ? WHERE key_hash = ?",
                                       (active, key_hash))
        return changed > 0

    # --- OAuth ------------------------------------------------------------------------------------

    async def create_app(self, account_id: int, client_id: str, secret_hash: str,
                         redirect_uri: str) -> None:
        await self.change("INSERT INTO apps (account_id, client_id, secret_hash, redirect_uri, "
                          "created_at) VALUES (?, ?, ?, ?, ?)",
                          (account_id, client_id, secret_hash, redirect_uri, utc_now()))

    async def find_app(self, client_id: str) -> App | None:
        rows = await self.fetch("SELECT id, account_id, client_id, secret_hash, redirect_uri "
                                "FROM apps WHERE client_id = ?", (client_id,))
        return App(*rows[0]) if rows else None

    async def create_code(self, app_id: int, code_hash: str, expires_at: str) -> None:
        await self.change("INSERT INTO auth_codes (app_id, code_hash, expires_at) "
                          "VALUES (?, ?, ?)", (app_id, code_hash, expires_at))

    async def redeem_code(self, app_id: int, account_id: int, code_hash: str,
                          refresh_hash: str) -> int | None:
        now = utc_now()
        try:
            (_, rows), _ = await self.change_all([
                ("INSERT INTO refresh_tokens (app_id, account_id, token_hash, created_at, "
                 "code_id) SELECT ?, ?, ?, ?, id FROM auth_codes WHERE code_hash = ? "
                 "AND app_id = ? AND used_at IS NULL AND expires_at > ? RETURNING id",
                 (app_id, account_id, refresh_hash, now, code_hash, app_id, now)),
                ("UPDATE auth_codes SET used_at = ? WHERE code_hash = ? AND app_id = ? "
                 "AND used_at IS NULL", (now, code_hash, app_id))])
        except self.integrity_errors:  # PostgreSQL: an exchange of the same code committed first
            return None
        return rows[0][0] if rows else None

    async def revoke_code_grant(self, app_id: int, code_hash: str) -> int | None:
        _, rows = await self.change(
            "UPDATE refresh_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND code_id = "
            "(SELECT id FROM auth_codes WHERE code_hash = ? AND app_id = ? "
            "AND used_at IS NOT NULL) RETURNING id", (utc_now(), code_hash, app_id))
        return rows[0][0] if rows else None

    async def find_refresh_token(self, app_id: int, token_hash: str) -> tuple[int, int] | None:
        rows = await self.fetch("SELECT id, account_id FROM refresh_tokens WHERE app_id = ? "
                                "AND token_hash = ? AND revoked_at IS NULL",
                                (app_id, token_hash))
        return (rows[0][0], rows[0][1]) if rows else None

    async def revoke_refresh_token(self, token_hash: str) -> int | None:
        # Its access tokens need no change: find_token reads the refresh token's revocation.
        _, rows = await self.change("UPDATE refresh_tokens SET revoked_at = ? "
                                    "WHERE token_hash = ? AND revoked_at IS NULL RETURNING id",
                                    (utc_now(), token_hash))
        return rows[0][0] if rows else None

