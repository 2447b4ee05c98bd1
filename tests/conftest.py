"""Test harness: the real app, served by uvicorn over real HTTP, on a real database file."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from hypothesis import settings as hypothesis_settings

from rdevents.config import Settings
from rdevents.http.app import create_app
from rdevents.store.postgres import to_pyformat
from rdevents.tokens import issue_token

# No time limit on an example: the suite runs beside other work, and a slow example is not a
# wrong one (a test that is about time measures it itself).
hypothesis_settings.register_profile("rdevents", deadline=None)
hypothesis_settings.load_profile("rdevents")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Clock:
    """time.monotonic, which a test moves forward rather than wait."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.ahead

    def advance(self, seconds: float) -> None:
        self.ahead += seconds


class Server:
    """rdevents running in a background thread with its own event loop. Its token and API key
    caches read `clock`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = Clock()
        self.app = create_app(settings, clock=self.clock)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, loop="uvloop", http="httptools",
            log_level="warning", access_log=False, lifespan="on"))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._server.serve(),), daemon=True)

    @property
    def store(self):
        return self.app.state.store

    def start(self) -> Server:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            self._thread.join(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def call(self, coroutine) -> Any:
        """Run a coroutine on the server's loop (to reach its store) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def new_account(self, expires_in: int | None = None) -> tuple[int, str]:
        """A fresh account and a token for it, so that tests never see each other's data."""
        account = self.call(self.store.create_account(f"acct-{uuid.uuid4()}"))
        return account.id, self.call(issue_token(self.store, account.id, expires_in))

    def client(self, token: str | None = None) -> Api:
        return Api(self.url, token)


class Api(httpx.Client):
    """An HTTP client with the Bearer token of one account."""

    def __init__(self, base_url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No TLS here: verify=False spares loading the CA bundle (~20 ms) for every client.
        super().__init__(base_url=base_url, headers=headers, timeout=30, verify=False)

    def send_event(self, event: Any, **params: Any) -> httpx.Response:
        return self.post("/platform/events", json=event, params=params)

    def send_batch(self, events: Any) -> httpx.Response:
        return self.post("/platform/events/batch", json=events)

    def contact(self, email: str) -> httpx.Response:
        return self.get(f"/platform/contacts/email:{email}")


def sqlite_settings(directory: Path, **overrides: Any) -> Settings:
    # A short token cache, so that revocation tests wait little.
    overrides.setdefault("token_cache_seconds", 0.2)
    return Settings(database_url=f"sqlite:///{directory / 'rdevents.db'}", **overrides)


def let_token_cache_lapse(server: Server) -> None:
    """Let a revocation made behind the server's back reach it: every credential the server
    holds is then looked up again."""
    server.clock.advance(server.settings.token_cache_seconds)


POSTGRES_ADMIN_URL = os.environ.get("RDEVENTS_TEST_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run (for each xdist worker), dropped after.

    Without a reachable server the PostgreSQL tests are skipped, except in CI, where they fail.
    """
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc}); set "
                    "RDEVENTS_TEST_POSTGRES_URL to an admin URL to run these tests")
    name = f"rdevents_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", "postgresql"]
# The networks of the tests' webhook receivers, which listen on loopback: servers refuse them
# unless told otherwise.
LOOPBACK = ("127.0.0.0/8", "::1/128")


def backend_settings(request: pytest.FixtureRequest, backend: str, directory: Path,
                     **overrides: Any) -> Settings:
    if backend == "sqlite":
        return sqlite_settings(directory, **overrides)
    overrides.setdefault("token_cache_seconds", 0.2)
    return Settings(database_url=request.getfixturevalue("postgres_url"), **overrides)


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest,
                   tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, URL) of an empty database of each backend, for this test alone."""
    if request.param == "sqlite":
        yield request.param, f"sqlite:///{tmp_path / 'empty.db'}"
        return
    run_url = request.getfixturevalue("postgres_url")
    name = f"empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(run_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield request.param, run_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def own_server(empty_database: tuple[str, str]) -> Iterator[Callable[..., Server]]:
    """Starts the app, with the settings a test gives, on a database of its own (on a shared
    PostgreSQL database, the webhook senders of other tests' servers would take its
    deliveries); stops it after the test."""
    _, url = empty_database
    started: list[Server] = []

    def start(**overrides: Any) -> Server:
        overrides.setdefault("token_cache_seconds", 0.2)
        started.append(Server(Settings(database_url=url, **overrides)).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A webhook receiver on loopback (see receiver.py)."""
    from receiver import Receiver  # not at the top: receiver.py imports this module

    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def stub() -> Iterator[Any]:
    """An upstream that relays send to, answering as a test tells it (see upstream_stub.py)."""
    from upstream_stub import UpstreamStub  # not at the top: it imports this module

    running = UpstreamStub().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Another rdevents, the upstream of relay tests (each makes accounts of its own there), on
    a SQLite file of its own, with RD's rate limits; tokens it revokes stop working at once."""
    running = Server(sqlite_settings(tmp_path_factory.mktemp("upstream"), rate_limits=True,
                                     token_cache_seconds=0.0)).start()
    yield running
    running.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app on each backend: every test that uses it runs once per backend."""
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("db"),
                                webhook_allowed_networks=LOOPBACK)
    running = Server(settings).start()
    yield running
    running.stop()


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    _, token = server.new_account()
    with server.client(token) as client:
        yield client


def conversion(email: str, **payload: Any) -> dict:
    return {"event_type": "CONVERSION", "event_family": "CDP",
            "payload": {"conversion_identifier": "signup", "email": email, **payload}}


def event(event_type: str, **payload: Any) -> dict:
    return {"event_type": event_type, "event_family": "CDP", "payload": payload}


# Rows of an account that point at nothing, or at another account's: the references the write
# path keeps (no database enforces them: SQLite's foreign keys are off, PostgreSQL's hot tables
# have none). Each query counts the offending rows of the account given for each `?`.
DANGLING = {
    "events of a missing contact": (
        "SELECT count(*) FROM events e WHERE e.account_id = ? AND e.contact_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = e.contact_id "
        "AND c.account_id = ?)"),
    "funnel transitions of a missing contact": (
        "SELECT count(*) FROM funnel_transitions t WHERE t.account_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = t.contact_id "
        "AND c.account_id = ?)"),
    "funnel transitions of another contact's event": (
        "SELECT count(*) FROM funnel_transitions t WHERE t.account_id = ? "
        "AND t.event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e "
        "WHERE e.id = t.event_id AND e.contact_id = t.contact_id)"),
    "tags of a missing contact": (
        "SELECT count(*) FROM contact_tags g WHERE g.account_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = g.contact_id "
        "AND c.account_id = ?)"),
    "relayed events of a missing contact": (
        "SELECT count(*) FROM relay_outbox o JOIN relays r ON r.id = o.relay_id "
        "WHERE r.account_id = ? AND NOT EXISTS (SELECT 1 FROM events e JOIN contacts c "
        "ON c.id = e.contact_id WHERE e.id = o.event_id AND c.id = o.contact_id "
        "AND c.account_id = ?)"),
    "webhook deliveries of a missing contact": (
        "SELECT count(*) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
        "WHERE w.account_id = ? AND d.contact_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
        "contacts c WHERE c.id = d.contact_id AND c.account_id = ?)"),
}


def dangling_references(source: Server | psycopg.Connection, account_id: int) -> dict[str, int]:
    """Each kind of DANGLING reference the account's rows hold, with how many: {} when none.
    Read through a running server's store, or a PostgreSQL connection."""
    def count(sql: str) -> int:
        params = (account_id,) * sql.count("?")
        if isinstance(source, psycopg.Connection):
            return source.execute(to_pyformat(sql), params).fetchone()[0]
        return source.call(source.store.fetch(sql, params))[0][0]

    counts = {kind: count(sql) for kind, sql in DANGLING.items()}
    return {kind: found for kind, found in counts.items() if found}
