"""The sandbox (`serve --sandbox`): each fault answers exactly as RD Station (and rdevents itself)
does, counted, limited to its path and its account, stores nothing and is kept by the request
log; a reset erases every table of the account's data and nothing else. On both backends."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, inspect

from conftest import (
    BACKENDS,
    LOOPBACK,
    Api,
    Server,
    backend_settings,
    conversion,
    dangling_references,
    event,
)
from hooks import subscribe
from rdevents.http.faults import RD_DOWN_PAGE
from rdevents.limits import ACCOUNT, DAY, window
from rdevents.oauth import create_app
from rdevents.openapi import build_openapi
from rdevents.sandbox import KINDS
from rdevents.store.sandbox import ACCOUNT_DATA
from rdevents.store.schema import sqlalchemy_url
from rdevents.tokens import issue_api_key, issue_token
from relaying import create_relay
from upstream_stub import html_504
from waiting import wait_until

FAULTS = "/rdevents/v1/sandbox/faults"
RESET = "/rdevents/v1/sandbox/reset"
RD_BODY_401 = b'{"errors":{"error_type":"UNAUTHORIZED","error_message":"Invalid token."}}'
EXPIRED = ('Bearer realm="rdevents", error="expired_token", '
           'error_description="The access token expired"')
# The tables a reset leaves: accounts and their credentials, administrators, sign-in counters
# (by username and address, no account's), the schema's version.
KEPT = {"accounts", "tokens", "api_keys", "apps", "auth_codes", "refresh_tokens", "admins",
        "ui_sessions", "sign_in_attempts", "alembic_version"}


@pytest.fixture(scope="module", params=BACKENDS)
def sandbox(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("sandbox"),
                                sandbox=True, rate_limits=True, relay_poll_seconds=0.05,
                                webhook_allowed_networks=LOOPBACK)
    running = Server(settings).start()
    yield running
    running.stop()


@pytest.fixture
def account(sandbox: Server) -> Iterator[tuple[int, Api]]:
    account_id, token = sandbox.new_account()
    with sandbox.client(token) as client:
        yield account_id, client


def new_email() -> str:
    return f"sandbox-{uuid.uuid4().hex[:10]}@example.com"


def add_fault(api: Api, kind: str, **options: Any) -> dict[str, Any]:
    response = api.post(FAULTS, json={"fault": kind, **options})
    assert response.status_code == 201, response.text
    return response.json()


def logged(sandbox: Server, api: Api, count: int) -> list[dict[str, Any]]:
    """The account's rejected requests, once `count` are logged, each whole, newest first."""
    sandbox.call(sandbox.app.state.request_log.flush())
    found = api.get("/rdevents/v1/requests", params={"status": "rejected"}).json()["requests"]
    assert len(found) == count
    return [api.get(f"/rdevents/v1/requests/{item['uuid']}").json() for item in found]


def test_without_the_sandbox_its_routes_do_not_exist(api):
    for method, path in (("POST", FAULTS), ("GET", FAULTS), ("DELETE", FAULTS), ("POST", RESET)):
        response = api.request(method, path, json={"fault": "rate_limit"})
        assert response.status_code == 404, (method, path)
        assert response.json()["errors"]["error_type"] == "RESOURCE_NOT_FOUND"


def test_the_sandboxs_api_document_describes_its_routes(sandbox):
    sandbox_paths = httpx.get(f"{sandbox.url}/openapi.json", timeout=30).json()["paths"]
    assert set(sandbox_paths[FAULTS]) == {"post", "get", "delete"}
    assert set(sandbox_paths[RESET]) == {"post"}
    assert FAULTS not in build_openapi()["paths"]


def test_a_fault_is_stored_as_asked_and_listed_until_spent(account):
    _, api = account
    fault = add_fault(api, "server_error", count=2, path="/platform/events/batch")
    assert fault.pop("uuid") and fault.pop("created_at")
    assert fault == {"fault": "server_error", "count": 2, "remaining": 2,
                     "path": "/platform/events/batch", "latency_ms": 0}
    defaults = add_fault(api, "rate_limit")
    assert (defaults["count"], defaults["path"], defaults["latency_ms"]) == (1, "/", 0)

    assert api.send_batch([conversion(new_email())]).status_code == 500
    listed = api.get(FAULTS).json()["faults"]
    assert [(f["fault"], f["remaining"]) for f in listed] == [("server_error", 1),
                                                             ("rate_limit", 1)]
    assert api.delete(FAULTS).status_code == 204
    assert api.get(FAULTS).json() == {"faults": []}
    assert api.send_batch([conversion(new_email())]).status_code == 200


@pytest.mark.parametrize("body, path, error_type", [
    ({"fault": "teapot"}, "$.body.fault", "INVALID_OPTION"),
    ({"count": 1}, "$.body.fault", "CANNOT_BE_NULL"),
    ({"fault": "rate_limit", "count": 0}, "$.body.count", "INVALID_FORMAT"),
    ({"fault": "rate_limit", "count": "2"}, "$.body.count", "INVALID_DATA_TYPE"),
    ({"fault": "latency"}, "$.body.latency_ms", "INVALID_FORMAT"),
    ({"fault": "latency", "latency_ms": 10**6}, "$.body.latency_ms", "INVALID_FORMAT"),
    ({"fault": "rate_limit", "path": "platform"}, "$.body.path", "INVALID_FORMAT"),
    ({"fault": "rate_limit", "path": 3}, "$.body.path", "INVALID_DATA_TYPE"),
], ids=["kind", "no-kind", "count", "count-type", "no-latency", "latency", "path", "path-type"])
def test_a_fault_that_cannot_be_is_refused(account, body, path, error_type):
    _, api = account
    response = api.post(FAULTS, json=body)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["path"], error["error_type"]) == (path, error_type)
    if error_type == "INVALID_OPTION":
        assert error["validation_rules"] == {"valid_options": list(KINDS)}
    assert api.get(FAULTS).json() == {"faults": []}


def test_unknown_fields_are_refused_as_rd_does(account):
    _, api = account
    response = api.post(FAULTS, json={"fault": "rate_limit", "times": 2})
    assert response.status_code == 400
    assert response.json() == {"errors": {"error_type": "INVALID_FIELDS", "error_message":
                                          "Payload contains fields that do not exist: (times)"}}


def assert_retry_after(response: httpx.Response, period: int) -> int:
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= period
    return wait


def test_rate_limit_is_rds_gateway_429(account):
    account_id, api = account
    email = new_email()
    add_fault(api, "rate_limit")
    response = api.send_event(conversion(email))
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"message":"API rate limit exceeded"}'
    wait = assert_retry_after(response, 60)
    assert response.headers["ratelimit-limit-quotas"] == "120"
    assert response.headers["retry-after-quotas"] == str(wait)
    assert api.contact(email).status_code == 404


def test_lead_rate_limit_is_rds_lead_limiter_429(account):
    _, api = account
    email = new_email()
    add_fault(api, "lead_rate_limit")
    response = api.send_event(conversion(email.upper()))
    assert response.status_code == 429
    wait = assert_retry_after(response, 86_400)
    assert response.json() == {
        "error": "'lead_limiter' rate limit exceeded for 86400 second(s) period for key "
                 f"'{email}'", "max": 120, "usage": 121, "remaining_time": wait}
    assert "ratelimit-limit-quotas" not in response.headers
    assert api.contact(email).status_code == 404


def test_the_lead_limiter_names_the_contact_of_a_contacts_route(account):
    _, api = account
    email = new_email()
    add_fault(api, "lead_rate_limit", path="/platform/contacts")
    response = api.patch(f"/platform/contacts/email:{email}", json={"name": "Ana"})
    assert response.status_code == 429
    assert response.json()["error"].endswith(f"for key '{email}'")


def test_expired_token_is_the_401_of_an_expired_token(sandbox, account):
    account_id, api = account
    expired = sandbox.call(issue_token(sandbox.store, account_id, expires_in=-1))
    with sandbox.client(expired) as stale:
        own = stale.send_event(conversion(new_email()))
    add_fault(api, "expired_token")
    email = new_email()
    response = api.send_event(conversion(email))
    for answer in (own, response):
        assert answer.status_code == 401
        assert answer.content == RD_BODY_401
        assert answer.headers["www-authenticate"] == EXPIRED
    assert api.contact(email).status_code == 404


def test_invalid_token_is_the_401_of_an_unknown_token(sandbox, account):
    _, api = account
    with sandbox.client("rdv_unknown") as unknown:
        own = unknown.send_event(conversion(new_email()))
    add_fault(api, "invalid_token")
    response = api.send_event(conversion(new_email()))
    for answer in (own, response):
        assert answer.status_code == 401
        assert answer.content == RD_BODY_401
        assert "www-authenticate" not in answer.headers


def test_server_error_is_rds_500(account):
    _, api = account
    email = new_email()
    add_fault(api, "server_error")
    response = api.send_event(conversion(email))
    assert response.status_code == 500
    assert response.json() == {"errors": {"error_type": "SERVICE_UNAVAILABLE",
                                          "error_message": "Service temporarily unavailable"}}
    assert api.contact(email).status_code == 404


def test_gateway_timeout_html_is_rds_page_when_it_is_down(account):
    _, api = account
    email = new_email()
    add_fault(api, "gateway_timeout_html")
    response = api.send_event(conversion(email))
    assert response.status_code == 504
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == RD_DOWN_PAGE
    assert "<title> RD Station fora do ar </title>" in response.text
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)
    assert api.contact(email).status_code == 404


def test_latency_delays_and_then_serves(account):
    _, api = account
    email = new_email()
    add_fault(api, "latency", latency_ms=400)
    started = time.monotonic()
    response = api.send_event(conversion(email))
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200
    assert api.contact(email).status_code == 200


def test_a_failure_may_come_late_too(account):
    _, api = account
    add_fault(api, "gateway_timeout_html", latency_ms=300)
    started = time.monotonic()
    assert api.send_event(conversion(new_email())).status_code == 504
    assert time.monotonic() - started >= 0.3


def test_the_next_count_requests_fail_and_then_none(account):
    _, api = account
    add_fault(api, "server_error", count=3)
    statuses = [api.send_event(conversion(new_email())).status_code for _ in range(5)]
    assert statuses == [500, 500, 500, 200, 200]
    assert api.get(FAULTS).json() == {"faults": []}


def test_a_fault_answers_only_the_paths_under_its_own(account):
    _, api = account
    add_fault(api, "server_error", path="/platform/events/batch")
    email = new_email()
    assert api.send_event(conversion(email)).status_code == 200
    assert api.contact(email).status_code == 200
    assert api.get(f"/platform/contacts/email:{email}/events").status_code == 200
    assert api.send_batch([conversion(new_email())]).status_code == 500
    assert api.send_batch([conversion(new_email())]).status_code == 200


def test_a_fault_answers_every_rd_route_by_default_and_never_rdevents_own(sandbox, account):
    account_id, api = account
    key = sandbox.call(issue_api_key(sandbox.store, account_id))
    add_fault(api, "invalid_token", count=3)
    assert api.get(FAULTS).status_code == 200  # /rdevents/v1: never faulted
    assert api.get("/rdevents/v1/requests").status_code == 200
    assert api.get("/platform/contacts/fields").status_code == 401
    assert api.get("/marketing/account_info").status_code == 401
    assert api.post("/platform/conversions", params={"api_key": key},
                    json=conversion(new_email())).status_code == 401
    assert api.get("/platform/contacts/fields").status_code == 200


def test_a_fault_answers_the_token_route_of_the_accounts_apps(sandbox, account):
    account_id, api = account
    client_id, secret = sandbox.call(create_app(sandbox.store, account_id,
                                                "https://app.example.com/callback"))
    add_fault(api, "gateway_timeout_html", path="/auth/token")
    exchange = {"client_id": client_id, "client_secret": secret, "code": "no-such-code"}
    assert api.post("/auth/token", json={**exchange, "client_secret": "wrong"}
                    ).status_code == 401  # not the app's: not faulted
    assert api.post("/auth/token", json=exchange).status_code == 504
    refused = api.post("/auth/token", json=exchange)
    assert refused.json()["errors"]["error_type"] == "EXPIRED_CODE_GRANT"


def test_a_fault_is_its_accounts_alone(sandbox, account):
    _, api = account
    add_fault(api, "server_error")
    _, other_token = sandbox.new_account()
    with sandbox.client(other_token) as other:
        assert other.send_event(conversion(new_email())).status_code == 200
    assert api.send_event(conversion(new_email())).status_code == 500


def test_a_faulted_request_is_kept_by_the_request_log_and_replays(sandbox, account):
    _, api = account
    email = new_email()
    add_fault(api, "rate_limit")
    assert api.send_event(conversion(email)).status_code == 429
    [record] = logged(sandbox, api, 1)
    assert (record["method"], record["path"], record["status"]) == ("POST", "/platform/events",
                                                                    429)
    assert record["request_body"] == conversion(email)
    assert record["response_body"] == {"message": "API rate limit exceeded"}
    replayed = api.post(f"/rdevents/v1/requests/{record['uuid']}/replay")
    assert replayed.json()["status"] == 200
    assert api.contact(email).status_code == 200


# --- reset ----------------------------------------------------------------------------------------


def table_names(url: str) -> set[str]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_every_table_is_either_erased_by_a_reset_or_kept(sandbox):
    erased = {table for table, _ in ACCOUNT_DATA}
    assert not erased & KEPT
    assert table_names(sandbox.settings.database_url) - erased - KEPT == set(), (
        "a table that is neither erased by a reset (store/sandbox.py's ACCOUNT_DATA) nor kept "
        "(KEPT, here): say which it is")
    assert erased | KEPT <= table_names(sandbox.settings.database_url)


def account_rows(sandbox: Server, account_id: int) -> dict[str, int]:
    """How many rows of the account's each table of ACCOUNT_DATA holds."""
    return {table: sandbox.call(sandbox.store.fetch(
        f"SELECT count(*) FROM {table} WHERE {condition}", (account_id,)))[0][0]
        for table, condition in ACCOUNT_DATA}


def fill(sandbox: Server, api: Api, account_id: int, receiver, stub) -> None:
    """A row of the account in every table a reset erases."""
    emails = [new_email() for _ in range(50)]
    create_relay(sandbox, account_id, stub.url, "up-token", events_per_minute=1000)
    subscribe(api, receiver.url)
    assert api.send_batch([conversion(email, tags=["a", "b"], cf_plan="pro")
                           for email in emails]).status_code == 200
    assert api.send_event(event("OPPORTUNITY", email=emails[0],
                                funnel_name="default")).status_code == 200
    assert api.send_event({"event_type": "CONVERSION"}).status_code == 400  # request log
    assert api.post("/platform/events", json=conversion(new_email()),
                    headers={"Idempotency-Key": new_email()}).status_code == 200
    add_fault(api, "latency", latency_ms=1)
    wait_until(lambda: all(account_rows(sandbox, account_id).values()))


def test_a_reset_amid_writes_leaves_no_row_pointing_at_what_it_erased(own_server):
    """Groups of writes racing resets of their account: each lands wholly before a reset
    (and is erased) or after it (on contacts made again), never on a contact a reset erased,
    nor counting, in the rate counters, events the reset erased."""
    server = own_server(sandbox=True, rate_limits=True)
    account_id, token = server.new_account()
    # Room for every batch: a group that read counters from before a reset and wrote them back
    # after it would be accepted, not refused.
    server.call(server.store.set_account_limits(account_id, None, 1_000_000, 1_000_000))
    today = window(time.time(), DAY)
    emails = [new_email() for _ in range(20)]
    batch = [conversion(email, tags=["racing"]) for email in emails] + [
        event("OPPORTUNITY", email=email, funnel_name="default") for email in emails]
    answered: list[int] = []
    done = threading.Event()

    def send(api: Api) -> None:
        while not done.is_set():
            answered.append(api.send_batch(batch).status_code)

    with server.client(token) as api, ThreadPoolExecutor(3) as pool:
        senders = [pool.submit(send, api) for _ in range(3)]
        try:
            for _ in range(8):
                wanted = len(answered) + 2  # writes between each reset
                wait_until(lambda wanted=wanted: len(answered) >= wanted)
                # Before each reset too: the next erases what a group racing this one left.
                assert dangling_references(server, account_id) == {}
                assert api.post(RESET).status_code == 204
        finally:
            done.set()
        for sender in senders:
            sender.result()
    assert set(answered) == {200}
    assert dangling_references(server, account_id) == {}
    if window(time.time(), DAY) == today:  # else the day's counters started again
        counted = dict(server.call(server.store.fetch(
            "SELECT subject, sum(count) FROM rate_counters WHERE account_id = ? AND "
            "subject <> ? GROUP BY subject", (account_id, ACCOUNT))))
        stored = dict(server.call(server.store.fetch(
            "SELECT c.email, count(*) FROM events e JOIN contacts c ON c.id = e.contact_id "
            "WHERE e.account_id = ? GROUP BY c.email", (account_id,))))
        assert counted == stored


def test_a_reset_erases_the_accounts_data_and_keeps_its_credentials(sandbox, account, receiver,
                                                                    stub):
    account_id, api = account
    other_id, other_token = sandbox.new_account()
    stub.responder = lambda request: html_504()  # the relays' events stay queued
    key = sandbox.call(issue_api_key(sandbox.store, account_id))
    with sandbox.client(other_token) as other:
        fill(sandbox, other, other_id, receiver, stub)
        fill(sandbox, api, account_id, receiver, stub)
        others = account_rows(sandbox, other_id)
        assert dangling_references(sandbox, account_id) == {}

        started = time.monotonic()
        assert api.post(RESET).status_code == 204
        assert time.monotonic() - started < 1.0

        assert account_rows(sandbox, account_id) == {table: 0 for table, _ in ACCOUNT_DATA}
        kept = account_rows(sandbox, other_id)
        assert kept.pop("relay_spends") >= others.pop("relay_spends")  # its relay goes on
        assert kept.pop("webhook_attempts") >= others.pop("webhook_attempts")
        assert kept == others
    # The token and the API key still work; the account has nothing.
    assert api.get("/marketing/account_info").status_code == 200
    assert api.get("/platform/contacts").json()["contacts"] == []
    assert api.get("/rdevents/v1/relays").json() == {"relays": []}
    assert api.get("/integrations/webhooks").json() == {"webhooks": []}
    email = new_email()
    assert api.post("/platform/conversions", params={"api_key": key},
                    json=conversion(email)).status_code == 200
    assert api.contact(email).status_code == 200
