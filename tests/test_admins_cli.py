"""`rdevents admins`: create, set-password, list, delete, and the length a password needs, run
for real against the database of a running server (each backend)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import httpx
import pytest

from consent import PASSWORD, REDIRECT, new_address, sign_in
from rdevents.oauth import create_app
from rdevents.passwords import hash_password

TOO_SHORT = ("Error: Invalid value for '--password': an administrator's password needs at "
             "least 12 characters.")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
def rdevents(server):
    """Run `rdevents ARGS` on the server's database; `password` goes in RDEVENTS_ADMIN_PASSWORD,
    `typed` to the prompts."""

    def run(*args: str, password: str | None = None,
            typed: str | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RDEVENTS_")}
        env["RDEVENTS_DATABASE_URL"] = server.settings.database_url
        if password is not None:
            env["RDEVENTS_ADMIN_PASSWORD"] = password
        # A session of its own: no terminal, so the password prompt reads standard input.
        return subprocess.run([sys.executable, "-m", "rdevents", *args], env=env, input=typed,
                              capture_output=True, text=True, timeout=60,
                              start_new_session=True)

    return run


@pytest.fixture
def account(server) -> tuple[str, str]:
    """A new account's name, and the client_id of an app of it."""
    name = f"acct-{uuid.uuid4().hex[:8]}"
    created = server.call(server.store.create_account(name))
    client_id, _ = server.call(create_app(server.store, created.id, REDIRECT))
    return name, client_id


def add_admin(server, account_name: str, username: str) -> None:
    account = server.call(server.store.get_account(account_name))
    server.call(server.store.create_admin(account.id, username, hash_password(PASSWORD)))


def listed(rdevents, account_name: str) -> list[dict]:
    result = rdevents("admins", "list", "--account", account_name, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_short_password_is_refused(rdevents, account):
    name, _ = account
    result = rdevents("admins", "create", "--account", name, "--username", "shorty",
                      password="elevenchars")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(TOO_SHORT)
    assert listed(rdevents, name) == []


def test_the_prompt_asks_again_for_a_short_password(server, rdevents, account):
    name, client_id = account
    username = f"typed-{uuid.uuid4().hex[:6]}"
    result = rdevents("admins", "create", "--account", name, "--username", username,
                      typed=f"short\n{PASSWORD}\n{PASSWORD}\n")
    assert result.returncode == 0, result.stderr
    assert "Error: an administrator's password needs at least 12 characters." in result.stdout
    assert f"Created administrator {username!r} of {name!r}." in result.stderr
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        assert sign_in(browser, client_id, username, PASSWORD,
                       address=new_address()).status_code == 302


def test_set_password_changes_it_and_lifts_a_lockout(server, rdevents, account):
    name, client_id = account
    username = f"ana-{uuid.uuid4().hex[:6]}"
    add_admin(server, name, username)
    address, new_password = new_address(), "a whole new passphrase"
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        statuses = [sign_in(browser, client_id, username, "wrong", address=address).status_code
                    for _ in range(6)]
        assert statuses == [401] * 5 + [429]

        short = rdevents("admins", "set-password", "--username", username, password="short")
        assert (short.returncode, short.stderr.strip().endswith(TOO_SHORT)) == (2, True)
        changed = rdevents("admins", "set-password", "--username", username,
                           password=new_password)
        assert changed.returncode == 0, changed.stderr
        assert changed.stderr == f"Password of {username!r} changed.\n"

        assert sign_in(browser, client_id, username, PASSWORD, address=address
                       ).status_code == 401
        assert sign_in(browser, client_id, username, new_password, address=address
                       ).status_code == 302
    unknown = rdevents("admins", "set-password", "--username", "nobody-at-all",
                       password=new_password)
    assert unknown.returncode == 1
    assert unknown.stderr == "Error: No administrator named 'nobody-at-all'.\n"


def test_list_shows_names_accounts_and_times_never_hashes(server, rdevents, account):
    name, _ = account
    other = f"{name}-other"
    server.call(server.store.create_account(other))
    for account_name, username in ((name, "zoe"), (name, "bia"), (other, "caio")):
        add_admin(server, account_name, f"{username}-{name}")
    admins = listed(rdevents, name)
    assert [(a["username"], a["account"]) for a in admins] == [(f"bia-{name}", name),
                                                               (f"zoe-{name}", name)]
    assert all(set(a) == {"username", "account", "created_at"} for a in admins)
    assert all(TIMESTAMP.fullmatch(a["created_at"]) for a in admins)

    table = rdevents("admins", "list").stdout.splitlines()
    assert re.fullmatch(r"USERNAME +ACCOUNT +CREATED", table[0])
    ours = [line.split() for line in table[1:] if name in line]
    assert ours == [[f"bia-{name}", name, admins[0]["created_at"]],
                    [f"zoe-{name}", name, admins[1]["created_at"]],
                    [f"caio-{name}", other, ours[2][2]]]
    assert "scrypt" not in rdevents("admins", "list", "--json").stdout

    unknown = rdevents("admins", "list", "--account", "no-such-account")
    assert (unknown.returncode, unknown.stderr) == (1, "Error: No account named "
                                                       "'no-such-account'.\n")


def test_delete_removes_the_administrator(server, rdevents, account):
    name, client_id = account
    username = f"gone-{uuid.uuid4().hex[:6]}"
    add_admin(server, name, username)
    deleted = rdevents("admins", "delete", "--username", username)
    assert (deleted.returncode, deleted.stderr) == (0, f"Deleted administrator {username!r}.\n")
    assert listed(rdevents, name) == []
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        assert sign_in(browser, client_id, username, PASSWORD, address=new_address()
                       ).status_code == 401
    again = rdevents("admins", "delete", "--username", username)
    assert (again.returncode, again.stderr) == (1, f"Error: No administrator named "
                                                   f"{username!r}.\n")
