"""The SQLite backend: WAL mode, durable commits, one writer thread fed by the group committer."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from ..clock import utc_now
from ..contacts import Contact
from . import (
    Account,
    AccountExists,
    Failed,
    Rejected,
    StoredEvent,
    Store,
    StoreUnavailable,
    Token,
    WriteJob,
)
from .group_commit import GroupCommitter
from .schema import ensure_current
from .writes import ContactKey, GroupRows, event_identifier, write_group

log = logging.getLogger(__name__)

_CONTACT_COLUMNS = ("id, uuid, email, profile, tags, legal_bases, lifecycle_stage, opportunity, "
                    "contact_owner_email, created_at, updated_at")
_EVENT_COLUMNS = ("e.uuid, e.event_type, e.event_family, e.event_identifier, e.payload, "
                  "e.received_at, c.uuid, e.batch_uuid")


def database_path(url: str) -> str:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, as SQLAlchemy reads them."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"Expected sqlite:///PATH, got {url!r}")
    return url[len(prefix):]


def connect(path: str, cache_mb: int = 2) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is synced to disk before it returns, so an acknowledged event survives
    # a power loss, not only a process crash. Group commit pays the sync once per group.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute(f"PRAGMA cache_size={-1024 * cache_mb}")  # negative: KiB
    # Checkpoints (copying the WAL into the database file) are made by a background thread
    # (see _Checkpointer); a commit makes one itself only if the WAL passes 256 MB.
    conn.execute("PRAGMA wal_autocheckpoint=65536")
    conn.execute("PRAGMA journal_size_limit=67108864")  # truncate a reset WAL back to 64 MB
    return conn


def _contact_from_row(row: tuple) -> Contact:
    return Contact(
        id=row[0], uuid=row[1], email=row[2], profile=orjson.loads(row[3]),
        tags=orjson.loads(row[4]), legal_bases=orjson.loads(row[5]), lifecycle_stage=row[6],
        opportunity=bool(row[7]), contact_owner_email=row[8], created_at=row[9],
        updated_at=row[10],
    )


def _event_from_row(row: tuple) -> StoredEvent:
    return StoredEvent(uuid=row[0], event_type=row[1], event_family=row[2],
                       event_identifier=row[3], payload=orjson.loads(row[4]),
                       received_at=row[5], contact_uuid=row[6], batch_uuid=row[7])


class _Session:
    """The group's statements, on the writer thread's connection (see writes.WriteBackend)."""

    # SQLite allows 32,766 parameters a statement; stay well below.
    _CHUNK = 500

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def load_contacts(self, keys: set[ContactKey]) -> dict[ContactKey, Contact]:
        by_account: dict[int, list[str]] = {}
        for account_id, email in keys:
            by_account.setdefault(account_id, []).append(email)
        found: dict[ContactKey, Contact] = {}
        for account_id, emails in by_account.items():
            for start in range(0, len(emails), self._CHUNK):
                chunk = emails[start:start + self._CHUNK]
                rows = self.conn.execute(
                    f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE account_id = ? "
                    f"AND email IN ({', '.join('?' * len(chunk))})", (account_id, *chunk))
                for row in rows:
                    found[(account_id, row[2])] = _contact_from_row(row)
        return found

    def flush(self, rows: GroupRows) -> None:
        conn = self.conn
        new = [(key, c) for key, c in rows.contacts.items() if c.id is None]
        changed = [c for c in rows.contacts.values() if c.id is not None]
        # Ids are handed out here: the transaction holds SQLite's write lock, so no other
        # connection can take the same ones.
        first = self._next_id("contacts")
        for offset, (_, contact) in enumerate(new):
            contact.id = first + offset
        conn.executemany(
            "INSERT INTO contacts (profile, tags, legal_bases, lifecycle_stage, opportunity, "
            "contact_owner_email, updated_at, id, uuid, account_id, email, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*_contact_state(c), c.id, c.uuid, key[0], c.email, c.created_at)
             for key, c in new])
        conn.executemany(
            "UPDATE contacts SET profile = ?, tags = ?, legal_bases = ?, lifecycle_stage = ?, "
            "opportunity = ?, contact_owner_email = ?, updated_at = ? WHERE id = ?",
            [(*_contact_state(c), c.id) for c in changed])
        first = self._next_id("events")
        events, transitions = [], []
        for offset, row in enumerate(rows.events):
            event_id, contact_id = first + offset, rows.contacts[row.contact].id
            job, event = row.job, row.event
            events.append((event_id, row.event_uuid, job.account_id, contact_id, job.batch_uuid,
                           event.type.name, event.event_family, event_identifier(event),
                           orjson.dumps(event.payload).decode(), job.received_at))
            t = row.transition
            if t is not None:
                transitions.append((job.account_id, contact_id, event_id, t.from_stage,
                                    t.to_stage, t.from_opportunity, t.to_opportunity, t.value,
                                    t.reason, job.received_at))
        conn.executemany(
            "INSERT INTO events (id, uuid, account_id, contact_id, batch_uuid, event_type, "
            "event_family, event_identifier, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        conn.executemany(
            "INSERT INTO funnel_transitions (account_id, contact_id, event_id, cause, from_stage, "
            "to_stage, from_opportunity, to_opportunity, value, reason, created_at) "
            "VALUES (?, ?, ?, 'event', ?, ?, ?, ?, ?, ?, ?)", transitions)

    def _next_id(self, table: str) -> int:
        return self.conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]


def _contact_state(c: Contact) -> tuple:
    return (orjson.dumps(c.profile).decode(), orjson.dumps(c.tags).decode(),
            orjson.dumps(c.legal_bases).decode(), c.lifecycle_stage, c.opportunity,
            c.contact_owner_email, c.updated_at)


class _Checkpointer:
    """Copies committed WAL pages into the database file in the background, off the writer's
    commit path, so that the WAL stays small without stalling writes."""

    def __init__(self, path: str, interval: float = 0.25) -> None:
        self._conn = connect(path)
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("checkpoint failed: %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._conn.close()


class SQLiteStore(Store):
    def __init__(self, url: str, *, max_group: int = 256, max_pending: int = 10_000) -> None:
        self.url = url
        self.path = database_path(url)
        self._max_group = max_group
        self._max_pending = max_pending
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._committer: GroupCommitter | None = None
        self._checkpointer: _Checkpointer | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ensure_current(self.url)
        self._reader = connect(self.path)
        self._writer = connect(self.path, cache_mb=64)  # the writer's index pages stay hot
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._committer = GroupCommitter(self._run_group, max_group=self._max_group,
                                         max_pending=self._max_pending)
        self._committer.start()
        self._checkpointer = _Checkpointer(self.path)

    async def close(self) -> None:
        if self._committer is not None:
            await self._committer.stop()
            self._committer = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None

    # --- writes -----------------------------------------------------------------------------------

    @property
    def pending_writes(self) -> int:
        return 0 if self._committer is None else self._committer.pending

    async def write(self, job: WriteJob) -> Rejected | Failed | None:
        if self._committer is None:
            raise StoreUnavailable("the store is closed")
        return await self._committer.submit(job)

    async def _run_group(self, jobs: list[WriteJob]) -> list:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._commit_group, jobs)

    def _commit_group(self, jobs: list[WriteJob]) -> list[Rejected | Failed | None]:
        """One transaction for the whole group (see writes.write_group)."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = write_group(_Session(conn), jobs)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # --- reads ------------------------------------------------------------------------------------

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        if self._reader is None:
            raise StoreUnavailable("the store is closed")
        try:
            return self._reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def find_token(self, token_hash: str) -> Token | None:
        rows = self._read("SELECT account_id, expires_at, revoked_at FROM tokens "
                          "WHERE token_hash = ?", (token_hash,))
        if not rows:
            return None
        account_id, expires_at, revoked_at = rows[0]
        return Token(account_id, expires_at, revoked_at is not None)

    async def get_contact(self, account_id: int, by: str, value: str) -> Contact | None:
        column = {"email": "email", "uuid": "uuid"}[by]
        rows = self._read(f"SELECT {_CONTACT_COLUMNS} FROM contacts "
                          f"WHERE account_id = ? AND {column} = ?", (account_id, value))
        return _contact_from_row(rows[0]) if rows else None

    async def contact_events(self, account_id: int, contact_id: int, event_types: list[str],
                             newest_first: bool, offset: int, limit: int) -> list[StoredEvent]:
        where = "e.account_id = ? AND e.contact_id = ?"
        params: list = [account_id, contact_id]
        if event_types:
            where += f" AND e.event_type IN ({', '.join('?' * len(event_types))})"
            params.extend(event_types)
        order = "DESC" if newest_first else "ASC"
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN contacts c ON c.id = e.contact_id "
            f"WHERE {where} ORDER BY e.id {order} LIMIT ? OFFSET ?", (*params, limit, offset))
        return [_event_from_row(row) for row in rows]

    async def get_event(self, account_id: int, event_uuid: str) -> StoredEvent | None:
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events e LEFT JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.uuid = ? AND e.account_id = ?", (event_uuid, account_id))
        return _event_from_row(rows[0]) if rows else None

    # --- administration (CLI, first start) ---------------------------------------------------------

    def _admin_write(self, sql: str, params: tuple) -> sqlite3.Cursor:
        with closing(connect(self.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return cursor

    async def create_account(self, name: str) -> Account:
        try:
            cursor = self._admin_write("INSERT INTO accounts (name, created_at) VALUES (?, ?)",
                                       (name, utc_now()))
        except sqlite3.IntegrityError:
            raise AccountExists(name) from None
        return Account(cursor.lastrowid, name)

    async def get_account(self, name: str) -> Account | None:
        rows = self._read("SELECT id, name FROM accounts WHERE name = ?", (name,))
        return Account(*rows[0]) if rows else None

    async def count_accounts(self) -> int:
        return self._read("SELECT count(*) FROM accounts", ())[0][0]

    async def create_token(self, account_id: int, token_hash: str,
                           expires_at: str | None) -> None:
        self._admin_write("INSERT INTO tokens (account_id, token_hash, created_at, expires_at) "
                          "VALUES (?, ?, ?, ?)", (account_id, token_hash, utc_now(), expires_at))

    async def revoke_token(self, token_hash: str) -> bool:
        cursor = self._admin_write("UPDATE tokens SET revoked_at = ? "
                                   "WHERE token_hash = ? AND revoked_at IS NULL",
                                   (utc_now(), token_hash))
        return cursor.rowcount > 0
