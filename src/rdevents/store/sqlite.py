"""The SQLite backend: WAL mode, durable commits, group commit with the disk sync off the event
loop, checkpoints in the background."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from ..process import Job, Outcome
from . import StoreUnavailable
from .queries import Statement, TableRows, placeholders
from .relays import Tx
from .schema import ensure_current
from .sql import SqlStore

T = TypeVar("T")

log = logging.getLogger(__name__)


# SQLite's primary result codes that mean the database cannot serve now, whatever was asked:
# locked by another process, read-only, an I/O error, disk full, the file gone or not a
# database. Others (a syntax error, a constraint) are the statement's problem, or a bug.
_UNAVAILABLE_CODES = frozenset({
    sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB})


# Python's sqlite3 binds an int, float, str or bytes as it is, but first looks for an adapter for
# any other value, True, False and None included, and the failed search raises and clears two
# AttributeErrors: about 250 ns a value, and each new contact binds seven of them. Adapters of
# their own make that search a dictionary look-up. SQLite stores what it stored without them
# (True as 1, None as NULL), and they apply to every sqlite3 connection of the process.
def _null(value: None) -> None:
    return value


sqlite3.register_adapter(bool, int)
sqlite3.register_adapter(type(None), _null)


def unavailable(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNAVAILABLE_CODES


def database_path(url: str) -> str:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, as SQLAlchemy reads them."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"Expected sqlite:///PATH, got {url!r}")
    return url[len(prefix):]


def make_directory(url: str) -> None:
    """Create the directory of the database file, if it is missing."""
    Path(database_path(url)).parent.mkdir(parents=True, exist_ok=True)


# How long a write waits for another program to release SQLite's write lock before the
# request is answered 503: below the 10 s after which RD's clients give up. (rdevents's own
# processes take turns instead: see _WriteTurn.)
BUSY_TIMEOUT_MS = 5_000


def connect(path: str, cache_mb: int = 2,
            busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    # Room in the cache of prepared statements for the inserts of every size and table (see
    # statement_sizes) beside the other statements, so that few are prepared again.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           cached_statements=512)
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: every commit is synced to disk before it returns, so an acknowledged event survives
    # a power loss, not only a process crash. Group commit pays the sync once per group.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    conn.execute(f"PRAGMA cache_size={-1024 * cache_mb}")  # negative: KiB
    # Checkpoints (copying the WAL into the database file) are made by a background thread
    # (see _Checkpointer); a commit makes one itself only if the WAL passes 256 MB.
    conn.execute("PRAGMA wal_autocheckpoint=65536")
    conn.execute("PRAGMA journal_size_limit=67108864")  # truncate a reset WAL back to 64 MB
    return conn


# The most rows one INSERT statement writes.
ROWS_A_STATEMENT = 128


def statement_sizes(rows: int, most: int) -> list[int]:
    """How many rows each INSERT of `rows` takes: `most` while that many are left, then the
    powers of two that make up the rest, so that a table's inserts come in few distinct
    statements, each prepared once and then found in the connection's cache."""
    sizes = [most] * (rows // most)
    rest, power = rows % most, 1
    while rest:
        if rest & power:
            sizes.append(power)
            rest -= power
        power <<= 1
    return sizes


@functools.lru_cache(maxsize=256)
def insert_statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = f"({placeholders(len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


class _Checkpointer:
    """Copies committed WAL pages into the database file in the background, off the writer's
    commit path, so that the WAL stays small without stalling writes.

    Copying is not enough to keep the WAL small: SQLite writes the WAL from its start again
    only when a write transaction begins with every frame of it copied, and a busy writer is
    inside a transaction nearly every time a checkpoint here ends. Left alone, the WAL grew by
    tens of MB a second until a lull, then had its start rewritten and its file truncated, a
    stall of 100 ms or more. So once it passes REWIND_FRAMES, the writer is asked
    (`rewind_wanted`) to copy, between two of its transactions, the few frames committed since:
    the next transaction then starts the WAL over (see `rewind`).
    """

    INTERVAL = 0.25  # seconds between checkpoints
    REWIND_FRAMES = 8_192  # 32 MB of 4 KiB pages

    def __init__(self, path: str) -> None:
        self._conn = connect(path)
        self.rewind_wanted = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self.INTERVAL):
            try:
                _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.warning("checkpoint failed: %s", exc)
                continue
            if frames >= self.REWIND_FRAMES:
                self.rewind_wanted = True

    def rewind(self, writer: sqlite3.Connection) -> None:
        """On the writer's connection, between its transactions: copy what the background
        checkpoint has not, so that the next transaction starts the WAL over. Asked again by
        the next background checkpoint if a reader or another checkpoint was in the way. Never
        raises: it runs after a commit, whose outcome it must not change."""
        self.rewind_wanted = False
        try:
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:
            log.exception("checkpoint on the writer's connection failed")

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._conn.close()


class _WriteTurn:
    """Whose turn it is to write, among the processes writing this database: an exclusive lock
    on a file beside it (`<database>-lock`), waited for in a thread. SQLite's own wait for its
    write lock sleeps and retries, ever longer (1, 2, 5 … 100 ms), so that two busy processes
    kept each other waiting for up to seconds; a process waiting here takes its turn as soon as
    the other has ended its transaction. The kernel ends the turn of a process that dies. A
    writer that does not take turns (another program) is still waited for by SQLite's means.

    A process takes one turn at a time (its writes queue on an asyncio lock first). The lock
    belongs to the open file, not to a thread: `take` and `end` may run on any thread, but
    only one thread ever waits for it (a second would be granted it at once)."""

    def __init__(self, database: str) -> None:
        self._fd = _open_lock_file(database + "-lock", os.stat(database))
        self._waiting: asyncio.Future[None] | None = None  # the thread's wait, under way
        self._wanted = False  # whether a `take` awaits that wait
        self._held = False

    async def take(self, timeout: float) -> None:
        """Take the turn; StoreUnavailable after `timeout` seconds without. A wait given up
        goes on, and what it gets goes to the next `take`, or is given back at once."""
        if self._held:
            raise RuntimeError("this process already has the turn")
        if self._waiting is None:
            if self._free():
                self._held = True
                return
            self._waiting = asyncio.ensure_future(
                asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX))
            self._waiting.add_done_callback(self._arrived)
        waiting = self._waiting
        self._wanted = True
        try:
            await asyncio.wait_for(asyncio.shield(waiting), timeout)
        except TimeoutError:
            pass
        except BaseException:  # cancelled: what the wait gets is given back
            self._wanted = False
            if waiting.done():
                self._arrived(waiting)
            raise
        self._wanted = False
        if not waiting.done():  # given back when it comes, unless a `take` awaits it then
            raise StoreUnavailable("another process has been writing the database for over "
                                   f"{timeout:g} s")
        self._waiting = None
        try:
            waiting.result()
        except OSError as exc:
            raise StoreUnavailable(f"cannot lock the database's lock file: {exc}") from exc
        self._held = True

    def _free(self) -> bool:
        """Take the turn if nobody has it (no thread needed then). Only while no wait is
        under way: that wait may have the lock already, unknown to the loop yet."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _arrived(self, waiting: asyncio.Future[None]) -> None:
        """A wait has ended: if no `take` awaits it any more, give the turn back."""
        if waiting is self._waiting and not self._wanted:
            self._waiting = None
            if not waiting.cancelled() and waiting.exception() is None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def end(self) -> None:
        """End the turn, if this process has it (so that error paths may call it again)."""
        if self._held:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def _open_lock_file(path: str, database: os.stat_result) -> int:
    """The lock file, made if missing with the database's owner and permissions (as SQLite makes
    its -wal and -shm files); reading it is enough to lock it."""
    try:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return os.open(path, os.O_RDONLY)
        try:
            os.fchmod(fd, database.st_mode & 0o666)
            if os.geteuid() == 0:
                os.fchown(fd, database.st_uid, database.st_gid)
        except OSError:
            os.close(fd)
            raise
        return fd
    except OSError as exc:
        raise StoreUnavailable(
            f"Cannot open {path} ({exc.strerror}): rdevents keeps this file beside the "
            "database, to take turns with other processes at writing it. Let the user that "
            "runs rdevents read it, and create it in that directory.") from exc


class _Readers:
    """Reads on a small pool of threads, each with a connection of its own, so that a slow
    read (a filter over many contacts) never stalls the event loop and its other requests."""

    def __init__(self, path: str, threads: int = 4) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="sqlite-reader")

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self._path)
            with self._lock:
                self._connections.append(conn)
        return conn.execute(sql, params).fetchall()

    async def fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._read, sql,
                                                                params)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for conn in self._connections:
            conn.close()


class SQLiteStore(SqlStore):
    integrity_errors = (sqlite3.IntegrityError,)
    # Under load the event loop holds the GIL nearly all the time, and lets go only for a
    # moment (a system call, a statement), after which a waiting thread's wait starts over:
    # with Python's 5 ms, a group's commit handed to the writer thread waited 3 ms on average
    # before it could begin, while the next group's requests, all read, waited for it with the
    # loop idle. The writer thread needs the GIL only to begin and end a commit: asking for it
    # after 0.1 ms costs the loop little.
    GIL_SWITCH_INTERVAL = 0.0001  # seconds

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.path = database_path(url)
        self._readers: _Readers | None = None
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        # This process's write transactions (events, the webhook sender's, administration)
        # take turns here, in order, then with other processes' at `_turn` (see _WriteTurn).
        self._write_turn = asyncio.Lock()
        self._turn: _WriteTurn | None = None
        self._relay_conn: sqlite3.Connection | None = None  # the relay senders' transactions

    async def open(self) -> None:
        make_directory(self.url)
        ensure_current(self.url)
        self._readers = _Readers(self.path)
        self._turn = _WriteTurn(self.path)
        self._writer = connect(self.path, cache_mb=64)  # the writer's index pages stay hot
        # An INSERT of many rows keeps a statement journal, to undo that statement alone if a
        # constraint fails halfway. Past 64 KiB SQLite moved it to a temporary file: under
        # batches, thousands of writes a second to that file, on the event loop's thread. Kept
        # in memory it holds at most one statement's pages. (The readers keep the default:
        # their sorts may be large.)
        self._writer.execute("PRAGMA temp_store=MEMORY")
        self._checkpointer = _Checkpointer(self.path)
        self.start_writer()

    async def close(self) -> None:
        await self.stop_writer()
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._readers is not None:
            self._readers.close()
            self._readers = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._relay_conn is not None:
            self._relay_conn.close()
            self._relay_conn = None
        if self._turn is not None:
            self._turn.close()
            self._turn = None

    # --- the writer thread ------------------------------------------------------------------------

    def query(self, conn: sqlite3.Connection, sql: str,
              params: Iterable[Any]) -> list[tuple[Any, ...]]:
        return conn.execute(sql, tuple(params)).fetchall()

    def execute_many(self, conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            conn.executemany(sql, rows)

    def insert_rows(self, conn: sqlite3.Connection, inserts: list[TableRows]) -> None:
        # Many rows to a statement: executemany's step for each row cost Python's sqlite3 module
        # more than SQLite's own work on a row of the events' table.
        for table, columns, rows in inserts:
            if not rows:
                continue
            most = max(1, min(ROWS_A_STATEMENT,
                              conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns)))
            start = 0
            for size in statement_sizes(len(rows), most):
                chunk = rows[start:start + size]
                if set(map(len, chunk)) != {len(columns)}:  # else run together into other rows
                    raise ValueError(f"rows of {table} must have {len(columns)} values each")
                conn.execute(insert_statement(table, columns, size),
                             list(chain.from_iterable(chunk)))
                start += size

    def allocate_ids(self, conn: sqlite3.Connection,
                     counts: dict[str, int]) -> dict[str, list[int]]:
        # The transaction holds SQLite's write lock: no other connection can take these ids.
        ids = {}
        for table, count in counts.items():
            first = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
            ids[table] = list(range(first, first + count))
        return ids

    async def commit_group(self, jobs: list[Job]) -> list[Outcome]:
        """The group's Python work runs on the event loop's thread; only waiting for SQLite's
        write lock (when another program holds it) and the commit's disk sync run on the
        writer thread. A writer thread that did it all would hand the GIL back and forth with
        the event loop for every row."""
        async with self._writing() as turn:
            conn = self._writer
            if conn is None:
                raise StoreUnavailable("the store is closed")
            try:
                if not self._begin_at_once(conn):
                    await self._to_the_end(
                        self.in_writer_thread(self._execute, "BEGIN IMMEDIATE"))
                outcomes: list[Outcome] = self._sqlite_errors(self.process_jobs, conn, jobs)
                # The turn ends on the writer thread too, as soon as the commit has.
                await self._to_the_end(self.in_writer_thread(self._commit, conn, turn))
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return outcomes

    def _begin_at_once(self, conn: sqlite3.Connection) -> bool:
        """Begin the write transaction on the loop's thread if SQLite's write lock is free
        (in this process's turn it is, unless a program that takes no turns holds it); False,
        having waited for nothing, if it is not. Begun on the writer thread, a group waited
        for the loop to come back to it, behind other requests' work, work that was then
        gone when the loop had nothing else to do: while the commit's disk sync ran. (What
        no busy timeout bounds, the rebuilding of the WAL's index after a writer died in the
        middle of a commit, runs here then, as it would in the group's first read.)"""
        conn.execute("PRAGMA busy_timeout=0")
        try:
            began: bool = self._sqlite_errors(_begin_unless_busy, conn)
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return began

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_WriteTurn]:
        """This process's turn, then the database's: every write transaction runs inside."""
        async with self._write_turn:
            turn = self._turn
            if turn is None:
                raise StoreUnavailable("the store is closed")
            await turn.take(BUSY_TIMEOUT_MS / 1000)
            try:
                yield turn
            finally:
                turn.end()

    def _commit(self, conn: sqlite3.Connection, turn: _WriteTurn) -> None:
        self._execute("COMMIT")
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.rewind_wanted:
            checkpointer.rewind(conn)  # inside the turn: no other process's frames since
        turn.end()

    @staticmethod
    async def _to_the_end(work: Future[T]) -> T:
        """Await `work`, a thread's; if cancelled, still wait for the thread to end, so that
        what follows (a rollback, the end of the turn) never runs beside it. (Work that had
        not begun does not begin.) Not through asyncio.shield, whose future would add a step
        of the event loop between a commit's end and the next group: under load, a turn of
        the loop's other work, all of it, while the writer idles."""
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            await asyncio.wait([asyncio.wrap_future(work)])
            raise

    async def stored_event_uuids(self, uuids: list[str]) -> set[str]:
        """Read on the writer's connection, between its transactions: its cache holds the
        index pages that the writes just before touched, where a reader's connection starts
        afresh after each commit of another (an import looks up each chunk's uuids so)."""
        async with self._write_turn:
            conn = self._writer
            if conn is None:
                raise StoreUnavailable("the store is closed")
            return {row[0] for sql, params in self._stored_event_uuid_statements(uuids)
                    for row in self._sqlite_errors(self.query, conn, sql, params)}

    def _execute(self, sql: str) -> None:
        if self._writer is None:
            raise StoreUnavailable("the store is closed")
        self._sqlite_errors(self._writer.execute, sql)

    @staticmethod
    def _sqlite_errors(function: Callable[..., Any], *args: Any) -> Any:
        """Run `function`; an error that means the database cannot serve becomes
        StoreUnavailable (a 503), any other is raised as it is."""
        try:
            return function(*args)
        except sqlite3.Error as exc:
            if unavailable(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise

    # --- reads and administration -----------------------------------------------------------------

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        if self._readers is None:
            raise StoreUnavailable("the store is closed")
        return await self._readers.fetch(sql, tuple(params))

    async def change_all(self, statements: list[Statement]
                         ) -> list[tuple[int, list[tuple[Any, ...]]]]:
        results: list[tuple[int, list[tuple[Any, ...]]]] = await self._write_on_thread(
            self._sqlite_errors, self._change_all, statements)
        return results

    async def write_problem(self) -> str | None:
        try:
            await self._write_on_thread(self._sqlite_errors, self._probe_write)
        except StoreUnavailable as exc:
            return f"The database cannot be written: {exc}"
        return None

    async def _write_on_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a write transaction of its own on a thread (waiting for SQLite's write lock must
        not stall the event loop), in this process's turn."""
        async with self._writing():
            # A cancelled caller keeps the turn until the thread's transaction has ended. (The
            # writer thread is free: a group's commit runs in the turn too.)
            return await self._to_the_end(self.in_writer_thread(function, *args))

    def _change_all(self, statements: list[Statement]) -> list[tuple[int, list[tuple[Any, ...]]]]:
        with closing(connect(self.path)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                results = []
                for sql, params in statements:
                    cursor = conn.execute(sql, tuple(params))
                    rows = cursor.fetchall()
                    results.append((cursor.rowcount, rows))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return results

    async def transact(self, work: Callable[[Tx], T], durable: bool = True) -> T:
        result: T = await self._write_on_thread(self._sqlite_errors, self._transact, work,
                                                durable)
        return result

    def _transact(self, work: Callable[[Tx], T], durable: bool) -> T:
        """`work` in a write transaction, on a connection kept for it (used in this process's
        turn only). Not durable: WAL's NORMAL synchronous mode, no disk sync at commit (the
        writer's next commit syncs it with its own)."""
        if self._relay_conn is None:
            self._relay_conn = connect(self.path)
        conn = self._relay_conn
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(_SQLiteTx(conn))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    def _probe_write(self) -> None:
        """Take the write lock and change a row, then roll back: fails as a real write would
        (locked by another process for over a second, read-only, disk trouble)."""
        with closing(connect(self.path, busy_timeout_ms=1000)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("UPDATE alembic_version SET version_num = version_num")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")


def _begin_unless_busy(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


class _SQLiteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[tuple[Any, ...]]]:
        cursor = self._conn.execute(sql, tuple(params))
        return cursor.rowcount, cursor.fetchall()
