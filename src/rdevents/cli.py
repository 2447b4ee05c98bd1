"""The `rdevents` command."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from .clock import to_stored
from .config import ServeOption, Settings, serve_options
from .limits import PLANS
from .listing import echo_records, echo_table
from .passwords import MIN_LENGTH, hash_password, problem_with
from .store import Account, AccountExists, Store, StoreUnavailable, open_store
from .store.operator import AccountSummary, ApiKeySummary, AppSummary, TokenSummary
from .store.problems import DatabaseProblem, explained
from .store.relay_records import RelayCredentials
from .store.schema import SchemaBehind, current_revision, upgrade
from .tokens import MAX_API_KEYS, hash_secret, issue_api_key, issue_token, shown_part

FC = TypeVar("FC", bound=Callable[..., Any])
BOOTSTRAP_ACCOUNT = "default"  # the account a first start makes, and a bootstrap token's


def click_option(setting: ServeOption) -> Callable[[FC], FC]:
    """The click option of a setting, as config.Settings describes it."""
    option, default = setting.option, setting.default
    kwargs: dict[str, Any] = {"envvar": setting.variable, "help": option.help}
    if option.parse is not None:
        parse = option.parse
        default = setting.default_text

        def convert(_context: click.Context, _parameter: click.Parameter, value: str) -> Any:
            try:
                return parse(value)
            except ValueError as exc:
                raise click.BadParameter(str(exc)) from None

        kwargs["callback"] = convert
    bounded = (option.minimum, option.maximum) != (None, None)
    if option.choices is not None:
        kwargs["type"] = click.Choice(option.choices)
    elif bounded and isinstance(default, int):
        kwargs["type"] = click.IntRange(_whole(option.minimum), _whole(option.maximum))
    elif bounded:
        kwargs["type"] = click.FloatRange(option.minimum, option.maximum)
    return click.option(setting.flag, setting.name, default=default, show_default=default != "",
                        **kwargs)


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


_SETTINGS = serve_options()
database_option = next(click_option(s) for s in _SETTINGS if s.name == "database_url")
account_option = click.option("--account", "account_name", required=True,
                              help="The account's name.")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print a JSON array rather than a table.")


class OperatorError(click.ClickException):
    """What the operator must change before the command can run (a database out of reach, a
    port in use): one line on stderr, exit status 2."""

    exit_code = 2


@contextmanager
def using_database(url: str) -> Iterator[None]:
    """Run a command's work on the database at `url`; a database that cannot be used ends the
    command with an OperatorError."""
    try:
        with explained(url):
            yield
    except DatabaseProblem as exc:
        raise OperatorError(str(exc)) from None


def with_store(action: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body with an open store, turning store errors into CLI errors."""

    @functools.wraps(action)
    def command(database_url: str, **kwargs: Any) -> Any:
        async def run() -> Any:
            store = open_store(database_url)
            await store.open()
            try:
                return await action(store, **kwargs)
            finally:
                await store.close()

        try:
            with using_database(database_url):
                return asyncio.run(run())
        except SchemaBehind as exc:
            raise click.ClickException(str(exc)) from None

    return command


async def _account(store: Store, name: str) -> Account:
    account = await store.get_account(name)
    if account is None:
        raise click.ClickException(f"No account named {name!r}.")
    return account


@click.group()
@click.version_option(package_name="rdevents")
def main() -> None:
    """rdevents: a self-hosted, wire-compatible RD Station Marketing Events API."""


def with_settings(command: FC) -> FC:
    """`serve`'s options: one for each setting, in the order of config.Settings."""
    for setting in reversed(_SETTINGS):
        command = click_option(setting)(command)
    return command


@main.command()
@with_settings
def serve(**values: Any) -> None:
    """Run the HTTP server."""
    from .http.server import run_server

    settings = Settings(**values)
    _check_can_listen(settings.host, settings.port)  # before the first start spends its token
    token = with_store(_first_start)(settings.database_url,
                                     bootstrap_token=settings.bootstrap_token)
    if token is not None:
        _print_welcome(token, settings.host, settings.port)
    run_server(settings)


def _check_can_listen(host: str, port: int) -> None:
    """Bind the address as the server will (uvicorn: SO_REUSEADDR), and let it go again."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OperatorError(
                    f"Port {port} of {host} is in use: stop what listens there, or give "
                    "another port with --port (or RDEVENTS_PORT).") from None
            raise OperatorError(f"Cannot listen on {host} port {port}: {exc.strerror}. Check "
                                "--host and --port (or RDEVENTS_HOST, RDEVENTS_PORT).") from None


async def _first_start(store: Store, bootstrap_token: str) -> str | None:
    """On an empty database: create account `default` and a token for it, to be shown. With a
    bootstrap token, `default` (made if need be) takes that one instead, on every start."""
    if bootstrap_token:
        if not await store.ensure_token(BOOTSTRAP_ACCOUNT, hash_secret(bootstrap_token),
                                        shown_part(bootstrap_token)):
            raise OperatorError("The bootstrap token is a token of another account: give "
                                "another one (--bootstrap-token or RDEVENTS_BOOTSTRAP_TOKEN).")
        click.echo(f"Account {BOOTSTRAP_ACCOUNT!r} takes the bootstrap token.", err=True)
        return None
    if await store.count_accounts():
        return None
    account = await store.create_account(BOOTSTRAP_ACCOUNT)
    return await issue_token(store, account.id)


def _print_welcome(token: str, host: str, port: int) -> None:
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    example = json.dumps({"event_type": "CONVERSION", "event_family": "CDP", "payload": {
        "conversion_identifier": "first-event", "email": "ana@example.com"}})
    click.echo(f"""Created account 'default' with this access token (shown once):

    {token}

Send a first event:

    curl -X POST {url}/platform/events \\
      -H 'Authorization: Bearer {token}' \\
      -H 'Content-Type: application/json' \\
      -d '{example}'

API docs: {url}/docs
""")


@main.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create")
@click.argument("name")
@database_option
@with_store
async def accounts_create(store: Store, name: str) -> None:
    """Create an account."""
    try:
        await store.create_account(name)
    except AccountExists:
        raise click.ClickException(f"Account {name!r} already exists.") from None
    click.echo(f"Created account {name!r}.", err=True)


@accounts.command("list")
@json_option
@database_option
@with_store
async def accounts_list(store: Store, as_json: bool) -> None:
    """List the accounts: name, id, creation time."""
    echo_records(await store.list_accounts(), AccountSummary, as_json)


@accounts.command("limits")
@click.argument("name")
@click.option("--plan", type=click.Choice(sorted(PLANS)), help="RD's plan: its per-minute limit.")
@click.option("--events-per-minute", type=click.IntRange(min=0),
              help="The account's own limit a minute (0: the plan's).")
@click.option("--events-per-contact-day", type=click.IntRange(min=0),
              help="The account's own limit a day for each contact (0: RD's 120).")
@database_option
@with_store
async def accounts_limits(store: Store, name: str, plan: str | None,
                          events_per_minute: int | None,
                          events_per_contact_day: int | None) -> None:
    """Set an account's rate-limit plan or limits of its own (with `serve --rate-limits rd`)."""
    account = await _account(store, name)
    await store.set_account_limits(account.id, plan, events_per_minute, events_per_contact_day)
    click.echo(f"Limits of {name!r} updated.", err=True)


@main.group()
def tokens() -> None:
    """Manage access tokens."""


@tokens.command("create")
@account_option
@click.option("--expires-in", type=click.IntRange(min=1), default=None,
              help="Seconds until the token expires (default: never).")
@database_option
@with_store
async def tokens_create(store: Store, account_name: str, expires_in: int | None) -> None:
    """Create an access token and print it alone on stdout."""
    account = await _account(store, account_name)
    click.echo(await issue_token(store, account.id, expires_in))


@tokens.command("list")
@account_option
@json_option
@database_option
@with_store
async def tokens_list(store: Store, account_name: str, as_json: bool) -> None:
    """List an account's access tokens, OAuth ones included: id, first characters, creation,
    expiry, last use (to the minute), revocation. The tokens themselves are never shown."""
    account = await _account(store, account_name)
    echo_records(await store.list_tokens(account.id), TokenSummary, as_json)


@tokens.command("revoke")
@click.argument("token", required=False)
@click.option("--id", "token_id", type=click.IntRange(min=1),
              help="The token's id, as `rdevents tokens list` shows it.")
@database_option
@with_store
async def tokens_revoke(store: Store, token: str | None, token_id: int | None) -> None:
    """Revoke an access token: TOKEN itself, or the one of --id."""
    if (token is None) == (token_id is None):
        raise click.UsageError("Give the token, or its --id (not both).")
    if token is not None and not await store.revoke_token(hash_secret(token)):
        raise click.ClickException("No such live token.")
    if token_id is not None and not await store.revoke_token_id(token_id):
        raise click.ClickException(f"No live token with id {token_id}.")
    click.echo("Token revoked.", err=True)


@main.group()
def apikeys() -> None:
    """Manage API keys (for POST /platform/conversions?api_key=...)."""


@apikeys.command("create")
@account_option
@database_option
@with_store
async def apikeys_create(store: Store, account_name: str) -> None:
    """Create an active API key and print it alone on stdout (at most 5 an account)."""
    account = await _account(store, account_name)
    key = await issue_api_key(store, account.id)
    if key is None:
        raise click.ClickException(
            f"Account {account_name!r} has {MAX_API_KEYS} API keys already, the most an account "
            "can have: keys are never deleted, but `rdevents apikeys activate` turns one back "
            "on.")
    click.echo(key)


@apikeys.command("list")
@account_option
@json_option
@database_option
@with_store
async def apikeys_list(store: Store, account_name: str, as_json: bool) -> None:
    """List an account's API keys: id, first characters, active or not, creation. The keys
    themselves are never shown."""
    account = await _account(store, account_name)
    echo_records(await store.list_api_keys(account.id), ApiKeySummary, as_json)


def _set_api_key(active: bool) -> Callable[..., Any]:
    @database_option
    @with_store
    async def command(store: Store, key: str) -> None:
        if not await store.set_api_key_active(hash_secret(key), active):
            raise click.ClickException("No such API key.")
        click.echo(f"API key {'activated' if active else 'deactivated'}.", err=True)

    return click.argument("key")(command)


apikeys.command("activate", help="Activate an API key.")(_set_api_key(True))
apikeys.command("deactivate", help="Deactivate an API key (it stops working within "
                                   "--token-cache-seconds of the servers).")(_set_api_key(False))


@main.group()
def apps() -> None:
    """Manage OAuth apps (clients of /auth/dialog and /auth/token)."""


@apps.command("create")
@account_option
@click.option("--redirect-uri", required=True,
              help="Where /auth/dialog sends the browser back, compared as an exact string.")
@database_option
@with_store
async def apps_create(store: Store, account_name: str, redirect_uri: str) -> None:
    """Create an app; print {"client_id", "client_secret"} as JSON (the secret is shown once)."""
    from .oauth import create_app

    account = await _account(store, account_name)
    client_id, client_secret = await create_app(store, account.id, redirect_uri)
    click.echo(json.dumps({"client_id": client_id, "client_secret": client_secret}))


@apps.command("list")
@click.option("--account", "account_name", help="Only this account's apps.")
@json_option
@database_option
@with_store
async def apps_list(store: Store, account_name: str | None, as_json: bool) -> None:
    """List OAuth apps: client_id, account, redirect_uri, creation. Their secrets are never
    shown."""
    account_id = None if account_name is None else (await _account(store, account_name)).id
    echo_records(await store.list_apps(account_id), AppSummary, as_json)


@apps.command("authorize")
@click.option("--client-id", required=True)
@database_option
@with_store
async def apps_authorize(store: Store, client_id: str) -> None:
    """Print a one-time authorization code for the app, as /auth/dialog would give after
    consent (for setups without a browser). It expires after first use or 60 minutes."""
    from .oauth import issue_code

    app = await store.find_app(client_id)
    if app is None:
        raise click.ClickException(f"No app with client_id {client_id!r}.")
    click.echo(await issue_code(store, app))


@main.group()
def admins() -> None:
    """Manage account administrators (who consent on /auth/dialog and sign in to /ui/)."""


class NewPassword(click.ParamType):  # type: ignore[type-arg]  # generic in recent click only
    """A password an administrator may be given (see passwords.MIN_LENGTH)."""

    name = "password"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        password = str(value)
        problem = problem_with(password)
        if problem is not None:
            self.fail(problem, param, ctx)
        return password


password_option = click.option(
    "--password", envvar="RDEVENTS_ADMIN_PASSWORD", prompt=True, hide_input=True,
    confirmation_prompt=True, type=NewPassword(),
    help=f"At least {MIN_LENGTH} characters; asked for when not given (or "
         "RDEVENTS_ADMIN_PASSWORD).")


@admins.command("create")
@click.option("--account", "account_name", required=True)
@click.option("--username", required=True)
@password_option
@database_option
@with_store
async def admins_create(store: Store, account_name: str, username: str, password: str) -> None:
    """Create an administrator of an account."""
    account = await store.get_account(account_name)
    if account is None:
        raise click.ClickException(f"No account named {account_name!r}.")
    try:
        await store.create_admin(account.id, username, hash_password(password))
    except AccountExists:
        raise click.ClickException(f"The username {username!r} is taken.") from None
    click.echo(f"Created administrator {username!r} of {account_name!r}.", err=True)


@admins.command("set-password")
@click.option("--username", required=True)
@password_option
@database_option
@with_store
async def admins_set_password(store: Store, username: str, password: str) -> None:
    """Give an administrator a new password (this also lifts a sign-in lockout of the name and
    signs them out of the dashboard)."""
    from .sign_in import SignIn

    if not await store.set_admin_password(username, hash_password(password)):
        raise click.ClickException(f"No administrator named {username!r}.")
    await SignIn(store).forget(username)
    click.echo(f"Password of {username!r} changed.", err=True)


@admins.command("list")
@click.option("--account", "account_name", help="Only this account's administrators.")
@click.option("--json", "as_json", is_flag=True,
              help='A JSON array of {"username", "account", "created_at"}.')
@database_option
@with_store
async def admins_list(store: Store, account_name: str | None, as_json: bool) -> None:
    """List administrators, by account and username."""
    account_id = None
    if account_name is not None:
        account = await store.get_account(account_name)
        if account is None:
            raise click.ClickException(f"No account named {account_name!r}.")
        account_id = account.id
    found = await store.list_admins(account_id)
    if as_json:
        click.echo(json.dumps([{"username": a.username, "account": a.account,
                                "created_at": a.created_at} for a in found]))
        return
    rows = [("USERNAME", "ACCOUNT", "CREATED"),
            *((a.username, a.account, a.created_at) for a in found)]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for username, account_named, created in rows:
        click.echo(f"{username:<{widths[0]}}  {account_named:<{widths[1]}}  {created}")


@admins.command("delete")
@click.option("--username", required=True)
@database_option
@with_store
async def admins_delete(store: Store, username: str) -> None:
    """Delete an administrator (tokens already given to apps stay valid; their dashboard
    sessions end)."""
    if not await store.delete_admin(username):
        raise click.ClickException(f"No administrator named {username!r}.")
    click.echo(f"Deleted administrator {username!r}.", err=True)


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("copy")
@click.option("--from", "source", required=True, help="The database to copy, e.g. sqlite:///...")
@click.option("--to", "target", required=True,
              help="An empty database to copy into, e.g. postgresql://...")
def db_copy(source: str, target: str) -> None:
    """Copy every account, token, contact, event and funnel change to an empty database,
    keeping their ids and uuids (stop the servers on the source first)."""
    from .bulk.progress import progress_bars
    from .store.copy import TargetNotEmpty, copy_database

    with progress_bars() as bars:
        def copying(table: str, rows: int) -> Callable[[int], None]:
            if bars.disable:
                click.echo(f"{table}: {rows} rows", err=True)
            task = bars.add_task(f"{table}: {rows:,} rows", total=rows)
            return lambda copied: bars.update(task, advance=copied)

        try:
            copy_database(source, target, copying)
        except (TargetNotEmpty, SchemaBehind) as exc:
            raise click.ClickException(str(exc)) from None
        except DatabaseProblem as exc:
            raise OperatorError(str(exc)) from None


@db.command("upgrade")
@database_option
def db_upgrade(database_url: str) -> None:
    """Apply the migrations the database lacks."""
    with using_database(database_url):
        if database_url.startswith("sqlite:"):
            from .store.sqlite import make_directory

            make_directory(database_url)
        upgrade(database_url)
        revision = current_revision(database_url)
    click.echo(f"Database schema at revision {revision}.", err=True)


@main.group()
def relays() -> None:
    """Manage relays: an account's events forwarded to an upstream RD Station (or another
    rdevents) within its limits, in order, with retries and dead letters."""


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise click.BadParameter(f"{value!r}: give an http(s) URL without a query, e.g. "
                                 "https://api.rd.services")
    return value.rstrip("/")


def _relay_credentials(current: RelayCredentials | None, token: str | None,
                       client_id: str | None, client_secret: str | None,
                       refresh_token: str | None, access_token: str | None) -> RelayCredentials:
    """The credentials a relay has after the options given (ValueError: they do not make a
    whole). A static token replaces OAuth ones, and the other way round; a new client or
    refresh token drops the access token obtained with the old one."""
    oauth = (client_id, client_secret, refresh_token, access_token)
    if token is not None:
        if any(value is not None for value in oauth):
            raise ValueError("Give --token, or the OAuth credentials (--client-id, "
                             "--client-secret, --refresh-token), not both.")
        return RelayCredentials(token=token)
    if all(value is None for value in oauth):
        if current is None:
            raise ValueError("Give the upstream's credentials: --token, or --client-id, "
                             "--client-secret and --refresh-token.")
        return current
    base = current if current is not None and current.oauth else RelayCredentials()
    renewed = any(value is not None for value in (client_id, client_secret, refresh_token))
    made = RelayCredentials(
        client_id=client_id or base.client_id, client_secret=client_secret or base.client_secret,
        refresh_token=refresh_token or base.refresh_token,
        access_token=access_token if access_token is not None else
        (None if renewed else base.access_token),
        access_expires_at=None if renewed or access_token is not None else
        base.access_expires_at)
    if not (made.client_id and made.client_secret and made.refresh_token):
        raise ValueError("OAuth credentials need --client-id, --client-secret and "
                         "--refresh-token (the upstream's /auth/token refreshes the access "
                         "token with them).")
    return made


relay_argument = click.argument("uuid", callback=lambda _c, _p, value: value.strip().lower())


@relays.command("create")
@account_option
@click.option("--url", required=True, callback=lambda _c, _p, value: _http_url(value),
              help="The upstream: https://api.rd.services, or another rdevents.")
@click.option("--token", help="A static access token of the upstream.")
@click.option("--client-id", help="The OAuth app's client_id at the upstream.")
@click.option("--client-secret", help="The OAuth app's client_secret.")
@click.option("--refresh-token", help="A refresh token of the app (RD's never expires until "
                                      "the app's authorization is revoked).")
@click.option("--access-token", help="A current access token, if you have one (else one is "
                                     "obtained with the refresh token).")
@click.option("--events-per-minute", type=click.IntRange(min=0), default=120,
              show_default=True, help="The budget: events sent a minute at most, across every "
                                      "process (RD: 120, or 500 on Advanced; 0: no budget).")
@click.option("--from-start", is_flag=True,
              help="Also forward the events the account accepted before the relay existed.")
@database_option
@with_store
async def relays_create(store: Store, account_name: str, url: str, token: str | None,
                        client_id: str | None, client_secret: str | None,
                        refresh_token: str | None, access_token: str | None,
                        events_per_minute: int, from_start: bool) -> None:
    """Create a relay of an account's events, and print its uuid alone. Every event the account
    accepts from then on is forwarded (queued in the same transaction)."""
    account = await _account(store, account_name)
    try:
        credentials = _relay_credentials(None, token, client_id, client_secret, refresh_token,
                                         access_token)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(await store.create_relay(account.id, url, credentials, events_per_minute,
                                        from_start))


@relays.command("list")
@click.option("--account", "account_name", help="Only this account's relays.")
@json_option
@database_option
@with_store
async def relays_list(store: Store, account_name: str | None, as_json: bool) -> None:
    """List relays: state, backlog, age of the oldest waiting event (lag), events sent, dead
    letters, last error. Credentials are never shown."""
    account_id = None if account_name is None else (await _account(store, account_name)).id
    found = await store.list_relays(account_id)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(relay) for relay in found], indent=2))
        return
    rows = [("UUID", "ACCOUNT", "STATE", "BACKLOG", "LAG", "SENT", "DEAD", "LAST ERROR"),
            *((r.uuid, r.account, r.state, str(r.backlog),
               "-" if r.lag_seconds is None else f"{r.lag_seconds:.0f} s", str(r.sent),
               str(r.dead), _short(r.paused_reason or r.last_error)) for r in found)]
    echo_table(rows)


def _short(text: str | None, length: int = 70) -> str:
    if text is None:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= length else text[:length - 1] + "…"


@relays.command("update")
@relay_argument
@click.option("--token", help="A new static token (replaces OAuth credentials).")
@click.option("--refresh-token", help="A new OAuth refresh token.")
@click.option("--events-per-minute", type=click.IntRange(min=0),
              help="A new budget (0: none).")
@click.option("--url", callback=lambda _c, _p, value: None if value is None else _http_url(value),
              help="A new upstream URL.")
@click.option("--client-id", help="A new OAuth client_id.")
@click.option("--client-secret", help="A new OAuth client_secret.")
@click.option("--access-token", help="A current OAuth access token.")
@database_option
@with_store
async def relays_update(store: Store, uuid: str, token: str | None, refresh_token: str | None,
                        events_per_minute: int | None, url: str | None, client_id: str | None,
                        client_secret: str | None, access_token: str | None) -> None:
    """Change a relay's credentials, budget or URL. A paused relay stays paused until
    `rdevents relays resume`."""

    def change(current: RelayCredentials) -> RelayCredentials:
        return _relay_credentials(current, token, client_id, client_secret, refresh_token,
                                  access_token)

    try:
        updated = await store.update_relay(uuid, change, url, events_per_minute)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if updated is None:
        raise click.ClickException(f"No relay {uuid}.")
    [relay] = await store.list_relays(uuid=uuid)
    click.echo(f"Relay {uuid} updated." + (f" It is paused: `rdevents relays resume {uuid}` "
                                           "sends again." if relay.state == "paused" else ""),
               err=True)


def _set_relay_paused(paused: bool) -> Callable[..., Any]:
    @relay_argument
    @database_option
    @with_store
    async def command(store: Store, uuid: str) -> None:
        if not await store.set_relay_paused(uuid, paused, "Paused by the operator."
                                            if paused else None):
            raise click.ClickException(f"No relay {uuid}.")
        click.echo(f"Relay {uuid} {'paused' if paused else 'resumed'}.", err=True)

    return command


relays.command("pause", help="Pause a relay: events keep being queued, none is sent until it "
                             "is resumed.")(_set_relay_paused(True))
relays.command("resume", help="Resume a paused relay (also one an upstream's account limit "
                              "holds); running servers send again within seconds.")(
    _set_relay_paused(False))


@relays.command("delete")
@relay_argument
@database_option
@with_store
async def relays_delete(store: Store, uuid: str) -> None:
    """Delete a relay, with the events it has not sent and its dead letters."""
    if not await store.delete_relay(uuid):
        raise click.ClickException(f"No relay {uuid}.")
    click.echo(f"Relay {uuid} deleted.", err=True)


@relays.command("dead-letters")
@relay_argument
@json_option
@database_option
@with_store
async def relays_dead_letters(store: Store, uuid: str, as_json: bool) -> None:
    """List a relay's dead letters, in the order their events were accepted: the event's uuid,
    the upstream's last HTTP status, its error, when it failed."""
    if await store.relay_account(uuid) is None:
        raise click.ClickException(f"No relay {uuid}.")
    letters = await store.dead_letters(uuid)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(letter) for letter in letters], indent=2))
        return
    rows = [("EVENT UUID", "STATUS", "FAILED AT", "ERROR"),
            *((d.event_uuid, "-" if d.status is None else str(d.status), d.failed_at or "-",
               _short(d.error)) for d in letters)]
    echo_table(rows)


@relays.command("replay")
@relay_argument
@click.argument("event_uuids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every dead letter of the relay.")
@database_option
@with_store
async def relays_replay(store: Store, uuid: str, event_uuids: tuple[str, ...],
                        every: bool) -> None:
    """Queue dead letters again (--all, or these events'), each in its place in the relay's
    order, with their retries afresh; print how many."""
    if every == bool(event_uuids):
        raise click.UsageError("Give --all, or the uuids of the events to replay (not both).")
    if await store.relay_account(uuid) is None:
        raise click.ClickException(f"No relay {uuid}.")
    click.echo(await store.replay_dead_letters(
        uuid, None if every else [u.strip().lower() for u in event_uuids]))


@main.group()
def export() -> None:
    """Export an account's events or contacts, as JSONL or CSV, to stdout or a file."""


def _stored_time(_context: click.Context, _parameter: click.Parameter,
                 value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return to_stored(datetime.fromisoformat(value))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give an ISO 8601 date or time, e.g. 2026-12-01 or "
            "2026-12-01T09:30:00Z (UTC unless it says otherwise).") from None


@contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    """The file at `path`, or stdout; an error writing it ends the command with its reason."""
    if path is None:
        stdout = sys.stdout.buffer
        try:
            yield stdout
            stdout.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
            raise click.exceptions.Exit(1) from None
        return
    try:
        with open(path, "wb") as out:
            yield out
    except OSError as exc:
        raise click.FileError(path, exc.strerror) from None


def _export_command(kind: str) -> Callable[..., Any]:
    from .bulk import FORMATS

    @account_option
    @click.option("--format", "file_format", type=click.Choice(FORMATS), default="jsonl",
                  show_default=True, help="One JSON document a line, or CSV with a header.")
    @click.option("--output", type=click.Path(dir_okay=False),
                  help="The file to write (default: stdout).")
    @click.option("--since", callback=_stored_time,
                  help="Only those of this time or later (ISO 8601; events: received, contacts: "
                       "last changed).")
    @click.option("--until", callback=_stored_time, help="Only those before this time.")
    @database_option
    @with_store
    async def command(store: Store, account_name: str, file_format: str, output: str | None,
                      since: str | None, until: str | None) -> None:
        from .bulk.exports import export_contacts, export_events
        from .bulk.progress import progress_bars

        account = await _account(store, account_name)
        events = kind == "events"
        with _output(output) as out, progress_bars() as bars:
            count = store.count_events_between if events else store.count_contacts_between
            task = bars.add_task(kind, total=None if bars.disable else
                                 await count(account.id, since, until))
            written = await (export_events if events else export_contacts)(
                store, account.id, since, until, file_format, out,
                lambda rows: bars.update(task, advance=rows))
        click.echo(f"Exported {written} {kind}.", err=True)

    return command


export.command("events", help="Export an account's events, in the order they were received: "
                              "each as GET /platform/events/{event_uuid} shows it.")(
    _export_command("events"))
export.command("contacts", help="Export an account's contacts, oldest first: each as "
                                "GET /platform/contacts/{uuid} shows it, with its funnel.")(
    _export_command("contacts"))


@main.group("import")
def import_() -> None:
    """Import events into an account through the API's validation and write path."""


@import_.command("events")
@account_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate the lines, and store nothing.")
@database_option
@with_store
async def import_events(store: Store, account_name: str, file: Path, dry_run: bool) -> None:
    """Import FILE's events: JSONL, one RD event body a line (as POST /platform/events takes
    it). Each line is validated and stored as if it had been sent; rejected lines go to
    FILE.rejected.jsonl with their line number and errors. Running it again imports nothing
    twice. Prints `imported N, rejected M`."""
    from .bulk.imports import Importer, RejectedLines, Summary, worth_a_process
    from .bulk.progress import progress_bars
    from .collector import settle_garbage_collector

    account = await _account(store, account_name)
    settle_garbage_collector()
    rejected = RejectedLines(file.with_name(file.name + ".rejected.jsonl"))
    with progress_bars() as bars, file.open("rb") as lines:
        task = bars.add_task(file.name, total=file.stat().st_size)

        def progress(size: int, summary: Summary) -> None:
            bars.update(task, advance=size, description=f"{file.name}: {summary.imported:,} "
                                                        f"imported, {summary.rejected:,} rejected")

        importer = Importer(store, account.id, dry_run=dry_run, reject=rejected,
                            progress=progress, process=worth_a_process(file.stat().st_size))
        try:
            summary = await importer.run(lines)
        except StoreUnavailable as exc:
            raise OperatorError(
                f"The database stopped taking writes ({exc}) after {importer.summary.imported} "
                "imported lines. Run the command again: it imports the others, and nothing "
                "twice.") from None
        except OSError as exc:  # writing the rejected lines
            raise click.FileError(exc.filename or str(rejected.path), exc.strerror) from None
        finally:
            rejected.close()
    if summary.skipped:
        click.echo(f"{summary.skipped} lines were imported before: skipped.", err=True)
    if summary.rejected:
        click.echo(f"Rejected lines, with their errors: {rejected.path}", err=True)
    if dry_run:
        click.echo(f"would import {summary.valid}, rejected {summary.rejected}")
    else:
        click.echo(f"imported {summary.imported}, rejected {summary.rejected}")
