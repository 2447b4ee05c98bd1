"""Administrators' sign-in resists guessing: failures are counted per username and per client
address, in the database (so every process counts together), and past the limits attempts are
refused with a 429 before any password hashing."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import httpx
import pytest

from conftest import BACKENDS, Server, backend_settings
from consent import PASSWORD, REDIRECT, csrf_token, new_address, open_page, sign_in
from rdevents import passwords
from rdevents.oauth import create_app
from rdevents.passwords import hash_password
from rdevents.store import open_store
from serverproc import ServerProcess

FOR_ADMIN = "Too many failed sign-ins for this administrator. Try again in {} minute{}."
FROM_ADDRESS = "Too many failed sign-ins from your network address. Try again in {} minute{}."


class Clock:
    """The sign-in throttle's clock, moved by the tests (it starts at the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", params=BACKENDS)
def throttled(request, tmp_path_factory):
    """A server with the default limits (5 failures a username, 20 an address, 15 minutes),
    whose throttle reads a clock the tests move: (server, clock)."""
    running = Server(backend_settings(request, request.param,
                                      tmp_path_factory.mktemp("sign-in"))).start()
    clock = Clock()
    running.app.state.sign_in.clock = clock
    yield running, clock
    running.stop()


def new_admin(server) -> tuple[str, str]:
    """An app's client_id and an administrator of its account."""
    account_id, _ = server.new_account()
    client_id, _ = server.call(create_app(server.store, account_id, REDIRECT))
    username = f"admin-{uuid.uuid4().hex[:8]}"
    server.call(server.store.create_admin(account_id, username, hash_password(PASSWORD)))
    return client_id, username


@pytest.fixture
def browser(throttled):
    with httpx.Client(base_url=throttled[0].url, timeout=30) as client:
        yield client


def assert_refused(response: httpx.Response, message: str, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    assert f'<p class="error">{message}</p>' in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert csrf_token(response)  # the form is there again, ready for later


@pytest.mark.parametrize("known", [True, False], ids=["admin", "unknown-name"])
def test_failures_past_the_limit_are_refused_until_the_window_ends(throttled, browser, known):
    server, clock = throttled
    client_id, username = new_admin(server)
    name = username if known else f"nobody-{uuid.uuid4().hex[:8]}"
    address = new_address()
    for _ in range(5):
        response = sign_in(browser, client_id, name, "wrong password", address=address)
        assert response.status_code == 401
    refused = sign_in(browser, client_id, name, PASSWORD, address=address)
    assert_refused(refused, FOR_ADMIN.format(15, "s"), 900)
    # From any address: the limit is the administrator's.
    assert_refused(sign_in(browser, client_id, name, PASSWORD, address=new_address()),
                   FOR_ADMIN.format(15, "s"), 900)
    clock.now += 899.5
    assert_refused(sign_in(browser, client_id, name, PASSWORD, address=address),
                   FOR_ADMIN.format(1, ""), 1)
    clock.now += 0.5
    again = sign_in(browser, client_id, name, PASSWORD, address=address)
    assert again.status_code == (302 if known else 401)


def test_refused_attempts_cost_no_password_hashing(throttled, browser, monkeypatch):
    server, _ = throttled
    client_id, username = new_admin(server)
    checked = []

    def verify_password(password: str, stored: str | None) -> bool:
        checked.append(password)
        return real(password, stored)

    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", verify_password)
    address = new_address()
    statuses = [sign_in(browser, client_id, username, f"guess {n}", address=address).status_code
                for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert checked == [f"guess {n}" for n in range(5)]


def test_a_success_starts_the_usernames_count_again(throttled, browser):
    server, _ = throttled
    client_id, username = new_admin(server)
    address = new_address()
    for _ in range(4):
        assert sign_in(browser, client_id, username, "wrong", address=address).status_code == 401
    assert sign_in(browser, client_id, username, PASSWORD, address=address).status_code == 302
    statuses = [sign_in(browser, client_id, username, "wrong", address=address).status_code
                for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_an_address_is_refused_after_20_failures_whatever_the_names(throttled, browser):
    server, _ = throttled
    client_id, username = new_admin(server)
    address = new_address()
    for n in range(19):
        response = sign_in(browser, client_id, f"guess-{n}-{uuid.uuid4().hex[:6]}", "wrong",
                           address=address)
        assert response.status_code == 401
    for _ in range(3):  # successes do not count against the address
        assert sign_in(browser, client_id, username, PASSWORD, address=address
                       ).status_code == 302
    assert sign_in(browser, client_id, "one-more", "wrong", address=address).status_code == 401
    assert_refused(sign_in(browser, client_id, username, PASSWORD, address=address),
                   FROM_ADDRESS.format(15, "s"), 900)
    # The administrator signs in from elsewhere.
    assert sign_in(browser, client_id, username, PASSWORD, address=new_address()
                   ).status_code == 302


def test_attempts_at_once_get_no_more_than_the_limit(throttled):
    """The count is taken before the password is checked: guesses sent together are held to
    the limit too."""
    server, _ = throttled
    client_id, username = new_admin(server)
    address = new_address()
    start = threading.Barrier(10)
    statuses: list[int] = []

    def guess(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = csrf_token(open_page(client, client_id, address=address))
            start.wait()
            statuses.append(client.post("/auth/dialog", data={
                "csrf_token": token, "client_id": client_id, "redirect_uri": REDIRECT,
                "username": username, "password": f"guess {n}"},
                headers={"X-Forwarded-For": address}).status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [401] * 5 + [429] * 5


@pytest.fixture(scope="module", params=BACKENDS)
def two_servers(request, tmp_path_factory):
    """Two servers on one database, as two processes or hosts are."""
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("two"))
    first, second = Server(settings).start(), Server(settings).start()
    yield first, second
    first.stop()
    second.stop()


def test_the_limit_holds_across_servers_on_one_database(two_servers):
    first, second = two_servers
    client_id, username = new_admin(first)
    address = new_address()
    with httpx.Client(base_url=first.url, timeout=30) as one, \
            httpx.Client(base_url=second.url, timeout=30) as other:
        for client in (one, other, one, other, one):
            assert sign_in(client, client_id, username, "wrong", address=address
                           ).status_code == 401
        for client in (one, other):
            assert sign_in(client, client_id, username, PASSWORD, address=address
                           ).status_code == 429


async def add_app(served: ServerProcess, admin: str | None = None) -> str:
    """An OAuth app of the served account (and an administrator of it): its client_id."""
    store = open_store(f"sqlite:///{served.database}")
    await store.open()
    try:
        account = await store.get_account(served.account)
        client_id, _ = await create_app(store, account.id, REDIRECT)
        if admin is not None:
            await store.create_admin(account.id, admin, hash_password(PASSWORD))
        return client_id
    finally:
        await store.close()


def test_the_limits_are_settings_of_serve(tmp_path):
    """`rdevents serve` takes the limits from its options and RDEVENTS_* variables."""
    served = ServerProcess(tmp_path, serve_args=("--sign-in-failures-per-username", "2"))
    served.env["RDEVENTS_SIGN_IN_WINDOW_SECONDS"] = "60"

    client_id = asyncio.run(add_app(served, admin="ana"))
    served.start()
    try:
        with httpx.Client(base_url=served.url, timeout=30) as browser:
            statuses = [sign_in(browser, client_id, "ana", "wrong").status_code for _ in range(2)]
            assert statuses == [401, 401]
            refused = sign_in(browser, client_id, "ana", PASSWORD)
        assert refused.status_code == 429
        assert 55 <= int(refused.headers["retry-after"]) <= 60
        assert FOR_ADMIN.format(1, "") in refused.text
    finally:
        served.stop()


def test_forwarded_addresses_count_only_from_trusted_proxies(tmp_path):
    """With `--forwarded-allow-ips` naming another proxy, X-Forwarded-For is not believed: every
    attempt counts against the connection's own address."""
    served = ServerProcess(tmp_path, serve_args=("--sign-in-failures-per-address", "3",
                                                 "--forwarded-allow-ips", "192.0.2.1"))

    client_id = asyncio.run(add_app(served))
    served.start()
    try:
        with httpx.Client(base_url=served.url, timeout=30) as browser:
            statuses = [sign_in(browser, client_id, f"name-{n}", "wrong",
                                address=new_address()).status_code for n in range(4)]
        assert statuses == [401, 401, 401, 429]
    finally:
        served.stop()
