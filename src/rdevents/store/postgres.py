"""The PostgreSQL backend: many processes, on many hosts, on one database.

Writes use the same group commit as SQLite, with two groups of a process under way at once, each
on a writer thread and connection of its own (WRITERS). Other groups, of this process or others,
write at the same time, so a group first takes a transaction-scoped advisory lock for each
contact it touches (in a fixed order, so no two groups deadlock): two groups that share a contact
run one after the other, and no tag, field or funnel change is lost; two groups cannot both
create the same contact. Reads use a pool of connections.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..process import Accepted, ContactKey, EventsJob, FieldKey, Job, KeyRef, Outcome
from . import StoreUnavailable, WriteConflict
from .feed import FeedPosition
from .queries import Statement, TableRows, to_json
from .relays import Tx
from .schema import ensure_current
from .sql import CONTACT_COLUMNS, SqlStore, ids_by_table

T = TypeVar("T")

log = logging.getLogger(__name__)

# A conflict with another process's transaction: the group is rolled back and run again.
_CONFLICTS = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
# SQLSTATE classes that mean the database cannot serve now, whatever was asked: connection
# exceptions, insufficient resources (disk full), operator intervention (shutdown, cancel),
# system errors (I/O); and a read-only transaction (a standby, or a read-only default).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "58")
_UNAVAILABLE_STATES = ("25006", "55P03")
_ATTEMPTS = 3
_CONNECT_TIMEOUT = 3  # seconds: an unreachable database answers 503 quickly
WRITER_APPLICATION_NAME = "rdevents writer"  # how the writer shows in pg_stat_activity
# The subjects of the advisory locks of an account's rate counters and custom fields, beside
# its contacts' e-mails: no e-mail holds a NUL, so they never share a lock with a contact.
RATE_LOCK = "\x00rate counters"
FIELD_LOCK = "\x00field "
# Which relays an account has: writers hold it shared, who creates or deletes a relay alone.
RELAY_LOCK = "\x00relays"
# An idempotency key's, beside it: held by the transaction that keeps it (never waited for).
KEY_LOCK = "\x00idempotency key "
# A group's rows, up to this many and this much JSON text, go in one INSERT statement (one
# round trip, less of the client's CPU); more, in a COPY a table (less of the server's CPU and
# memory a row). See insert_rows.
ONE_STATEMENT_ROWS = 500
ONE_STATEMENT_BYTES = 1 << 20
_FLOAT_TYPES = ("double precision", "real", "numeric")
# The transaction of a group: each statement of it sees what committed before it began, the
# locks before it waited for included (whatever the server's default isolation).
BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"


@functools.lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """The shared statements use `?`; psycopg uses `%s`."""
    return sql.replace("?", "%s")


# One statement for any number of e-mails that looks each e-mail up in the (account_id, email)
# index whatever the table statistics say: LIMIT keeps the planner from turning the lateral
# lookup into a hash join over the whole table. (No other index of contacts may lead with
# account_id alone: before the table's first statistics, the planner may take it instead,
# reading every contact of the account for each e-mail.) Lists travel as one JSON text:
# psycopg adapts a list element by element in Python (110 µs of the client's CPU for a statement
# with 31 e-mails), orjson in one call (60 µs).
CONTACTS_BY_EMAIL = ("SELECT c.* FROM json_array_elements_text(%s::json) AS wanted(email) "
                     f"CROSS JOIN LATERAL (SELECT {CONTACT_COLUMNS} FROM contacts "
                     "WHERE account_id = %s AND email = wanted.email LIMIT 1) AS c")


def unavailable(exc: psycopg.Error) -> bool:
    """Whether an error means the database is out of reach or cannot write, rather than that
    it refused what was asked (a constraint, bad data: the caller's problem, or a bug)."""
    state = exc.sqlstate
    if state is None:  # raised by the client: the connection failed or was lost
        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES


def _begin(conn: psycopg.Connection) -> None:
    """Begin a transaction on the writer's connection (in autocommit mode) unless one is open."""
    if conn.info.transaction_status == TransactionStatus.IDLE:
        conn.execute(BEGIN, prepare=False)


def _floats_as_text(row: tuple[Any, ...], positions: list[int]) -> tuple[Any, ...]:
    """`row` with its floats at `positions` written as text, as PostgreSQL reads them back."""
    values = list(row)
    for n in positions:
        if isinstance(values[n], float):
            values[n] = repr(values[n])
    return tuple(values)


def lock_key(key: tuple[int, str]) -> int:
    """A 64-bit advisory lock key for (account id, subject): a contact's e-mail, RATE_LOCK, or
    FIELD_LOCK and a field's name, or FIELD_LOCK alone for the account's definitions
    (collisions only serialise more)."""
    digest = hashlib.blake2b(f"{key[0]}:{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _advisory_locks(keys: set[tuple[int, str]]) -> Statement:
    """The statement taking these keys' transaction-scoped advisory locks, in one order (one
    row back, however many keys)."""
    ordered = sorted({lock_key(key) for key in keys})
    return ("SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k::bigint AS k FROM "
            "json_array_elements_text(%s::json) AS wanted(k) ORDER BY 1) AS ordered",
            (to_json(ordered),))


class PostgresStore(SqlStore):
    integrity_errors = (psycopg.IntegrityError,)
    # A writer thread waits on the database between its statements, and needs the GIL back
    # from the event loop after each wait (see SQLiteStore.GIL_SWITCH_INTERVAL): asked for after
    # 1 ms rather than Python's 5, single events went 17% faster, batches 5-8% (medians of four
    # runs by turns). Shorter (0.1-0.5 ms) gained nothing measurable: here the writer threads run
    # the groups' Python work too, and hand the GIL back and forth with the loop the more often.
    GIL_SWITCH_INTERVAL = 0.001  # seconds
    # Two transactions under way: while one waits for the database, the other is decided.
    # They keep off each other's contacts as other processes' do (the advisory locks).
    WRITERS = 2

    def __init__(self, url: str, *, pool_size: int = 10, **options: Any) -> None:
        super().__init__(url, **options)
        self._pool = AsyncConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=_CONNECT_TIMEOUT,
            kwargs={"autocommit": True, "connect_timeout": _CONNECT_TIMEOUT,
                    "application_name": "rdevents"},
            check=AsyncConnectionPool.check_connection)
        # Each writer thread's connection (see WRITERS), and all of them, to close.
        self._writer = threading.local()
        self._writers: set[psycopg.Connection] = set()
        # The relay senders' transactions: one connection, one transaction at a time.
        self._relay_conn: psycopg.Connection | None = None
        self._relay_lock = threading.Lock()
        self._insert_parts: dict[tuple[str, tuple[str, ...]], tuple[str, list[int]]] = {}

    TAKEN_OF = ("SELECT id FROM webhook_deliveries WHERE id IN ({chosen}) AND {due} "
                "FOR UPDATE SKIP LOCKED")
    FOR_UPDATE = " FOR UPDATE"
    ROW_LOCK = " FOR NO KEY UPDATE"
    FIRST_DUE_OF_EACH_WEBHOOK = ("CROSS JOIN LATERAL ({}) due "
                                 "JOIN webhook_deliveries d ON d.id = due.id")
    NOW_MICROS = "(extract(epoch from statement_timestamp()) * 1000000)::bigint"
    # JSONB containment (no `?` operator: `?` is the shared statements' placeholder).
    TAG_CONDITION = "tags @> CAST(? AS jsonb)"

    def tag_parameter(self, tag: str) -> str:
        return to_json([tag])

    async def open(self) -> None:
        ensure_current(self.url)
        await self._pool.open(wait=False)
        self.start_writer()

    async def close(self) -> None:
        await self.stop_writer()
        await self._pool.close()
        for conn in self._writers:
            conn.close()
        self._writers.clear()
        with self._relay_lock:
            if self._relay_conn is not None:
                self._relay_conn.close()
                self._relay_conn = None

    # --- the writer thread ------------------------------------------------------------------------

    # The writer's connection is in autocommit mode, so that a group's BEGIN travels in the
    # message of its first reads (read_together) rather than in a round trip of its own (as
    # psycopg sends it): each statement below begins the transaction if none is open.

    def query(self, conn: psycopg.Connection, sql: str,
              params: Iterable[Any]) -> list[tuple[Any, ...]]:
        _begin(conn)
        return conn.execute(to_pyformat(sql), tuple(params)).fetchall()

    def execute_many(self, conn: psycopg.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            _begin(conn)
            with conn.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), rows)

    def read_together(self, conn: psycopg.Connection,
                      statements: list[Statement]) -> list[list[tuple[Any, ...]]]:
        # One simple query: the statements go in one message, run in order, each with a
        # snapshot of its own (so a read sees what the locks before it waited for), and answer
        # in one round trip. Their values are bound by the client: half the client's CPU of a
        # pipeline of prepared statements, and no more of the server's (its planning included).
        if not statements:
            return []
        begin = conn.info.transaction_status == TransactionStatus.IDLE
        with psycopg.ClientCursor(conn) as cursor:
            cursor.execute(";\n".join(([BEGIN] if begin else [])
                                      + [to_pyformat(sql) for sql, _ in statements]),
                           tuple(value for _, params in statements for value in params))
            if begin:
                cursor.nextset()
            results = [cursor.fetchall()]
            while cursor.nextset():
                results.append(cursor.fetchall())
        if len(results) != len(statements):
            raise RuntimeError(f"{len(statements)} statements sent together answered "
                               f"{len(results)} results")
        return results

    def select_contacts_statements(self, account_id: int, emails: list[str]
                                   ) -> list[Statement]:
        return [(CONTACTS_BY_EMAIL, (to_json(emails), account_id))]

    def insert_rows(self, conn: psycopg.Connection, inserts: list[TableRows]) -> None:
        inserts = [insert for insert in inserts if insert.rows]
        if not inserts:
            return
        _begin(conn)
        if sum(len(insert.rows) for insert in inserts) <= ONE_STATEMENT_ROWS:
            statement = self.insert_statement(conn, inserts)
            if statement is not None:
                conn.execute(*statement)
                return
        # COPY takes rows in bulk, far cheaper for the server than one INSERT each.
        for table, columns, rows in inserts:
            with conn.cursor() as cursor, cursor.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def insert_statement(self, conn: psycopg.Connection, inserts: list[TableRows]
                         ) -> tuple[str, tuple[str, ...]] | None:
        """One statement inserting every table's rows, each table's as one JSON text (an array
        of rows, each an array of values), in order: one round trip for them all, where a COPY
        takes two a table. Floats travel as text (JSON has no infinity, and jsonb no -0.0).
        None if a value has no JSON form (orjson refuses it), or if the rows' text is longer
        than ONE_STATEMENT_BYTES (the server would hold it whole, where a COPY streams it)."""
        parts, texts = [], []
        for table, columns, rows in inserts:
            part, floats = self._insert_part(conn, table, columns)
            if floats:
                rows = [_floats_as_text(row, floats) for row in rows]
            try:
                texts.append(to_json(rows))
            except orjson.JSONEncodeError:
                return None
            parts.append(part)
        if sum(map(len, texts)) > ONE_STATEMENT_BYTES:
            return None
        statement = parts[-1] if len(parts) == 1 else (
            "WITH " + ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts[:-1]))
            + " " + parts[-1])
        return statement, tuple(texts)

    def _insert_part(self, conn: psycopg.Connection, table: str,
                     columns: tuple[str, ...]) -> tuple[str, list[int]]:
        """The INSERT of `columns` of `table` from a JSON text of rows, and the positions of
        its float columns: made once a process, from the columns' types (without modifiers, so
        that a value too long for its column is refused, as COPY refuses it, rather than cut)."""
        made = self._insert_parts.get((table, columns))
        if made is None:
            types: dict[str, str] = dict(conn.execute(
                "SELECT attname, atttypid::regtype::text FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,)).fetchall())
            values = ", ".join(f"(r->>{n})::{types[column]}" for n, column in enumerate(columns))
            made = self._insert_parts[(table, columns)] = (
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM "
                "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS rows(r, n) ORDER BY n",
                [n for n, column in enumerate(columns) if types[column] in _FLOAT_TYPES])
        return made

    def allocate_ids(self, conn: psycopg.Connection,
                     counts: dict[str, int]) -> dict[str, list[int]]:
        # Every table's in one statement: one round trip.
        ids = ids_by_table([self.query(conn, sql, params)
                            for sql, params in self.reserve_ids_statements(counts)])
        return {table: ids.get(table, []) for table in counts}

    def reserve_ids_statements(self, counts: dict[str, int]) -> list[Statement]:
        wanted = [(table, count) for table, count in counts.items() if count]
        if not wanted:
            return []
        return [(" UNION ALL ".join(
            f"SELECT '{table}', nextval('{table}_id_seq') FROM generate_series(1, ?)"
            for table, _ in wanted), tuple(count for _, count in wanted))]

    def lock_contacts_statements(self, keys: set[ContactKey]) -> list[Statement]:
        return [_advisory_locks(keys)]

    def lock_fields_statements(self, keys: set[FieldKey]) -> list[Statement]:
        # Taken after the contacts' locks, by every writer: the same order everywhere. Each
        # field's, and its account's (FIELD_LOCK alone): a group defining fields counts the
        # account's, and another defining others must wait to count them after it.
        return [_advisory_locks({(account_id, FIELD_LOCK + name) for account_id, name in keys}
                                | {(account_id, FIELD_LOCK) for account_id, _ in keys})]

    def lock_counters_statements(self, account_ids: list[int]) -> list[Statement]:
        # Taken after the accounts' holds, before any contact's lock, by every writer.
        return [_advisory_locks({(account_id, RATE_LOCK) for account_id in account_ids})]

    def hold_accounts_statements(self, account_ids: set[int]) -> list[Statement]:
        # Shared by every writer, before any other lock; creating or deleting a relay, or
        # resetting the account, takes it exclusively and no other lock, then changes rows.
        sql, params = _advisory_locks({(account_id, RELAY_LOCK) for account_id in account_ids})
        return [(sql.replace("pg_advisory_xact_lock", "pg_advisory_xact_lock_shared"), params)]

    def try_lock_keys_statements(self, keys: list[KeyRef]) -> list[Statement]:
        ordered = [lock_key((account_id, KEY_LOCK + key)) for account_id, key in keys]
        return [("SELECT pg_try_advisory_xact_lock(k::bigint) FROM json_array_elements_text("
                 "%s::json) WITH ORDINALITY AS wanted(k, n) ORDER BY n", (to_json(ordered),))]

    # The feed (see feed.py): processes commit in any order, so ids are not commit order. Each
    # event carries its transaction's id (the column's default); every transaction below the
    # oldest one still running has ended, so the events of those are final, and are read in
    # (transaction, id) order. A transaction that runs long holds the feed back, never makes it
    # skip an event.
    FEED_HORIZON = ("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint - 1, "
                    "9223372036854775807")
    FEED_POSITION = FEED_ORDER = "e.xid, e.id"
    JSON_TEXT = "coalesce(to_json({})::text, 'null')"

    def feed_range(self, after: FeedPosition, horizon: FeedPosition
                   ) -> tuple[str, tuple[Any, ...]]:
        return "(e.xid, e.id) > (?, ?) AND e.xid <= ?", (after.xid, after.id, horizon.xid)

    def field_definitions_lock(self, account_id: int) -> list[Statement]:
        return [("SELECT pg_advisory_xact_lock(?)", (lock_key((account_id, FIELD_LOCK)),))]

    def relay_membership_lock(self, account_id: int) -> list[Statement]:
        return [("SELECT pg_advisory_xact_lock(?)", (lock_key((account_id, RELAY_LOCK)),))]

    def _writer_connection(self) -> psycopg.Connection:
        """This writer thread's connection, made again if it was lost."""
        conn: psycopg.Connection | None = getattr(self._writer, "conn", None)
        if conn is None or conn.closed or conn.broken:
            if conn is not None:  # forgotten before connecting, which may fail
                self._writer.conn = None
                self._writers.discard(conn)
                conn.close()
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT,
                                   application_name=WRITER_APPLICATION_NAME)
            self._writer.conn = conn
            self._writers.add(conn)
        return conn

    async def commit_group(self, jobs: list[Job]) -> list[Outcome]:
        # Every statement is a network round trip: all of it runs on the writer thread.
        return await asyncio.wrap_future(self.in_writer_thread(self._transaction, jobs))

    def _transaction(self, jobs: list[Job]) -> list[Outcome]:
        """Process the group in one transaction, run again when it conflicts with another
        process's (WriteConflict past the attempts). A job's data the database refuses raises
        as it is: the group committer then splits the group, so that only that job fails."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                conn = self._writer_connection()
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(str(exc)) from exc
            try:
                outcomes = self.process_jobs(conn, jobs)
            except _CONFLICTS as exc:
                conn.rollback()
                log.info("write conflict (attempt %d of %d): %s", attempt, _ATTEMPTS, exc)
                continue
            except psycopg.Error as exc:
                if not unavailable(exc):
                    if not conn.closed and not conn.broken:
                        conn.rollback()
                    raise
                # Nothing was committed. The connection may have been dropped while idle (a
                # database restart, a proxy): the next attempt reconnects.
                conn.close()
                if attempt == _ATTEMPTS:
                    raise StoreUnavailable(str(exc)) from exc
                continue
            except BaseException:
                if not conn.closed and not conn.broken:
                    conn.rollback()
                raise
            if conn.info.transaction_status == TransactionStatus.INERROR:
                # A statement failed and its error did not come through: COMMIT would roll the
                # group back without an error, and its jobs be acknowledged unwritten.
                conn.rollback()
                raise RuntimeError("a statement of the group's transaction failed unreported")
            try:
                conn.commit()
            except psycopg.Error as exc:
                if not unavailable(exc):  # refused at commit (a deferred constraint)
                    raise
                conn.close()
                return self._settle_uncertain_commit(jobs, outcomes, exc)
            return outcomes
        raise WriteConflict(f"the write conflicted with others {_ATTEMPTS} times")

    def _settle_uncertain_commit(self, jobs: list[Job], outcomes: list[Outcome],
                                 failure: Exception) -> list[Outcome]:
        """The connection failed during COMMIT, so the transaction may have committed or not.
        Ask the database, by the accepted jobs' event uuids, which it was; answering 503 for
        a committed write would make clients send it again."""
        accepted = [job.event_uuids[0] for job, outcome in zip(jobs, outcomes, strict=True)
                    if isinstance(outcome, Accepted) and isinstance(job, EventsJob)]
        if not accepted:  # only contact changes, which leave nothing to look up by
            raise StoreUnavailable(str(failure)) from failure
        try:
            with psycopg.connect(self.url, connect_timeout=_CONNECT_TIMEOUT) as conn:
                row = conn.execute("SELECT count(*) FROM events WHERE uuid = ANY(%s)",
                                   (accepted,)).fetchone()
                found = row[0] if row else 0
        except psycopg.Error as exc:
            log.error("commit outcome unknown (%s); answering 503", exc)
            raise StoreUnavailable(str(failure)) from failure
        if found == len(accepted):
            return outcomes
        raise StoreUnavailable(str(failure)) from failure

    # --- the relay senders' transactions ----------------------------------------------------------

    async def transact(self, work: Callable[[Tx], T], durable: bool = True) -> T:
        return await asyncio.to_thread(self._transact, work, durable)

    def _transact(self, work: Callable[[Tx], T], durable: bool) -> T:
        with self._relay_lock:
            if self._relay_conn is None or self._relay_conn.closed or self._relay_conn.broken:
                try:
                    self._relay_conn = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT,
                        application_name="rdevents relay")
                except psycopg.OperationalError as exc:
                    raise StoreUnavailable(str(exc)) from exc
            conn = self._relay_conn
            try:
                with conn.transaction():
                    if not durable:  # commit without waiting for the WAL's flush
                        conn.execute("SET LOCAL synchronous_commit = off")
                    return work(_PostgresTx(conn))
            except psycopg.Error as exc:
                if unavailable(exc):
                    conn.close()
                    raise StoreUnavailable(str(exc)) from exc
                raise

    # --- reads and administration -----------------------------------------------------------------

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._read(sql, params)

    async def fetch_in_index_order(self, sql: str,
                                   params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        # Before a table's first statistics (a database just filled), the planner takes it for
        # a few rows and sorts the whole range of the condition, rather than walk the index in
        # order up to the LIMIT: a page of the feed would read every event after it.
        return await self._read(sql, params, "SET LOCAL enable_seqscan = off; "
                                "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")

    async def _read(self, sql: str, params: Iterable[Any],
                    planner: str | None = None) -> list[tuple[Any, ...]]:
        """Run a read on a connection of the pool; `planner`: settings of the planner for it."""
        try:
            async with self._pool.connection() as conn:
                if planner is None:
                    cursor = await conn.execute(to_pyformat(sql), tuple(params))
                    return await cursor.fetchall()
                async with conn.transaction():
                    await conn.execute(planner)
                    cursor = await conn.execute(to_pyformat(sql), tuple(params))
                    return await cursor.fetchall()
        except PoolTimeout as exc:
            raise StoreUnavailable(str(exc)) from exc
        except psycopg.Error as exc:
            if unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    async def write_problem(self) -> str | None:
        try:
            rows = await self.fetch("SELECT current_setting('transaction_read_only')")
        except StoreUnavailable as exc:
            return f"The database is unreachable: {exc}"
        return "The database is read-only." if rows[0][0] == "on" else None

    async def change_all(self, statements: list[Statement]
                         ) -> list[tuple[int, list[tuple[Any, ...]]]]:
        try:
            async with self._pool.connection() as conn, conn.transaction():
                results = []
                for sql, params in statements:
                    cursor = await conn.execute(to_pyformat(sql), tuple(params))
                    rows = await cursor.fetchall() if cursor.description else []
                    results.append((cursor.rowcount, rows))
                return results
        except PoolTimeout as exc:
            raise StoreUnavailable(str(exc)) from exc
        except psycopg.Error as exc:
            if unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise


class _PostgresTx:
    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        cursor = self._conn.execute(to_pyformat(sql), tuple(params))
        return cursor.rowcount, cursor.fetchall() if cursor.description else []
