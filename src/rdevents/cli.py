"""The `rdevents` command."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import json
import socket
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator

import click

from .config import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_DATABASE_URL,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CUSTOM_FIELDS,
    DEFAULT_MAX_TAGS_PER_CONTACT,
    DEFAULT_MAX_CONNECTIONS,
    Settings,
)
from .limits import PLANS
from .listing import echo_records
from .outbound.targets import parse_networks
from .passwords import MIN_LENGTH, hash_password, problem_with
from .store import Account, AccountExists, Store, open_store
from .store.operator import AccountSummary, ApiKeySummary, AppSummary, TokenSummary
from .store.problems import DatabaseProblem, explained
from .store.relay_records import RelayCredentials
from .store.schema import SchemaBehind, current_revision, upgrade
from .tokens import MAX_API_KEYS, hash_secret, issue_api_key, issue_token

_DEFAULTS = Settings()

database_option = click.option(
    "--database", "database_url", envvar="RDEVENTS_DATABASE_URL", default=DEFAULT_DATABASE_URL,
    show_default=True, help="sqlite:///relative/path.db, sqlite:////absolute/path.db or "
                            "postgresql://USER@HOST:PORT/DATABASE")
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


@main.command()
@click.option("--host", envvar="RDEVENTS_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="RDEVENTS_PORT", default=8080, show_default=True,
              type=click.IntRange(1, 65535))
@database_option
@click.option("--max-body-bytes", envvar="RDEVENTS_MAX_BODY_BYTES",
              default=DEFAULT_MAX_BODY_BYTES, show_default=True, type=click.IntRange(min=1))
@click.option("--max-batch-events", envvar="RDEVENTS_MAX_BATCH_EVENTS",
              default=DEFAULT_MAX_BATCH_EVENTS, show_default=True, type=click.IntRange(min=1))
@click.option("--max-custom-fields", envvar="RDEVENTS_MAX_CUSTOM_FIELDS",
              default=DEFAULT_MAX_CUSTOM_FIELDS, show_default=True, type=click.IntRange(min=0),
              help="Custom fields an account may define.")
@click.option("--max-tags-per-contact", envvar="RDEVENTS_MAX_TAGS_PER_CONTACT",
              default=DEFAULT_MAX_TAGS_PER_CONTACT, show_default=True,
              type=click.IntRange(min=0), help="Tags a contact may have.")
@click.option("--max-pending-writes", envvar="RDEVENTS_MAX_PENDING_WRITES", default=10_000,
              show_default=True, type=click.IntRange(min=1),
              help="Requests that may wait for the writer; past it the server answers 503.")
@click.option("--token-cache-seconds", envvar="RDEVENTS_TOKEN_CACHE_SECONDS", default=1.0,
              show_default=True, type=click.FloatRange(min=0),
              help="How long a live token is trusted without a database read (a revoked token "
                   "works at most this long).")
@click.option("--sign-in-failures-per-username", envvar="RDEVENTS_SIGN_IN_FAILURES_PER_USERNAME",
              default=5, show_default=True, type=click.IntRange(min=1),
              help="Failed sign-ins of an administrator allowed within the window; past them, "
                   "refused until the window ends.")
@click.option("--sign-in-failures-per-address", envvar="RDEVENTS_SIGN_IN_FAILURES_PER_ADDRESS",
              default=20, show_default=True, type=click.IntRange(min=1),
              help="Failed sign-ins allowed from one client address (an IPv6 /64) within the "
                   "window.")
@click.option("--sign-in-window-seconds", envvar="RDEVENTS_SIGN_IN_WINDOW_SECONDS",
              default=900.0, show_default=True, type=click.FloatRange(min=1),
              help="The window of the sign-in limits, from the first failure counted.")
@click.option("--ui-session-seconds", envvar="RDEVENTS_UI_SESSION_SECONDS",
              default=_DEFAULTS.ui_session_seconds, show_default=True,
              type=click.FloatRange(min=60),
              help="How long a sign-in to the dashboard (/ui/) lasts.")
@click.option("--rate-limits", envvar="RDEVENTS_RATE_LIMITS", default="off", show_default=True,
              type=click.Choice(["off", "rd"]),
              help="rd: RD Station's limits (120 events/min an account, 500 on the advanced "
                   "plan; 120 events/day a contact), per account overridable.")
@click.option("--webhook-timeout", envvar="RDEVENTS_WEBHOOK_TIMEOUT", default=5.0,
              show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a webhook receiver has to answer an attempt.")
@click.option("--webhook-retry-delays", envvar="RDEVENTS_WEBHOOK_RETRY_DELAYS",
              default="10,60,300", show_default=True, callback=lambda _c, _p, value: _delays(value),
              help="Seconds to wait before each retry of a failed webhook delivery, comma-"
                   "separated; after the last, the delivery is marked failed.")
@click.option("--webhook-poll-seconds", envvar="RDEVENTS_WEBHOOK_POLL_SECONDS", default=1.0,
              show_default=True, type=click.FloatRange(min=0.01),
              help="How often a process looks for webhook deliveries that are due.")
@click.option("--webhook-retention-days", envvar="RDEVENTS_WEBHOOK_RETENTION_DAYS",
              default=14.0, show_default=True, type=click.FloatRange(min=0),
              help="Days a delivered, failed or erased webhook delivery is kept.")
@click.option("--head-timeout", envvar="RDEVENTS_HEAD_TIMEOUT", default=DEFAULT_HEAD_TIMEOUT,
              show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a request's line and headers, from the moment "
                   "it connects or receives the previous response; then it is disconnected.")
@click.option("--body-timeout", envvar="RDEVENTS_BODY_TIMEOUT", default=DEFAULT_BODY_TIMEOUT,
              show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a request's body once its headers arrived.")
@click.option("--keep-alive-timeout", envvar="RDEVENTS_KEEP_ALIVE_TIMEOUT",
              default=DEFAULT_KEEP_ALIVE_TIMEOUT, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds an idle connection is kept open after a response.")
@click.option("--max-connections", envvar="RDEVENTS_MAX_CONNECTIONS",
              default=DEFAULT_MAX_CONNECTIONS, show_default=True, type=click.IntRange(min=1),
              help="Connections a process keeps open (at most its open-files limit allows); "
                   "past it, the one waiting longest for a request is closed.")
@click.option("--forwarded-allow-ips", envvar="RDEVENTS_FORWARDED_ALLOW_IPS",
              default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: "
                   "comma-separated addresses or networks, or * (behind a proxy on another "
                   "host, give its address, or every client seems to be the proxy).")
@click.option("--webhook-allowed-networks", envvar="RDEVENTS_WEBHOOK_ALLOWED_NETWORKS",
              default="", callback=lambda _c, _p, value: _networks(value),
              help="Networks webhooks may be sent to although they are not public (loopback, "
                   "private, link-local...), as CIDRs separated by commas, e.g. "
                   "10.0.0.0/8,fd00::/8. Default: none.")
@click.option("--webhook-concurrency", envvar="RDEVENTS_WEBHOOK_CONCURRENCY",
              default=_DEFAULTS.webhook_concurrency, show_default=True,
              type=click.IntRange(min=1), help="Webhook attempts a process has under way at once.")
@click.option("--webhook-concurrency-per-account",
              envvar="RDEVENTS_WEBHOOK_CONCURRENCY_PER_ACCOUNT",
              default=_DEFAULTS.webhook_concurrency_per_account, show_default=True,
              type=click.IntRange(min=1),
              help="Webhook attempts a process has under way at once for one account.")
@click.option("--max-webhooks-per-account", envvar="RDEVENTS_MAX_WEBHOOKS_PER_ACCOUNT",
              default=_DEFAULTS.max_webhooks_per_account, show_default=True,
              type=click.IntRange(min=1), help="Webhook subscriptions an account may have.")
@click.option("--relay-timeout", envvar="RDEVENTS_RELAY_TIMEOUT",
              default=_DEFAULTS.relay_timeout, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds an upstream has to answer a relay's request.")
@click.option("--relay-poll-seconds", envvar="RDEVENTS_RELAY_POLL_SECONDS",
              default=_DEFAULTS.relay_poll_seconds, show_default=True,
              type=click.FloatRange(min=0.01),
              help="How often a process looks for events to relay.")
@click.option("--relay-retry-first-seconds", envvar="RDEVENTS_RELAY_RETRY_FIRST_SECONDS",
              default=_DEFAULTS.relay_retry_first_seconds, show_default=True,
              type=click.FloatRange(min=0),
              help="The wait before the first retry of an event a relay failed to send; it "
                   "doubles with each failure (with jitter).")
@click.option("--relay-retry-max-seconds", envvar="RDEVENTS_RELAY_RETRY_MAX_SECONDS",
              default=_DEFAULTS.relay_retry_max_seconds, show_default=True,
              type=click.FloatRange(min=0), help="The longest wait between retries.")
@click.option("--relay-give-up-hours", envvar="RDEVENTS_RELAY_GIVE_UP_HOURS",
              default=_DEFAULTS.relay_give_up_hours, show_default=True,
              type=click.FloatRange(min=0),
              help="How long an event's failures are retried before it is a dead letter.")
@click.option("--relay-batch-events", envvar="RDEVENTS_RELAY_BATCH_EVENTS",
              default=_DEFAULTS.relay_batch_events, show_default=True,
              type=click.IntRange(min=1), help="Events a relay sends in one upstream batch.")
@click.option("--relay-batch-bytes", envvar="RDEVENTS_RELAY_BATCH_BYTES",
              default=_DEFAULTS.relay_batch_bytes, show_default=True,
              type=click.IntRange(min=1000),
              help="The largest body of an upstream batch (RD: 0.2 MB).")
@click.option("--relay-concurrency", envvar="RDEVENTS_RELAY_CONCURRENCY",
              default=_DEFAULTS.relay_concurrency, show_default=True,
              type=click.IntRange(min=1),
              help="Batches a process has under way at once for one relay.")
@click.option("--workers", envvar="RDEVENTS_WORKERS", default=1, show_default=True,
              type=click.IntRange(min=1), help="Server processes sharing the port.")
@click.option("--log-level", envvar="RDEVENTS_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--log-format", envvar="RDEVENTS_LOG_FORMAT", default="text", show_default=True,
              type=click.Choice(["text", "json"]), help="json: one JSON object a line.")
def serve(host: str, port: int, database_url: str, max_body_bytes: int, max_batch_events: int,
          max_custom_fields: int, max_tags_per_contact: int, max_pending_writes: int,
          token_cache_seconds: float, sign_in_failures_per_username: int,
          sign_in_failures_per_address: int, sign_in_window_seconds: float,
          ui_session_seconds: float, rate_limits: str,
          webhook_timeout: float, webhook_retry_delays: tuple[float, ...],
          webhook_poll_seconds: float, webhook_retention_days: float,
          webhook_allowed_networks: tuple[str, ...], webhook_concurrency: int,
          webhook_concurrency_per_account: int, max_webhooks_per_account: int,
          head_timeout: float, body_timeout: float, keep_alive_timeout: float,
          max_connections: int, forwarded_allow_ips: str, relay_timeout: float,
          relay_poll_seconds: float, relay_retry_first_seconds: float,
          relay_retry_max_seconds: float, relay_give_up_hours: float, relay_batch_events: int,
          relay_batch_bytes: int, relay_concurrency: int, workers: int,
          log_level: str, log_format: str) -> None:
    """Run the HTTP server."""
    from .http.server import run_server

    settings = Settings(database_url=database_url, max_body_bytes=max_body_bytes,
                        max_batch_events=max_batch_events,
                        max_custom_fields=max_custom_fields,
                        max_tags_per_contact=max_tags_per_contact,
                        max_pending_writes=max_pending_writes,
                        token_cache_seconds=token_cache_seconds,
                        sign_in_failures_per_username=sign_in_failures_per_username,
                        sign_in_failures_per_address=sign_in_failures_per_address,
                        sign_in_window_seconds=sign_in_window_seconds,
                        ui_session_seconds=ui_session_seconds,
                        rate_limits=rate_limits == "rd", webhook_timeout=webhook_timeout,
                        webhook_retry_delays=webhook_retry_delays,
                        webhook_poll_seconds=webhook_poll_seconds,
                        webhook_retention_days=webhook_retention_days,
                        webhook_allowed_networks=webhook_allowed_networks,
                        webhook_concurrency=webhook_concurrency,
                        webhook_concurrency_per_account=webhook_concurrency_per_account,
                        max_webhooks_per_account=max_webhooks_per_account,
                        head_timeout=head_timeout, body_timeout=body_timeout,
                        keep_alive_timeout=keep_alive_timeout, max_connections=max_connections,
                        forwarded_allow_ips=forwarded_allow_ips,
                        relay_timeout=relay_timeout, relay_poll_seconds=relay_poll_seconds,
                        relay_retry_first_seconds=relay_retry_first_seconds,
                        relay_retry_max_seconds=relay_retry_max_seconds,
                        relay_give_up_hours=relay_give_up_hours,
                        relay_batch_events=relay_batch_events,
                        relay_batch_bytes=relay_batch_bytes,
                        relay_concurrency=relay_concurrency)
    _check_can_listen(host, port)  # before the first start spends its one-time token
    token = with_store(_first_start)(database_url)
    if token is not None:
        _print_welcome(token, host, port)
    run_server(settings, host, port, workers=workers, log_level=log_level,
               log_format=log_format)


def _delays(value: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        delays = (-1.0,)
    if any(delay < 0 for delay in delays):
        raise click.BadParameter(f"{value!r}: give seconds (0 or more) separated by commas.")
    return delays


def _networks(value: str) -> tuple[str, ...]:
    networks = tuple(part.strip() for part in value.split(",") if part.strip())
    try:
        parse_networks(networks)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return networks


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


async def _first_start(store: Store) -> str | None:
    """On an empty database: create account `default` and a token for it."""
    if await store.count_accounts():
        return None
    account = await store.create_account("default")
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


def _set_api_key(active: bool):
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


class NewPassword(click.ParamType):
    """A password an administrator may be given (see passwords.MIN_LENGTH)."""

    name = "password"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        problem = problem_with(value)
        if problem is not None:
            self.fail(problem, param, ctx)
        return value


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
    for username, account, created in rows:
        click.echo(f"{username:<{widths[0]}}  {account:<{widths[1]}}  {created}")


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
    from .store.copy import TargetNotEmpty, copy_database

    try:
        copy_database(source, target,
                      lambda table, rows: click.echo(f"{table}: {rows} rows", err=True))
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
    _echo_table(rows)


def _echo_table(rows: list[tuple[str, ...]]) -> None:
    """Rows of cells, aligned in columns."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                   .rstrip())


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
    _echo_table(rows)


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
