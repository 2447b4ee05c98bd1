"""PostgreSQL only: several server processes on one database, and a database that goes away."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.pq import TransactionStatus

from conftest import conversion, dangling_references, event, free_port
from rdevents.process import Accepted, EraseJob
from rdevents.store import postgres as postgres_store
from rdevents.store.postgres import PostgresStore
from rdevents.store.queries import TableRows
from rdevents.store.schema import downgrade, ensure_current, upgrade
from rdevents.store.sql import SqlStore
from receiver import Receiver
from serverproc import TO_LOOPBACK_RECEIVERS, ServerProcess, rdevents, two_servers
from sqlite_store import events_job
from together import fire_together
from waiting import wait_until


@pytest.fixture(name="two_servers")
def two_servers_fixture(tmp_path, postgres_url) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with two_servers(tmp_path, postgres_url) as servers:
        yield servers


def test_a_groups_ids_come_each_table_its_own_and_never_twice(postgres_url):
    ensure_current(postgres_url)
    store = PostgresStore(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        assert store.allocate_ids(conn, {"contacts": 0, "events": 0}) == {
            "contacts": [], "events": []}
        only_events = store.allocate_ids(conn, {"contacts": 0, "events": 3})
        assert only_events["contacts"] == [] and len(only_events["events"]) == 3

    def allocate(counts: dict[str, int]) -> list[dict[str, list[int]]]:
        with psycopg.connect(postgres_url) as conn:
            return [store.allocate_ids(conn, counts) for _ in range(50)]

    # Two writers at once, the tables named in either order.
    with ThreadPoolExecutor(2) as pool:
        firsts, seconds = pool.map(allocate, [{"contacts": 7, "events": 40},
                                              {"events": 40, "contacts": 7}])
    for table, count in (("contacts", 7), ("events", 40)):
        runs = [ids[table] for ids in firsts + seconds]
        assert all(len(run) == count and run == sorted(run) for run in runs)
        every = [i for run in runs for i in run] + only_events[table]
        assert len(set(every)) == len(every)


def test_a_group_takes_ids_beyond_those_it_reserved_when_it_creates_a_contact_again(
        postgres_url):
    """A group reserves, with its reads, a key for each contact it names and each event: a
    contact created, erased and created again in one group needs one more, allocated then."""
    ensure_current(postgres_url)
    store = PostgresStore(postgres_url)
    jobs = [events_job([conversion("again@example.com")]),
            EraseJob(1, "2026-12-05T00:00:00.000Z", "again@example.com"),
            events_job([conversion("again@example.com"), conversion("other@example.com")])]
    with psycopg.connect(postgres_url) as conn:
        conn.execute("DELETE FROM contacts WHERE account_id = 1")
        outcomes = store.process_jobs(conn, jobs)
        conn.commit()
        contacts = conn.execute("SELECT id, email FROM contacts WHERE account_id = 1 "
                                "ORDER BY id").fetchall()
        events = conn.execute("SELECT e.id, c.email FROM events e LEFT JOIN contacts c "
                              "ON c.id = e.contact_id WHERE e.uuid = ANY(%s) ORDER BY e.id",
                              ([u for job in jobs[::2] for u in job.event_uuids],)).fetchall()
    assert all(isinstance(outcome, Accepted) for outcome in outcomes), outcomes
    assert [email for _, email in contacts] == ["again@example.com", "other@example.com"]
    assert [email for _, email in events] == [None, "again@example.com", "other@example.com"]


def test_one_new_email_from_two_processes_makes_one_contact(two_servers):
    email = f"same-{uuid.uuid4().hex[:8]}@example.com"
    with two_servers[0].client() as a, two_servers[1].client() as b:
        calls = [lambda c=c, i=i: c.post("/platform/events", json=conversion(
                     email, conversion_identifier=f"c{i}"))
                 for i, c in enumerate([a, b] * 10)]
        assert [r.status_code for r in fire_together(calls)] == [200] * 20
        seen_by_a = a.get(f"/platform/contacts/email:{email}").json()
        seen_by_b = b.get(f"/platform/contacts/email:{email}").json()
        assert seen_by_a["uuid"] == seen_by_b["uuid"]
        history = a.get(f"/platform/contacts/{seen_by_a['uuid']}/events",
                        params={"page_size": 100}).json()
        assert sorted(e["event_identifier"] for e in history) == sorted(f"c{i}" for i in range(20))


def test_concurrent_tag_merges_lose_no_tag(two_servers):
    email = f"tags-{uuid.uuid4().hex[:8]}@example.com"
    with two_servers[0].client() as a, two_servers[1].client() as b:
        assert a.post("/platform/events", json=conversion(email)).status_code == 200
        calls = [lambda c=c, i=i: c.post("/platform/events", json=conversion(
                     email, tags=[f"tag{i}"]))
                 for i, c in enumerate([a, b] * 15)]
        assert [r.status_code for r in fire_together(calls)] == [200] * 30
        tags = b.get(f"/platform/contacts/email:{email}").json()["tags"]
        assert sorted(tags) == sorted(f"tag{i}" for i in range(30))


def test_concurrent_funnel_changes_are_not_lost(two_servers):
    emails = [f"funnel{i}-{uuid.uuid4().hex[:8]}@example.com" for i in range(12)]
    with two_servers[0].client() as a, two_servers[1].client() as b:
        created = a.post("/platform/events/batch", json=[conversion(e) for e in emails])
        assert created.status_code == 200
        calls = []
        for email in emails:
            calls.append(lambda e=email: a.post("/platform/events", json=event(
                "SALE", email=e, funnel_name="default", value=10)))
            calls.append(lambda e=email: b.post("/platform/events", json=event(
                "OPPORTUNITY", email=e, funnel_name="default")))
        assert [r.status_code for r in fire_together(calls)] == [200] * len(calls)
        for email in emails:
            funnel = a.get(f"/platform/contacts/email:{email}/funnels/default").json()
            assert (funnel["lifecycle_stage"], funnel["opportunity"]) == ("Client", True), email


def test_erasures_racing_events_from_another_process_leave_nothing_dangling(two_servers,
                                                                           postgres_url):
    """The tables every event writes to have no foreign keys on PostgreSQL (revision 0017):
    the contacts' locks alone keep their references, across processes."""
    emails = [f"erase{i}-{uuid.uuid4().hex[:8]}@example.com" for i in range(8)]
    with two_servers[0].client() as a, two_servers[1].client() as b:
        assert a.post("/platform/events/batch", json=[conversion(e) for e in emails]
                      ).status_code == 200
        calls = []
        for email in emails:
            calls += [lambda e=email: a.post("/platform/events/batch", json=[
                          conversion(e, tags=["again"]),
                          event("OPPORTUNITY", email=e, funnel_name="default")]),
                      lambda e=email: b.delete(f"/platform/contacts/email:{e}")]
        assert sorted({r.status_code for r in fire_together(calls)}) == [200, 204]
    with psycopg.connect(postgres_url) as conn:
        account_id = conn.execute("SELECT id FROM accounts WHERE name = %s",
                                  (two_servers[0].account,)).fetchone()[0]
        assert dangling_references(conn, account_id) == {}


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_the_event_tables_foreign_keys_go_at_revision_0017_and_come_back_below_it(
        empty_database):
    _, url = empty_database

    def foreign_keys() -> set[str]:
        with psycopg.connect(url) as conn:
            return {name for (name,) in conn.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass"
                "::text IN ('contacts', 'events', 'funnel_transitions')")}

    upgrade(url)
    assert foreign_keys() == set()
    downgrade(url, "0016")
    assert foreign_keys() == {"contacts_account_id_fkey", "events_account_id_fkey",
                              "events_contact_id_fkey", "funnel_transitions_account_id_fkey",
                              "funnel_transitions_contact_id_fkey",
                              "funnel_transitions_event_id_fkey"}
    upgrade(url)
    assert foreign_keys() == set()


# --- a database that goes away --------------------------------------------------------------------

def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class Cluster:
    """A throwaway PostgreSQL cluster under a temporary directory, run by the `postgres` user
    when the tests run as root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="rdevents-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / tool), *args], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.directory / "log"),
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
                  "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-m", "fast", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    if _postgres_bin() is None:
        if os.environ.get("CI"):
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    own = Cluster()
    own.start()
    try:
        yield own
    finally:
        own.remove()


def test_outage_answers_503_quickly_and_recovers_without_restart(tmp_path, cluster):
    # No token cache: every request reads the database.
    server = ServerProcess(tmp_path, cluster.url, serve_args=("--token-cache-seconds", "0")).start()
    try:
        with server.client() as client:
            before = f"before-{uuid.uuid4().hex[:8]}@example.com"
            assert client.post("/platform/events", json=conversion(before)).status_code == 200
            cluster.stop()
            during = f"during-{uuid.uuid4().hex[:8]}@example.com"
            for _ in range(3):
                started = time.monotonic()
                response = client.post("/platform/events", json=conversion(during))
                assert time.monotonic() - started < 10
                assert response.status_code == 503, response.text
                assert response.json()["errors"]["error_type"] == "SERVICE_UNAVAILABLE"
            assert client.get("/readyz").status_code == 503
            cluster.start()
            after = f"after-{uuid.uuid4().hex[:8]}@example.com"

            def recovered() -> bool:
                response = client.post("/platform/events", json=conversion(after))
                assert response.status_code in (200, 503), response.text
                return response.status_code == 200

            wait_until(recovered, timeout=30, interval=0.2)
            assert client.get("/readyz").status_code == 200
            assert client.get(f"/platform/contacts/email:{before}").status_code == 200
            assert client.get(f"/platform/contacts/email:{during}").status_code == 404
        with psycopg.connect(cluster.url) as conn:  # nothing half-written
            contacts = conn.execute("SELECT count(*) FROM contacts").fetchone()[0]
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            assert (contacts, events) == (2, 2)
    finally:
        server.stop()


def batch_to_copy(email: str) -> list[dict]:
    return [conversion(email, tags=["moved"], name="Ana", cf_seats=3),
            event("OPPORTUNITY", email=email, funnel_name="default")]


def fill_for_copy(source: ServerProcess, receiver: Receiver, email: str) -> tuple:
    """Events, a contact, a custom field, an API key, a webhook and a delivery to copy; and what
    the source shows of them."""
    api_key = rdevents("apikeys", "create", "--account", source.account, cwd=source.workdir)
    with source.client() as client:
        webhook = client.post("/integrations/webhooks", json={
            "event_type": "WEBHOOK.MARKED_OPPORTUNITY", "url": receiver.url}).json()
        sent = client.post("/platform/events/batch", json=batch_to_copy(email),
                           headers={"Idempotency-Key": f"copy-{email}"})
        assert sent.status_code == 200
        receiver.wait_for(1)
        deliveries = f"/integrations/webhooks/{webhook['uuid']}/deliveries"
        before = {"contact": client.get(f"/platform/contacts/email:{email}").json(),
                  "funnel": client.get(f"/platform/contacts/email:{email}/funnels/default").json(),
                  "fields": client.get("/platform/contacts/fields").json(),
                  "webhooks": client.get("/integrations/webhooks").json(),
                  "deliveries": wait_until(lambda: (lambda d: d if d["deliveries"][0]["history"]
                                                    else None)(client.get(deliveries).json()))}
    return sent, webhook, api_key, before


def copy(source: ServerProcess, target_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdevents", "db", "copy", "--from",
                           f"sqlite:///{source.database}", "--to", target_url],
                          cwd=source.workdir, capture_output=True, text=True, timeout=120)


def test_db_copy_from_sqlite_keeps_tokens_contacts_and_events(tmp_path, postgres_url):
    source = ServerProcess(tmp_path, serve_args=TO_LOOPBACK_RECEIVERS).start()
    email = f"copied-{uuid.uuid4().hex[:8]}@example.com"
    receiver = Receiver().start()
    try:
        sent, webhook, api_key, before = fill_for_copy(source, receiver, email)
    finally:
        source.stop()
        receiver.stop()
    target_url = postgres_url.rsplit("/", 1)[0] + f"/copy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{target_url.rsplit("/", 1)[1]}"')
    try:
        copied = copy(source, target_url)
        assert copied.returncode == 0, copied.stderr
        target = ServerProcess(tmp_path, target_url, source.headers).start()  # the same token
        try:
            with target.client() as client:
                contact = client.get(f"/platform/contacts/email:{email}").json()
                assert contact == before["contact"]
                by_tag = client.get("/platform/contacts", params={"tag": "moved"}).json()
                assert [c["email"] for c in by_tag["contacts"]] == [email]  # index made anew
                assert client.get(f"/platform/contacts/{contact['uuid']}/funnels/default"
                                  ).json() == before["funnel"]
                assert client.get("/platform/contacts/fields").json() == before["fields"]
                assert client.get("/integrations/webhooks").json() == before["webhooks"]
                assert client.get(f"/integrations/webhooks/{webhook['uuid']}/deliveries"
                                  ).json() == before["deliveries"]
                assert client.post("/platform/conversions", params={"api_key": api_key},
                                   json=conversion(email)).status_code == 200
                for stored in sent.json()["events"]:
                    assert client.get(f"/platform/events/{stored['event_uuid']}"
                                      ).status_code == 200
                # A retry of the copied request is answered as it was, not stored again.
                retried = client.post("/platform/events/batch", json=batch_to_copy(email),
                                      headers={"Idempotency-Key": f"copy-{email}"})
                assert retried.headers.get("idempotent-replayed") == "true"
                assert retried.content == sent.content
                # The copied events are in the feed.
                fed = client.get("/rdevents/v1/events").json()["events"]
                assert {e["event_uuid"] for e in sent.json()["events"]} <= {
                    e["event_uuid"] for e in fed}
                # New rows get fresh ids after the copied ones.
                assert client.post("/platform/events", json=conversion(
                    f"new-{uuid.uuid4().hex[:8]}@example.com")).status_code == 200
        finally:
            target.stop()
        again = copy(source, target_url)
        assert again.returncode == 1 and "already holds accounts" in again.stderr
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{target_url.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_writer_reconnects_when_its_connection_was_dropped(tmp_path, postgres_url):
    """A database restart or a proxy may drop the writer's idle connection: the next write
    reconnects and succeeds instead of failing once."""
    from rdevents.store.postgres import WRITER_APPLICATION_NAME

    server = ServerProcess(tmp_path, postgres_url).start()
    try:
        with server.client() as client:
            assert client.post("/platform/events", json=conversion(
                f"a-{uuid.uuid4().hex[:8]}@example.com")).status_code == 200
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND datname = current_database()",
                    (WRITER_APPLICATION_NAME,)).fetchall()
            # (another test's server on this database may lose its writer too, or be gone
            # between the listing and the signal: it reconnects)
            assert (True,) in killed
            after = client.post("/platform/events", json=conversion(
                f"b-{uuid.uuid4().hex[:8]}@example.com"))
            assert after.status_code == 200, after.text
    finally:
        server.stop()


def test_the_writers_contact_lookup_reads_the_email_index_before_any_statistics(postgres_url):
    """On a new database, before PostgreSQL has statistics of the contacts, the writer's
    look-up (its values bound by the client, as the writer sends it: planned each time) must use
    the unique (account, e-mail) index, not one that would read every contact of the account."""
    from rdevents.store.postgres import CONTACTS_BY_EMAIL
    from rdevents.store.queries import to_json
    from rdevents.store.schema import upgrade

    name = f"plan_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = psycopg.ClientCursor(conn)
            cursor.execute(f"EXPLAIN {CONTACTS_BY_EMAIL}",
                           (to_json(["a@example.com", "b@example.com"]), 1))
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "uq_contacts_account_email" in plan, plan
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ROUND_TRIP_COLUMNS = ("big", "short", "long", "document", "flag", "amount")
ROUND_TRIP_TABLE = ("(seq bigserial, big bigint, short varchar(40), long text, document jsonb, "
                    "flag boolean, amount double precision)")
# What COPY's text format and JSON each escape, beside text of any kind (but NUL, which
# PostgreSQL's text cannot hold, and lone surrogates, which UTF-8 cannot).
AWKWARD = ["", " ", "a ", "\\", "\\N", "\t", "\n", "\r\n", "'", '"', "é", "😀", "null", "\u2028"]
TEXT = st.sampled_from(AWKWARD) | st.text(st.characters(blacklist_categories=("Cs",),
                                                        blacklist_characters="\x00"))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8)
ROWS = st.lists(st.tuples(
    st.none() | st.integers(-2**63, 2**63 - 1),
    st.none() | TEXT.filter(lambda text: len(text) <= 40),
    st.none() | TEXT,
    st.none() | JSON_VALUES.map(lambda value: orjson.dumps(value).decode()),
    st.none() | st.booleans(),
    st.none() | st.integers(-2**53, 2**53) | st.floats()
    | st.sampled_from([float("inf"), float("-inf"), float("nan"), -0.0, 5e-324])),
    min_size=1, max_size=20)


@pytest.fixture(scope="module")
def round_trip_tables(postgres_url) -> Iterator[psycopg.Connection]:
    ensure_current(postgres_url)  # tables of its own, beside the schema's
    with psycopg.connect(postgres_url) as conn:
        for name in ("by_statement", "by_copy"):
            conn.execute(f"CREATE TABLE {name} {ROUND_TRIP_TABLE}")
        conn.commit()
        yield conn
        for name in ("by_statement", "by_copy"):
            conn.execute(f"DROP TABLE {name}")
        conn.commit()


@settings(max_examples=60, deadline=None)
@given(rows=ROWS)
def test_rows_written_in_one_statement_are_stored_as_copy_stores_them(round_trip_tables, rows):
    """The writer sends a small group's rows as JSON in one statement, a large group's by COPY:
    text of any kind, JSON documents, 64-bit integers and floats (infinite, NaN, -0.0 too) are
    stored alike, in order."""
    conn, store = round_trip_tables, PostgresStore("postgresql://unused")
    assert store.insert_statement(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS, rows)])
    store.insert_rows(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS, rows)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(postgres_store, "ONE_STATEMENT_ROWS", 0)
        store.insert_rows(conn, [TableRows("by_copy", ROUND_TRIP_COLUMNS, rows)])
    read = f"SELECT {', '.join(ROUND_TRIP_COLUMNS)} FROM {{}} ORDER BY seq"
    try:
        stored = conn.execute(read.format("by_statement")).fetchall()
        # repr: NaN equals nothing, and -0.0 equals 0.0
        assert repr(stored) == repr(conn.execute(read.format("by_copy")).fetchall())
        assert [row[0] for row in stored] == [row[0] for row in rows]
    finally:
        conn.rollback()


def test_rows_without_a_json_form_or_too_long_for_one_statement_go_by_copy(round_trip_tables):
    conn, store = round_trip_tables, PostgresStore("postgresql://unused")
    small = [(1, "a", "b", "{}", True, 0.5)]
    assert store.insert_statement(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS, small)])
    odd = [(1, "a", Decimal("1.50"), "{}", True, 0.5)]  # orjson has no Decimal
    assert store.insert_statement(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS,
                                                   odd)]) is None
    long = [(1, "a", "x" * postgres_store.ONE_STATEMENT_BYTES, "{}", True, 0.5)]
    assert store.insert_statement(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS,
                                                   long)]) is None
    try:
        store.insert_rows(conn, [TableRows("by_statement", ROUND_TRIP_COLUMNS, odd + long)])
        assert conn.execute("SELECT long FROM by_statement ORDER BY seq").fetchall() == [
            ("1.50",), ("x" * postgres_store.ONE_STATEMENT_BYTES,)]
    finally:
        conn.rollback()


def test_the_writers_first_statement_begins_the_groups_transaction(round_trip_tables,
                                                                   postgres_url):
    """The writer's connection is in autocommit mode (its BEGIN travels with its first reads):
    whichever statement comes first, the group's writes are one transaction."""
    store = PostgresStore("postgresql://unused")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        firsts = [
            lambda: store.read_together(conn, [("SELECT ?", (1,)), ("SELECT 2", ())]),
            lambda: store.query(conn, "SELECT 1", ()),
            lambda: store.execute_many(conn, "INSERT INTO by_statement (big) VALUES (?)",
                                       [(1,)]),
            lambda: store.insert_rows(conn, [TableRows("by_statement", ("big",), [(2,)])])]
        for first in firsts:
            first()
            assert conn.info.transaction_status == TransactionStatus.INTRANS
            store.insert_rows(conn, [TableRows("by_statement", ("big",), [(3,)])])
            conn.rollback()
        assert store.read_together(conn, [("SELECT ?", (1,)), ("SELECT 2", ())]) == [[(1,)],
                                                                                    [(2,)]]
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM by_statement").fetchall() == [(0,)]


def test_a_group_whose_transaction_failed_unreported_is_not_acknowledged(postgres_url,
                                                                        monkeypatch):
    """COMMIT of a failed transaction rolls it back without an error: were a statement's error
    swallowed, the group would be acknowledged unwritten. The writer refuses to commit then."""
    ensure_current(postgres_url)
    store = PostgresStore(postgres_url)
    job = events_job([conversion(f"unreported-{uuid.uuid4().hex[:8]}@example.com")])

    def swallowing(conn, jobs):
        outcomes = SqlStore.process_jobs(store, conn, jobs)
        try:
            store.query(conn, "SELECT 1 / 0", ())
        except psycopg.errors.DivisionByZero:
            pass
        return outcomes

    monkeypatch.setattr(store, "process_jobs", swallowing)
    try:
        with pytest.raises(RuntimeError, match="failed unreported"):
            store._transaction([job])
    finally:
        for conn in store._writers:
            conn.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE uuid = %s",
                            (job.event_uuids[0],)).fetchall() == [(0,)]
