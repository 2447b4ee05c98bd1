"""The `rdevents` command, run for real as a subprocess (python -m rdevents ...)."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import conversion, free_port
from rdevents.store.schema import head_revision
from waiting import wait_until

TOKEN = re.compile(r"rdv_[A-Za-z0-9_-]{20,}")
INVALID = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid token."}}
EXPIRED_HEADER = ('Bearer realm="rdevents", error="expired_token", '
                  'error_description="The access token expired"')
TABLES = {"accounts", "tokens", "contacts", "events", "funnel_transitions", "alembic_version"}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDEVENTS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def rdevents(*args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=cwd,
                          env=environment(env), capture_output=True, text=True, timeout=60)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"  # an absolute path: sqlite:////...


@dataclass
class Running:
    process: subprocess.Popen
    url: str
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()


def wait_until_serving(running: Running, deadline_seconds: float = 30) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"serve exited with {running.process.returncode}:\n"
                                 f"{running.stdout}\n{running.stderr}")
        try:
            if httpx.get(f"{running.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"serve did not answer /healthz in time:\n{running.stderr}")


@contextmanager
def serving(cwd: Path, *args: str, port: int, env: dict[str, str] | None = None
            ) -> Iterator[Running]:
    """`rdevents serve ARGS` in `cwd`, ready on `port`; killed on the way out whatever happens."""
    name = uuid.uuid4().hex[:8]
    stdout_path, stderr_path = cwd / f"serve-{name}.out", cwd / f"serve-{name}.err"
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "rdevents", "serve", *args], cwd=cwd,
                                   env=environment(env), stdout=out, stderr=err)
    running = Running(process, f"http://127.0.0.1:{port}", stdout_path, stderr_path)
    try:
        wait_until_serving(running)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def new_email() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}@example.com"


def send(url: str, token: str, email: str | None = None) -> httpx.Response:
    return httpx.post(f"{url}/platform/events", json=conversion(email or new_email()),
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)


def once_refused(response: httpx.Response) -> httpx.Response | None:
    """The answer, once it is not a 200 (None while it is)."""
    return None if response.status_code == 200 else response


def create_token(cwd: Path, account: str, *extra: str, env: dict | None = None) -> str:
    result = rdevents("tokens", "create", "--account", account, *extra, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout.strip()), result.stdout
    return result.stdout.strip()


# --- first start on an empty directory ------------------------------------------------------------


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Iterator[Running]:
    """`rdevents serve --port P` in an empty directory, running for the whole module."""
    directory = tmp_path_factory.mktemp("first")
    with serving(directory, "--port", str(port := free_port()), port=port) as running:
        yield running


def workdir(running: Running) -> Path:
    return running.stdout_path.parent


def test_first_start_creates_the_database_and_prints_a_token(first):
    assert (workdir(first) / "data" / "rdevents.db").is_file()
    tokens = set(TOKEN.findall(first.stdout))
    assert len(tokens) == 1, first.stdout
    assert "curl" in first.stdout
    assert send(first.url, tokens.pop()).status_code == 200


def curl_example(text: str) -> list[str]:
    """The printed curl command, as the shell would split it (line continuations joined)."""
    start = text.index("curl ")
    lines = []
    for line in text[start:].splitlines():
        lines.append(line.rstrip())
        if not line.rstrip().endswith("\\"):
            break
    return shlex.split(" ".join(line.rstrip("\\") for line in lines))


def test_the_printed_curl_example_works(first):
    argv = curl_example(first.stdout)
    assert argv[0] == "curl"
    method, url, headers, data = "GET", None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw"):
            data = next(args)
            method = method if method != "GET" else "POST"
        else:
            assert not arg.startswith("-"), f"unexpected curl option {arg}"
            url = arg
    assert url is not None and data is not None
    assert url.startswith(first.url + "/")
    response = httpx.request(method, url, headers=headers, content=data.encode(), timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"event_uuid"}
    assert str(uuid.UUID(body["event_uuid"])) == body["event_uuid"]
    token = headers["Authorization"].removeprefix("Bearer ")
    stored = httpx.get(f"{first.url}/platform/events/{body['event_uuid']}",
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert stored.status_code == 200


def test_a_second_start_prints_no_new_token(first):
    (token,) = set(TOKEN.findall(first.stdout))
    port = free_port()
    with serving(workdir(first), "--port", str(port), port=port) as second:
        assert not TOKEN.search(second.stdout), second.stdout
        assert "curl" not in second.stdout
        assert send(second.url, token).status_code == 200


# --- accounts and tokens --------------------------------------------------------------------------


def test_accounts_create_and_duplicate(first):
    name = f"team-{uuid.uuid4().hex[:8]}"
    created = rdevents("accounts", "create", name, cwd=workdir(first))
    assert created.returncode == 0, created.stderr
    duplicate = rdevents("accounts", "create", name, cwd=workdir(first))
    assert duplicate.returncode == 1
    assert name in duplicate.stderr and "exists" in duplicate.stderr


def test_tokens_create_prints_only_the_token_and_it_works(first):
    name = f"team-{uuid.uuid4().hex[:8]}"
    assert rdevents("accounts", "create", name, cwd=workdir(first)).returncode == 0
    result = rdevents("tokens", "create", "--account", name, cwd=workdir(first))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    token = result.stdout.strip()
    assert TOKEN.fullmatch(token)
    email = new_email()
    assert send(first.url, token, email).status_code == 200  # the server was already running
    contact = httpx.get(f"{first.url}/platform/contacts/email:{email}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert contact.status_code == 200
    (default_token,) = set(TOKEN.findall(first.stdout))  # another account: cannot see it
    assert httpx.get(f"{first.url}/platform/contacts/email:{email}", timeout=30,
                     headers={"Authorization": f"Bearer {default_token}"}).status_code == 404


def test_tokens_create_expires_in(first):
    name = f"team-{uuid.uuid4().hex[:8]}"
    assert rdevents("accounts", "create", name, cwd=workdir(first)).returncode == 0
    lasting = create_token(workdir(first), name, "--expires-in", "3600")
    short = create_token(workdir(first), name, "--expires-in", "1")
    assert send(first.url, lasting).status_code == 200

    def expired() -> bool:  # asked with a read, which stores nothing while the token lives
        return httpx.get(f"{first.url}/platform/contacts/email:{new_email()}", timeout=30,
                         headers={"Authorization": f"Bearer {short}"}).status_code == 401

    wait_until(expired)
    response = send(first.url, short)
    assert response.status_code == 401
    assert response.json() == INVALID
    assert response.headers["www-authenticate"] == EXPIRED_HEADER
    refused = rdevents("tokens", "create", "--account", name, "--expires-in", "0",
                       cwd=workdir(first))
    assert refused.returncode != 0 and not TOKEN.search(refused.stdout)


def test_tokens_create_for_a_missing_account_fails(first):
    result = rdevents("tokens", "create", "--account", "missing", cwd=workdir(first))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "missing" in result.stderr


def test_tokens_revoke(first):
    name = f"team-{uuid.uuid4().hex[:8]}"
    assert rdevents("accounts", "create", name, cwd=workdir(first)).returncode == 0
    token, other = create_token(workdir(first), name), create_token(workdir(first), name)
    assert send(first.url, token).status_code == 200
    revoked = rdevents("tokens", "revoke", token, cwd=workdir(first))
    assert revoked.returncode == 0, revoked.stderr
    # The server trusts a live token for up to --token-cache-seconds (1 s by default).
    response = wait_until(lambda: once_refused(send(first.url, token)), timeout=3, interval=0.1)
    assert response.status_code == 401
    assert response.json() == INVALID
    assert send(first.url, other).status_code == 200  # only that token
    again = rdevents("tokens", "revoke", token, cwd=workdir(first))
    assert again.returncode == 1 and again.stderr


def test_tokens_list_and_revoke_by_id_against_a_running_server(first):
    name = f"team-{uuid.uuid4().hex[:8]}"
    assert rdevents("accounts", "create", name, cwd=workdir(first)).returncode == 0
    token, other = create_token(workdir(first), name), create_token(workdir(first), name)
    assert send(first.url, token).status_code == 200

    def listed() -> list[dict]:
        result = rdevents("tokens", "list", "--account", name, "--json", cwd=workdir(first))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def used() -> list[dict] | None:
        tokens = listed()
        return tokens if tokens[0]["last_used_at"] is not None else None

    tokens = wait_until(used, timeout=10, interval=0.1)  # it is recorded in the background
    assert [(t["prefix"], t["last_used_at"] is None) for t in tokens] == [
        (token[:12], False), (other[:12], True)]
    revoked = rdevents("tokens", "revoke", "--id", str(tokens[0]["id"]), cwd=workdir(first))
    assert (revoked.returncode, revoked.stderr) == (0, "Token revoked.\n")
    # --token-cache-seconds, 1 s by default
    response = wait_until(lambda: once_refused(send(first.url, token)), timeout=3, interval=0.1)
    assert response.json() == INVALID
    assert send(first.url, other).status_code == 200


# --- what keeps a command from running: one line, exit status 2 ----------------------------------


def unreachable_postgres(tmp_path: Path) -> tuple[str, str]:
    return ("postgresql://postgres@127.0.0.1:1/rdevents",
            "Error: Cannot connect to PostgreSQL at 127.0.0.1:1/rdevents: Connection refused. "
            "Check that the server runs and accepts connections, that the database exists, "
            "and --database (or RDEVENTS_DATABASE_URL).")


def unusable_sqlite_file(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "plain").write_text("not a directory")
    path = tmp_path / "plain" / "rdevents.db"
    return (sqlite_url(path),
            f"Error: Cannot open the SQLite database {path.resolve()}: {tmp_path / 'plain'} is "
            "not a directory. Give a file rdevents may create or an rdevents database, with "
            "--database (or RDEVENTS_DATABASE_URL).")


def not_a_database(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database\n" * 100)
    return (sqlite_url(path),
            f"Error: Cannot open the SQLite database {path.resolve()}: file is not a database. "
            "Give a file rdevents may create or an rdevents database, with --database (or "
            "RDEVENTS_DATABASE_URL).")


def malformed_url(tmp_path: Path) -> tuple[str, str]:
    return ("mysql://root:hunter2@db/rdevents",
            "Error: The database URL 'mysql://root:***@db/rdevents' is not valid (mysql is not "
            "a database rdevents uses): give sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or postgresql://USER@HOST:PORT/DATABASE with "
            "--database (or RDEVENTS_DATABASE_URL).")


def database_command(command: str, url: str, tmp_path: Path) -> list[str]:
    if command == "db-copy-from":
        return ["db", "copy", "--from", url, "--to", sqlite_url(tmp_path / "target.db")]
    if command == "db-copy-to":
        source = sqlite_url(tmp_path / "source.db")
        assert rdevents("db", "upgrade", "--database", source, cwd=tmp_path).returncode == 0
        return ["db", "copy", "--from", source, "--to", url]
    return {"accounts-list": ["accounts", "list"], "db-upgrade": ["db", "upgrade"],
            "serve": ["serve", "--port", str(free_port())]}[command] + ["--database", url]


# Every problem through a command of the store (`with_store`), each other command with some.
@pytest.mark.parametrize("command, problem", [
    *(("accounts-list", problem) for problem in (unreachable_postgres, unusable_sqlite_file,
                                                 not_a_database, malformed_url)),
    ("db-upgrade", unusable_sqlite_file), ("db-upgrade", unreachable_postgres),
    ("db-copy-from", not_a_database), ("db-copy-to", unreachable_postgres),
    ("serve", malformed_url), ("serve", unreachable_postgres),
], ids=lambda value: value if isinstance(value, str) else value.__name__)
def test_a_database_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, command, problem):
    url, message = problem(tmp_path)
    result = rdevents(*database_command(command, url, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == message + "\n"


def test_db_copy_from_a_missing_sqlite_file_creates_nothing(tmp_path):
    missing = tmp_path / "typo.db"
    result = rdevents("db", "copy", "--from", sqlite_url(missing), "--to",
                      sqlite_url(tmp_path / "target.db"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: Cannot open the SQLite database {missing}: no such "
                                    "file.")
    assert not missing.exists()


def test_serve_on_a_port_in_use_creates_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rdevents("serve", "--port", str(port), cwd=tmp_path)
        assert (result.returncode, result.stdout) == (2, "")
        assert result.stderr == (f"Error: Port {port} of 127.0.0.1 is in use: stop what listens "
                                 "there, or give another port with --port (or RDEVENTS_PORT).\n")
    assert not (tmp_path / "data").exists()  # no account, no token spent
    with serving(tmp_path, "--port", str(port), port=port) as running:
        (token,) = set(TOKEN.findall(running.stdout))
        assert send(running.url, token).status_code == 200


# --- configuration by environment -----------------------------------------------------------------


def test_environment_selects_database_and_port(tmp_path):
    database = tmp_path / "elsewhere" / "env.db"
    env = {"RDEVENTS_DATABASE_URL": sqlite_url(database)}
    assert rdevents("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    assert rdevents("accounts", "create", "envteam", cwd=tmp_path, env=env).returncode == 0
    token = create_token(tmp_path, "envteam", env=env)
    assert database.is_file()
    assert not (tmp_path / "data").exists()
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM accounts WHERE name = 'envteam'").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM tokens").fetchone() == (1,)

    port = free_port()
    with serving(tmp_path, port=port, env={**env, "RDEVENTS_PORT": str(port)}) as running:
        assert not TOKEN.search(running.stdout)  # the env database already had an account
        assert send(running.url, token).status_code == 200
    assert not (tmp_path / "data").exists()

    # without the variable, the default database is used, which has no such account
    assert rdevents("tokens", "create", "--account", "envteam", cwd=tmp_path).returncode == 1


# --- schema ---------------------------------------------------------------------------------------


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_db_upgrade_creates_the_schema(tmp_path):
    database = tmp_path / "new" / "dir" / "fresh.db"
    result = rdevents("db", "upgrade", "--database", sqlite_url(database), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert TABLES <= tables(database)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == \
            [(head_revision(),)]
    again = rdevents("db", "upgrade", "--database", sqlite_url(database), cwd=tmp_path)
    assert again.returncode == 0, again.stderr


def behind_unversioned(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE legacy (x TEXT)")


def behind_old_revision(database: Path) -> None:
    assert rdevents("db", "upgrade", "--database", sqlite_url(database),
                    cwd=database.parent).returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = '0000'")


@pytest.mark.parametrize("make_behind", [behind_unversioned, behind_old_revision],
                         ids=["tables-without-version", "old-revision"])
def test_serve_refuses_a_schema_that_is_behind(tmp_path, make_behind):
    database = tmp_path / "old.db"
    make_behind(database)
    before = tables(database)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rdevents", "serve", "--port", str(port),
         "--database", sqlite_url(database)],
        cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode != 0
    assert "rdevents db upgrade" in out + err
    assert not TOKEN.search(out)
    assert tables(database) == before  # nothing was created or migrated behind the user's back
    refused = rdevents("tokens", "create", "--account", "default", "--database",
                       sqlite_url(database), cwd=tmp_path)
    assert refused.returncode != 0 and "rdevents db upgrade" in refused.stderr


# --- signals --------------------------------------------------------------------------------------


def test_sigterm_stops_serve_with_exit_code_zero(tmp_path):
    port = free_port()
    with serving(tmp_path, "--port", str(port), port=port) as running:
        (token,) = set(TOKEN.findall(running.stdout))
        assert send(running.url, token).status_code == 200
        running.process.send_signal(signal.SIGTERM)
        returncode = running.process.wait(30)
    assert returncode == 0, running.stderr
