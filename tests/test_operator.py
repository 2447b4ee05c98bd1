"""What an operator sees and revokes: the CLI's lists of accounts, tokens, API keys and OAuth apps
(run through click's runner on a real database of each backend), and each token's last use as
the server records it (over real HTTP)."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from conftest import let_token_cache_lapse
from rdevents.cli import main
from rdevents.clock import utc_now
from rdevents.store.schema import sqlalchemy_url, upgrade
from rdevents.tokens import hash_secret
from waiting import wait_until

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
TOKEN = re.compile(r"rdv_[A-Za-z0-9_-]{43}")
API_KEY = re.compile(r"rdk_[A-Za-z0-9_-]{43}")


@pytest.fixture
def database(empty_database: tuple[str, str]) -> str:
    """The URL of an empty database of each backend."""
    return empty_database[1]


def cli(database: str, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--database", database], catch_exceptions=False)


def ok(database: str, *args: str) -> str:
    result = cli(database, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def listed(database: str, *args: str) -> list[dict]:
    return json.loads(ok(database, *args, "--json"))


def table(database: str, *args: str) -> list[list[str]]:
    """The rows of a printed table, header first, split into cells, each time shown as T."""
    return [["T" if TIME.fullmatch(cell) else cell for cell in re.split(r"\s{2,}", line)]
            for line in ok(database, *args).splitlines()]


def assert_times(rows: list[dict], *names: str) -> None:
    for row in rows:
        for name in names:
            assert TIME.fullmatch(row.pop(name)), (name, row)


# --- accounts -------------------------------------------------------------------------------------


def test_accounts_list(database):
    assert table(database, "accounts", "list") == [["NAME", "ID", "CREATED AT"]]
    assert listed(database, "accounts", "list") == []
    ok(database, "accounts", "create", "alpha")
    ok(database, "accounts", "create", "beta")
    rows = listed(database, "accounts", "list")
    assert_times(rows, "created_at")
    assert rows == [{"name": "alpha", "id": 1}, {"name": "beta", "id": 2}]
    assert table(database, "accounts", "list") == [["NAME", "ID", "CREATED AT"],
                                                   ["alpha", "1", "T"], ["beta", "2", "T"]]


# --- tokens ---------------------------------------------------------------------------------------


def test_tokens_list_shows_each_token_but_never_its_secret(database):
    ok(database, "accounts", "create", "team")
    ok(database, "accounts", "create", "other")
    lasting = ok(database, "tokens", "create", "--account", "team").strip()
    expiring = ok(database, "tokens", "create", "--account", "team", "--expires-in",
                  "3600").strip()
    ok(database, "tokens", "create", "--account", "other")
    assert TOKEN.fullmatch(lasting) and TOKEN.fullmatch(expiring)
    ok(database, "tokens", "revoke", "--id", "1")

    rows = listed(database, "tokens", "list", "--account", "team")
    assert_times(rows, "created_at")
    assert_times(rows[:1], "revoked_at")
    assert_times(rows[1:], "expires_at")
    assert rows == [
        {"id": 1, "prefix": lasting[:12], "expires_at": None, "last_used_at": None},
        {"id": 2, "prefix": expiring[:12], "last_used_at": None, "revoked_at": None},
    ]
    assert table(database, "tokens", "list", "--account", "team") == [
        ["ID", "PREFIX", "CREATED AT", "EXPIRES AT", "LAST USED AT", "REVOKED AT"],
        ["1", lasting[:12], "T", "-", "-", "T"],
        ["2", expiring[:12], "T", "T", "-", "-"]]
    everything = cli(database, "tokens", "list", "--account", "team").output + \
        cli(database, "tokens", "list", "--account", "team", "--json").output
    for secret in (lasting, expiring, hash_secret(lasting), hash_secret(expiring)):
        assert secret not in everything


def test_tokens_revoke_by_id(database):
    ok(database, "accounts", "create", "team")
    token = ok(database, "tokens", "create", "--account", "team").strip()
    ok(database, "tokens", "create", "--account", "team")
    revoked = cli(database, "tokens", "revoke", "--id", "2")
    assert (revoked.exit_code, revoked.stderr) == (0, "Token revoked.\n")
    again = cli(database, "tokens", "revoke", "--id", "2")
    assert (again.exit_code, again.stderr) == (1, "Error: No live token with id 2.\n")
    unknown = cli(database, "tokens", "revoke", "--id", "99")
    assert (unknown.exit_code, unknown.stderr) == (1, "Error: No live token with id 99.\n")
    for args in ((), (token, "--id", "1")):
        both = cli(database, "tokens", "revoke", *args)
        assert both.exit_code == 2
        assert both.stderr.endswith("Error: Give the token, or its --id (not both).\n")
    assert [row["revoked_at"] is None for row in listed(
        database, "tokens", "list", "--account", "team")] == [True, False]
    assert cli(database, "tokens", "revoke", token).exit_code == 0  # by the token itself


def test_tokens_made_before_prefixes_were_kept_show_none(database):
    """A token made under the schema before this one's has no prefix, and lists as such."""
    upgrade(database, "0007")
    engine = create_engine(sqlalchemy_url(database))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (name, created_at) VALUES ('old', :now)"),
                     {"now": utc_now()})
        conn.execute(text("INSERT INTO tokens (account_id, token_hash, created_at) "
                          "VALUES (1, :hash, :now)"),
                     {"hash": hash_secret("rdv_old"), "now": utc_now()})
    engine.dispose()
    ok(database, "db", "upgrade")
    [row] = listed(database, "tokens", "list", "--account", "old")
    assert (row["id"], row["prefix"], row["last_used_at"]) == (1, None, None)
    assert table(database, "tokens", "list", "--account", "old")[1][1] == "-"


# --- API keys and apps ----------------------------------------------------------------------------


def test_apikeys_list(database):
    ok(database, "accounts", "create", "team")
    keys = [ok(database, "apikeys", "create", "--account", "team").strip() for _ in range(2)]
    assert all(API_KEY.fullmatch(key) for key in keys)
    ok(database, "apikeys", "deactivate", keys[0])
    rows = listed(database, "apikeys", "list", "--account", "team")
    assert_times(rows, "created_at")
    assert rows == [{"id": 1, "prefix": keys[0][:12], "active": False},
                    {"id": 2, "prefix": keys[1][:12], "active": True}]
    assert table(database, "apikeys", "list", "--account", "team") == [
        ["ID", "PREFIX", "ACTIVE", "CREATED AT"], ["1", keys[0][:12], "no", "T"],
        ["2", keys[1][:12], "yes", "T"]]
    output = cli(database, "apikeys", "list", "--account", "team", "--json").output
    assert not any(key in output or hash_secret(key) in output for key in keys)


def test_apps_list(database):
    ok(database, "accounts", "create", "team")
    ok(database, "accounts", "create", "other")
    team = json.loads(ok(database, "apps", "create", "--account", "team", "--redirect-uri",
                         "https://team.example.com/back"))
    other = json.loads(ok(database, "apps", "create", "--account", "other", "--redirect-uri",
                          "https://other.example.com/back"))
    rows = listed(database, "apps", "list")
    assert_times(rows, "created_at")
    assert rows == [
        {"client_id": team["client_id"], "account": "team",
         "redirect_uri": "https://team.example.com/back"},
        {"client_id": other["client_id"], "account": "other",
         "redirect_uri": "https://other.example.com/back"}]
    [only] = listed(database, "apps", "list", "--account", "other")
    assert (only["client_id"], only["account"]) == (other["client_id"], "other")
    assert table(database, "apps", "list") == [
        ["CLIENT ID", "ACCOUNT", "REDIRECT URI", "CREATED AT"],
        [team["client_id"], "team", "https://team.example.com/back", "T"],
        [other["client_id"], "other", "https://other.example.com/back", "T"]]
    output = ok(database, "apps", "list") + ok(database, "apps", "list", "--json")
    assert team["client_secret"] not in output and other["client_secret"] not in output


@pytest.mark.parametrize("command", [("tokens", "list"), ("apikeys", "list"), ("apps", "list")])
def test_lists_of_an_unknown_account_fail(database, command):
    result = cli(database, *command, "--account", "nobody")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error: No account named 'nobody'.\n"


# --- last use of a token --------------------------------------------------------------------------


def last_used(server, account_id: int) -> str | None:
    [token] = server.call(server.store.list_tokens(account_id))
    return token.last_used_at


def test_a_token_use_is_recorded_at_most_once_a_minute(server):
    account_id, token = server.new_account()
    assert last_used(server, account_id) is None
    before = utc_now()
    with server.client(token) as api:
        assert api.get("/platform/contacts").status_code == 200
        first = wait_until(lambda: last_used(server, account_id))
        assert before <= first <= utc_now()
        for _ in range(3):  # read again from the database each time, a use recorded already
            let_token_cache_lapse(server)
            assert api.get("/platform/contacts").status_code == 200
        assert last_used(server, account_id) == first

        long_ago = utc_now(-61)
        server.call(server.store.change("UPDATE tokens SET last_used_at = ? WHERE token_hash = ?",
                                        (long_ago, hash_secret(token))))
        let_token_cache_lapse(server)
        assert api.get("/platform/contacts").status_code == 200
        wait_until(lambda: last_used(server, account_id) != long_ago)
        assert last_used(server, account_id) > first


def test_a_refused_token_records_no_use(server):
    account_id, token = server.new_account(expires_in=-1)  # expired a second ago
    with server.client(token) as api:
        assert api.get("/platform/contacts").status_code == 401
    time.sleep(0.2)  # a use is recorded in the background: give a wrong one the time to show
    assert last_used(server, account_id) is None
