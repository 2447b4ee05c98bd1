"""No job makes another fail: jobs the database refuses, gathered into one write group with good
jobs of other accounts, fail alone, on both backends; and database trouble is a 503, not a 500."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Server, conversion, sqlite_settings
from hooks import settled, subscribe
from rdevents.clock import utc_now
from rdevents.ingest import stored_payloads
from rdevents.process import ACCEPTED, EventsJob, Failed
from rdevents.store import StoreUnavailable, postgres
from rdevents.store import sqlite as sqlite_store
from rdevents.validation import validate_event

KINDS = ("good", "duplicate_uuid", "unstorable_text")


def job_of(account_id: int, kind: str, taken_uuid: str) -> tuple[EventsJob, str, str]:
    """A one-event job of `kind`: (the job, its event's uuid, its e-mail)."""
    email = f"iso-{uuid.uuid4().hex[:12]}@example.com"
    event, errors = validate_event(conversion(email))
    assert not errors
    event_uuid = taken_uuid if kind == "duplicate_uuid" else str(uuid.uuid4())
    payloads = stored_payloads([event])
    if kind == "unstorable_text":  # a lone surrogate: no database can store the text
        payloads = ['{"conversion_identifier": "\ud800"}']
    return (EventsJob(account_id, utc_now(), [event], [event_uuid], payloads), event_uuid,
            email)


@pytest.fixture(scope="module")
def accounts(server: Server) -> list[int]:
    return [server.new_account()[0] for _ in range(3)]


@pytest.fixture(scope="module")
def taken_uuid(server: Server, accounts: list[int]) -> str:
    """The uuid of a stored event, which a job refused for its own constraint reuses."""
    job, event_uuid, _ = job_of(accounts[0], "good", "")
    assert server.call(server.store.write(job)) == ACCEPTED
    return event_uuid


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(KINDS)), min_size=2,
                     max_size=40))
def test_only_the_jobs_the_database_refuses_fail(server: Server, accounts: list[int],
                                                 taken_uuid: str, plan) -> None:
    jobs = [job_of(accounts[account], kind, taken_uuid) for account, kind in plan]

    async def write_together():
        return await asyncio.gather(*(server.store.write(job) for job, _, _ in jobs))

    outcomes = server.call(write_together())
    for (_, kind), (job, event_uuid, email), outcome in zip(plan, jobs, outcomes, strict=True):
        stored_contact = server.call(server.store.get_contact(job.account_id, "email", email))
        if kind == "good":
            assert outcome == ACCEPTED
            stored = server.call(server.store.get_event(job.account_id, event_uuid))
            assert stored is not None and stored.contact_uuid == stored_contact.uuid
        else:
            assert isinstance(outcome, Failed), kind
            assert not isinstance(outcome.exception, StoreUnavailable)
            assert stored_contact is None  # nothing of the refused job is left


def test_sqlite_errors_that_mean_unavailable(tmp_path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x UNIQUE)")
        conn.execute("INSERT INTO t VALUES (1)")
    read_only = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.Error) as refused:
        read_only.execute("INSERT INTO t VALUES (2)")
    assert sqlite_store.unavailable(refused.value)
    writer = sqlite3.connect(path)
    for statement in ("INSERT INTO t VALUES (1)", "SELEC 1", "SELECT nope FROM t"):
        with pytest.raises(sqlite3.Error) as bug:
            writer.execute(statement)
        assert not sqlite_store.unavailable(bug.value), statement


def test_postgres_errors_that_mean_unavailable(postgres_url: str) -> None:
    with pytest.raises(psycopg.Error) as down:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/x", connect_timeout=2)
    assert postgres.unavailable(down.value)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (x int UNIQUE)")
        conn.execute("INSERT INTO t VALUES (1)")
        for statement in ("INSERT INTO t VALUES (1)", "SELEC 1", "SELECT 'a'::int"):
            with pytest.raises(psycopg.Error) as bug:
                conn.execute(statement)
            assert not postgres.unavailable(bug.value), statement
        conn.execute("SET default_transaction_read_only = on")
        with pytest.raises(psycopg.Error) as read_only:
            conn.execute("CREATE TABLE read_only_probe (x int)")
        assert postgres.unavailable(read_only.value)


@pytest.fixture
def sqlite_server(tmp_path) -> Iterator[Server]:
    running = Server(sqlite_settings(tmp_path)).start()
    yield running
    running.stop()


def test_a_database_locked_by_another_process_is_a_503_and_not_ready(sqlite_server) -> None:
    _, token = sqlite_server.new_account()
    database = sqlite_server.settings.database_url.removeprefix("sqlite:///")
    locker = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    writes = [
        ("POST", "/platform/contacts/fields", {"api_identifier": "cf_locked", "data_type":
         "STRING", "presentation_type": "TEXT_INPUT", "name": {"pt-BR": "x"},
         "label": {"pt-BR": "x"}}),
        ("POST", "/auth/revoke", {"token": "not-a-token"}),
        ("POST", "/platform/events", conversion("locked@example.com")),
    ]

    def send(method, path, body):
        with sqlite_server.client(token) as api:  # each write waits for the lock in turn
            return api.request(method, path, json=body, timeout=60)

    locker.execute("BEGIN EXCLUSIVE")
    try:
        ready = httpx.get(f"{sqlite_server.url}/readyz", timeout=30)
        with ThreadPoolExecutor(len(writes)) as pool:
            answers = list(pool.map(lambda w: send(*w), writes))
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert ready.status_code == 503
    assert ready.json()["errors"]["error_message"].startswith(
        "The database cannot be written: database is locked")
    for (_, path, _), answer in zip(writes, answers, strict=True):
        assert answer.status_code == 503, (path, answer.text)
        assert answer.json() == {"errors": {"error_type": "SERVICE_UNAVAILABLE",
                                            "error_message": "Service temporarily unavailable"}}
        assert answer.headers["Retry-After"] == "1"
    assert httpx.get(f"{sqlite_server.url}/readyz", timeout=30).status_code == 200


def test_a_slow_read_does_not_stall_other_requests(sqlite_server) -> None:
    """Reads run off the event loop: while a read of several seconds runs, the server answers
    other requests."""
    slow_read = sqlite_server.store.fetch(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) "
        "SELECT count(*) FROM c")
    reading = asyncio.run_coroutine_threadsafe(slow_read, sqlite_server._loop)
    answers = [httpx.get(f"{sqlite_server.url}/healthz", timeout=30) for _ in range(3)]
    assert not reading.done()  # every answer came while the read ran
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert reading.result(60) == [(20_000_000,)]


def test_no_route_reaches_another_accounts_fields_webhooks_or_deliveries(server, receiver):
    """Every route that names a field, a webhook or a delivery answers another account 404, and
    changes nothing of the owner's."""
    _, token_a = server.new_account()
    _, token_b = server.new_account()
    with server.client(token_a) as a, server.client(token_b) as b:
        field = a.post("/platform/contacts/fields", json={
            "api_identifier": "cf_mine", "data_type": "STRING",
            "presentation_type": "TEXT_INPUT", "name": {"pt-BR": "Mine"},
            "label": {"pt-BR": "Mine"}}).json()
        webhook = subscribe(a, receiver.url)
        assert a.send_event(conversion(f"iso-{uuid.uuid4().hex[:8]}@example.com")
                            ).status_code == 200
        delivery = settled(a, webhook, 1)[0]
        before = {path: a.get(path).json() for path in (
            "/platform/contacts/fields", "/integrations/webhooks",
            f"/integrations/webhooks/{webhook['uuid']}/deliveries")}
        hook = f"/integrations/webhooks/{webhook['uuid']}"
        attempts = [
            ("GET", f"/platform/contacts/fields/{field['uuid']}", None),
            ("PATCH", f"/platform/contacts/fields/{field['uuid']}", {"label": {"pt-BR": "B"}}),
            ("DELETE", f"/platform/contacts/fields/{field['uuid']}", None),
            ("GET", hook, None),
            ("PUT", hook, {"event_type": "WEBHOOK.CONVERTED", "url": receiver.url}),
            ("DELETE", hook, None),
            ("POST", f"/rdevents/v1/webhooks/{webhook['uuid']}/secret/rotate",
             {"secret": "b" * 32}),
            ("GET", f"{hook}/deliveries", None),
            ("POST", f"{hook}/deliveries/{delivery['uuid']}/resend", None)]
        for method, path, body in attempts:
            answer = b.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["errors"]["error_type"] == "RESOURCE_NOT_FOUND"
        assert {path: a.get(path).json() for path in before} == before
