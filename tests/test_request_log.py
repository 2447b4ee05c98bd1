"""The request log: requests to RD's routes answered 4xx or 5xx are kept, redacted, capped and
pruned, and an account lists them, reads one whole and replays it (/rdevents/v1/requests);
every answer carries X-Request-Id. On both backends."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import orjson
import pytest

from conftest import LOOPBACK, Api, Server, conversion, event
from rdevents.oauth import create_app, issue_code
from rdevents.store.request_records import LoggedRequest
from rdevents.tokens import hash_secret, issue_api_key, issue_token
from receiver import wait_until

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # one the server made


def opportunity(email: str) -> dict[str, Any]:
    return event("OPPORTUNITY", email=email, funnel_name="default")


def new_email() -> str:
    return f"log-{uuid.uuid4().hex[:12]}@example.com"


def listed(api: Api, count: int, **params: Any) -> list[dict[str, Any]]:
    """The account's logged requests, once at least `count` are (the log writes in batches,
    a fraction of a second after the requests)."""
    def enough() -> list[dict[str, Any]] | None:
        response = api.get("/rdevents/v1/requests", params=params)
        assert response.status_code == 200, response.text
        found = response.json()["requests"]
        return found if len(found) >= count else None

    return wait_until(enough, timeout=10)


def stored_rows(server: Server, count: int) -> list[tuple[Any, ...]]:
    """Every row of the request log, raw, once there are at least `count`."""
    def enough() -> list[tuple[Any, ...]] | None:
        rows = server.call(server.store.fetch("SELECT * FROM request_log ORDER BY id"))
        return rows if len(rows) >= count else None

    return wait_until(enough, timeout=10)


def anonymous_records(server: Server) -> list[LoggedRequest]:
    summaries = server.call(server.store.list_requests(None, None, 0, 100))
    return [server.call(server.store.get_request(None, s.uuid)) for s in summaries]


# --- the API --------------------------------------------------------------------------------------


def test_a_rejected_request_is_listed_and_shown_whole(server, api):
    email = new_email()
    rejected = api.post("/platform/events", params={"event_type": "opportunity"},
                        json=opportunity(email), headers={"X-Request-Id": "trace-4711",
                                                          "User-Agent": "crm-sync/2.1"})
    assert rejected.status_code == 400
    assert rejected.headers["x-request-id"] == "trace-4711"

    requests = listed(api, 1, status="rejected")
    assert len(requests) == 1
    summary = requests[0]
    assert UUID.fullmatch(summary["uuid"]) and TIME.fullmatch(summary["received_at"])
    assert isinstance(summary["duration_ms"], float) and summary["duration_ms"] > 0
    assert summary == {"uuid": summary["uuid"], "received_at": summary["received_at"],
                       "method": "POST", "path": "/platform/events", "status": 400,
                       "duration_ms": summary["duration_ms"]}
    assert api.get("/rdevents/v1/requests").json() == {"requests": [summary], "page": 1,
                                                       "page_size": 25}

    whole = api.get(f"/rdevents/v1/requests/{summary['uuid']}")
    assert whole.status_code == 200
    body = whole.json()
    sent = opportunity(email)
    assert body == {
        **summary, "query": "event_type=opportunity", "request_id": "trace-4711",
        "client_address": "127.0.0.1", "user_agent": "crm-sync/2.1",
        "headers": {"host": f"127.0.0.1:{server.port}", "accept": "*/*",
                    "accept-encoding": "gzip, deflate", "connection": "keep-alive",
                    "user-agent": "crm-sync/2.1", "authorization": "[redacted]",
                    "x-request-id": "trace-4711",
                    "content-length": str(len(rejected.request.content)),
                    "content-type": "application/json"},
        "request_body": sent, "request_body_truncated": False,
        "response_body": rejected.json(), "response_body_truncated": False,
        "error_types": ["RESOURCE_NOT_FOUND"], "replayable": True}


def test_accepted_requests_are_not_kept_by_default(api):
    assert api.send_event(conversion(new_email())).status_code == 200
    assert api.send_event({"event_type": "NOPE"}).status_code == 400
    requests = listed(api, 1)
    assert [(r["path"], r["status"]) for r in requests] == [("/platform/events", 400)]
    assert api.get("/rdevents/v1/requests", params={"status": "accepted"}).json() == {
        "requests": [], "page": 1, "page_size": 25}


def test_newest_first_with_pages(api):
    missing = [str(uuid.uuid4()) for _ in range(3)]
    for event_uuid in missing:  # answered 404, one after the other
        assert api.get(f"/platform/events/{event_uuid}").status_code == 404
    newest_first = [f"/platform/events/{u}" for u in reversed(missing)]
    assert [r["path"] for r in listed(api, 3)] == newest_first
    first = api.get("/rdevents/v1/requests", params={"page_size": 2}).json()
    second = api.get("/rdevents/v1/requests", params={"page_size": 2, "page": 2}).json()
    assert [r["path"] for r in first["requests"]] == newest_first[:2]
    assert [r["path"] for r in second["requests"]] == newest_first[2:]
    assert (first["page"], first["page_size"], second["page"]) == (1, 2, 2)
    assert {r["status"] for r in first["requests"] + second["requests"]} == {404}


def test_a_status_filter_must_be_known(api):
    response = api.get("/rdevents/v1/requests", params={"status": "failed"})
    assert response.status_code == 400
    assert response.json() == {"errors": [{
        "error_type": "INVALID_OPTION", "error_message": "Must be one of the valid options.",
        "validation_rules": {"valid_options": ["rejected", "accepted"]},
        "path": "$.query.status"}]}


def test_an_account_sees_only_its_own_requests(server, api):
    assert api.send_event({"event_type": "NOPE"}).status_code == 400
    mine = listed(api, 1)[0]["uuid"]
    _, other_token = server.new_account()
    with server.client(other_token) as other:
        assert other.get("/rdevents/v1/requests").json()["requests"] == []
        for method, path in (("GET", f"/rdevents/v1/requests/{mine}"),
                             ("POST", f"/rdevents/v1/requests/{mine}/replay")):
            response = other.request(method, path)
            assert response.status_code == 404
            assert response.json() == {"errors": {"error_type": "RESOURCE_NOT_FOUND",
                                                  "error_message": "Request not found."}}
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/rdevents/v1/requests").status_code == 401


# --- replay ---------------------------------------------------------------------------------------


def test_replaying_an_opportunity_after_its_conversion_stores_it(api):
    email = new_email()
    assert api.send_event(opportunity(email)).status_code == 400
    record = listed(api, 1)[0]
    assert api.send_event(conversion(email)).status_code == 200

    replayed = api.post(f"/rdevents/v1/requests/{record['uuid']}/replay")
    assert replayed.status_code == 200
    body = replayed.json()
    assert set(body) == {"status", "response_body"} and body["status"] == 200
    event_uuid = body["response_body"]["event_uuid"]
    assert body == {"status": 200, "response_body": {"event_uuid": event_uuid}}
    stored = api.get(f"/platform/events/{event_uuid}").json()
    assert (stored["event_type"], stored["payload"]) == (
        "OPPORTUNITY", opportunity(email)["payload"])
    assert api.get(f"/platform/contacts/email:{email}/funnels/default").json()["opportunity"]
    # The replay is answered, not logged again; the record stays as it was.
    assert [r["uuid"] for r in listed(api, 1)] == [record["uuid"]]


def test_a_replay_that_fails_again_answers_the_failure(api):
    email = new_email()
    assert api.send_event(opportunity(email)).status_code == 400
    record = listed(api, 1)[0]
    replayed = api.post(f"/rdevents/v1/requests/{record['uuid']}/replay")
    assert replayed.status_code == 200
    assert replayed.json()["status"] == 400
    assert replayed.json()["response_body"]["errors"][0]["error_type"] == "RESOURCE_NOT_FOUND"


def test_a_request_sent_with_an_api_key_is_logged_for_its_account_and_replayed(server):
    account_id, token = server.new_account()
    key = server.call(issue_api_key(server.store, account_id))
    email = new_email()
    with server.client(token) as api:
        refused = api.post("/platform/conversions", params={"api_key": key},
                           json=opportunity(email))  # CONVERSION only on this route
        assert refused.status_code == 400
        record = api.get(f"/rdevents/v1/requests/{listed(api, 1)[0]['uuid']}").json()
        assert record["query"] == "api_key=[redacted]"
        assert key not in str(record)
        replayed = api.post(f"/rdevents/v1/requests/{record['uuid']}/replay").json()
        assert replayed == {"status": 400, "response_body": refused.json()}


def test_a_request_cut_short_is_shown_but_not_replayed(own_server):
    server = own_server(request_log_max_body_bytes=40)
    _, token = server.new_account()
    with server.client(token) as api:
        assert api.send_event(opportunity(new_email())).status_code == 400
        record = api.get(f"/rdevents/v1/requests/{listed(api, 1)[0]['uuid']}").json()
        assert record["request_body_truncated"] and not record["replayable"]
        assert isinstance(record["request_body"], str) and len(record["request_body"]) == 40
        assert record["response_body_truncated"] and isinstance(record["response_body"], str)
        replayed = api.post(f"/rdevents/v1/requests/{record['uuid']}/replay")
        assert replayed.status_code == 409
        assert replayed.json() == {"errors": {
            "error_type": "NOT_REPLAYABLE",
            "error_message": "The request cannot be replayed: its body was not kept whole (cut "
                             "at the request log's size, or credentials taken out of it)."}}


# --- request ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [
    ("POST", "/platform/events"), ("GET", "/healthz"), ("GET", "/nope"),
    ("GET", "/rdevents/v1/requests"), ("GET", "/openapi.json")])
def test_every_answer_has_a_request_id(server, method, path):
    with httpx.Client(base_url=server.url) as anonymous:
        first = anonymous.request(method, path)
        second = anonymous.request(method, path)
    assert REQUEST_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("incoming, kept", [
    ("abc-123", True), ("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", True),
    ("a" * 128, True), ("a" * 129, False), ("has space", False), ("", False),
    ("new\u00e9line", False)])
def test_an_incoming_request_id_is_kept_when_sane(server, incoming, kept):
    with httpx.Client(base_url=server.url) as anonymous:
        response = anonymous.get("/healthz", headers={"X-Request-Id": incoming.encode("utf-8")})
    if kept:
        assert response.headers["x-request-id"] == incoming
    else:
        assert REQUEST_ID.fullmatch(response.headers["x-request-id"])


# --- unauthenticated requests, redaction ----------------------------------------------------------


def test_unauthenticated_requests_are_kept_without_an_account(own_server):
    server = own_server()
    _, token = server.new_account()
    email = new_email()
    with httpx.Client(base_url=server.url) as anonymous:
        refused = anonymous.post("/platform/events", json=conversion(email),
                                 headers={"Authorization": "Bearer rdv_not-a-real-token",
                                          "X-Request-Id": "anon-1"})
    assert refused.status_code == 401
    stored_rows(server, 1)
    with server.client(token) as api:
        assert api.get("/rdevents/v1/requests").json()["requests"] == []
    (record,) = anonymous_records(server)
    assert (record.account_id, record.status, record.request_id) == (None, 401, "anon-1")
    assert record.headers["authorization"] == "[redacted]"
    assert record.error_types == ("UNAUTHORIZED",)
    # Refused before the route read it, the body is kept all the same.
    assert orjson.loads(record.request_body) == conversion(email)
    assert record.request_body_size == len(record.request_body)


def test_a_request_with_an_expired_or_revoked_token_is_logged_for_its_account(server):
    """The token names its account: the account's own failing integration is shown to it (and
    may be replayed once fixed), never to another account nor among the anonymous ones."""
    account_id, token = server.new_account()
    expired = server.call(issue_token(server.store, account_id, expires_in=-60))
    revoked = server.call(issue_token(server.store, account_id))
    assert server.call(server.store.revoke_token(hash_secret(revoked)))
    _, other_token = server.new_account()
    email = new_email()
    with httpx.Client(base_url=server.url) as http:
        for stale in (expired, revoked):
            refused = http.post("/platform/events", json=conversion(email),
                                headers={"Authorization": f"Bearer {stale}"})
            assert refused.status_code == 401, refused.text
    with server.client(token) as api:
        records = listed(api, 2)
        assert [r["status"] for r in records] == [401, 401]
        replayed = api.post(f"/rdevents/v1/requests/{records[0]['uuid']}/replay").json()
        assert replayed["status"] == 200, replayed
        assert api.get(f"/platform/contacts/email:{email}").status_code == 200
    with server.client(other_token) as other:
        assert other.get("/rdevents/v1/requests").json()["requests"] == []
    assert not any(email.encode() in record.request_body
                   for record in anonymous_records(server))


def test_an_unread_body_past_the_log_s_cap_is_kept_cut(own_server):
    server = own_server(request_log_max_body_bytes=40)
    account_id, token = server.new_account()
    expired = server.call(issue_token(server.store, account_id, expires_in=-60))
    body = orjson.dumps(conversion(new_email()))
    with httpx.Client(base_url=server.url) as http:
        assert http.post("/platform/events", content=body, headers={
            "Authorization": f"Bearer {expired}", "Content-Type": "application/json"}
        ).status_code == 401
    with server.client(token) as api:
        record = api.get(f"/rdevents/v1/requests/{listed(api, 1)[0]['uuid']}").json()
        assert record["replayable"] is False
        assert record["request_body_truncated"] is True


SECRETS = {"token": "rdv_TOKEN-VALUE-9f8e7d", "cookie": "COOKIE-VALUE-1a2b3c",
           "key": "rdk_KEY-VALUE-4d5e6f", "header_key": "HEADER-KEY-7a8b9c",
           "secret": "WEBHOOK-SECRET-0a1b2c"}


def test_no_credential_is_stored(own_server, receiver):
    server = own_server(request_log="all", webhook_allowed_networks=LOOPBACK)
    account_id, token = server.new_account()
    key = server.call(issue_api_key(server.store, account_id))
    client_id, client_secret = server.call(create_app(server.store, account_id,
                                                      "https://app.example/callback"))
    app = server.call(server.store.find_app(client_id))
    code = server.call(issue_code(server.store, app))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        headers = {"Cookie": f"session={SECRETS['cookie']}; theme=dark",
                   "X-Api-Key": SECRETS["header_key"]}
        # A bad token, and a good one with a cookie and a key header beside it.
        http.post("/platform/events", json={}, headers={
            "Authorization": f"Bearer {SECRETS['token']}", **headers})
        http.post("/platform/events", json={}, headers={"Authorization": f"Bearer {token}",
                                                        **headers})
        # API keys in the query: an unknown one, and a good one with a bad body.
        http.post("/platform/conversions", params={"api_key": SECRETS["key"]}, json={})
        http.post("/platform/conversions", params={"api_key": key}, json={})
        # OAuth: the code, the client secret, then the tokens answered, refreshed, revoked.
        tokens = http.post("/auth/token", json={"client_id": client_id,
                                                "client_secret": client_secret, "code": code})
        assert tokens.status_code == 200, tokens.text
        access, refresh = tokens.json()["access_token"], tokens.json()["refresh_token"]
        http.post("/auth/token", data={"client_id": client_id, "client_secret": client_secret,
                                       "refresh_token": refresh})
        http.post("/auth/revoke", data={"token": access, "token_type_hint": "access_token"})
        # A webhook with a secret of its own, and the list that shows it.
        created = http.post("/integrations/webhooks", headers={"Authorization": f"Bearer {token}"},
                            json={"event_type": "WEBHOOK.CONVERTED", "url": receiver.url,
                                  "secret": SECRETS["secret"]})
        assert created.status_code == 201, created.text
        http.get("/integrations/webhooks", headers={"Authorization": f"Bearer {token}"})
    secrets = [*SECRETS.values(), token, key, client_secret, code, access, refresh]
    rows = stored_rows(server, 9)
    stored = repr(rows)
    assert [secret for secret in secrets if secret in stored] == []
    assert "[redacted]" in stored and client_id in stored  # not everything was taken out
    by_path = {}
    for summary in server.call(server.store.list_requests(account_id, None, 0, 100)):
        by_path.setdefault(summary.path, summary)
    webhook = server.call(
        server.store.get_request(account_id, by_path["/integrations/webhooks"].uuid))
    assert webhook.body_redacted and not webhook.replayable


# --- caps and retention ---------------------------------------------------------------------------


def test_an_account_and_the_anonymous_keep_only_their_newest(own_server):
    server = own_server(request_log_max_per_account=3, request_log_max_anonymous=2)
    _, token = server.new_account()
    missing = [str(uuid.uuid4()) for _ in range(5)]
    with server.client(token) as api, httpx.Client(base_url=server.url) as anonymous:
        for event_uuid in missing:
            assert api.get(f"/platform/events/{event_uuid}").status_code == 404
            assert anonymous.get(f"/platform/events/{event_uuid}").status_code == 401
        wait_until(lambda: len(anonymous_records(server)) == 2 and len(
            api.get("/rdevents/v1/requests").json()["requests"]) == 3, timeout=10)
        newest = [f"/platform/events/{u}" for u in reversed(missing)]
        assert [r["path"] for r in api.get("/rdevents/v1/requests").json()["requests"]] == \
            newest[:3]
    assert [r.path for r in anonymous_records(server)] == newest[:2]
    assert len(server.call(server.store.fetch("SELECT id FROM request_log"))) == 5


def old_record(account_id: int | None, received_at: str) -> LoggedRequest:
    return LoggedRequest(
        uuid=str(uuid.uuid4()), account_id=account_id, received_at=received_at, method="POST",
        path="/platform/events", query="", status=400, duration_ms=1.5, request_id="old",
        client_address="127.0.0.1", user_agent=None, headers={}, request_body=b"{}",
        request_body_size=2, response_body=b"{}", response_body_size=2, body_redacted=False,
        error_types=("BAD_REQUEST",))


def test_records_past_the_retention_are_pruned_in_the_background(own_server):
    first = own_server(request_log_retention_days=1)
    account_id, token = first.new_account()
    old, recent = old_record(account_id, "2020-01-01T00:00:00.000000Z"), \
        old_record(None, "2999-01-01T00:00:00.000000Z")
    first.call(first.store.add_requests([old, recent], 10, 10))
    first.stop()
    # A server prunes when it starts, then every ten minutes.
    second = own_server(request_log_retention_days=1)
    wait_until(lambda: second.call(second.store.get_request(account_id, old.uuid)) is None,
               timeout=10)
    assert second.call(second.store.get_request(None, recent.uuid)) == recent
    with second.client(token) as api:
        assert api.get(f"/rdevents/v1/requests/{old.uuid}").status_code == 404


# --- modes ----------------------------------------------------------------------------------------


def test_all_keeps_accepted_requests_too(own_server):
    server = own_server(request_log="all")
    _, token = server.new_account()
    with server.client(token) as api:
        accepted = api.send_event(conversion(new_email()))
        assert accepted.status_code == 200
        assert api.send_event({"event_type": "NOPE"}).status_code == 400
        listed(api, 2)
        (kept,) = api.get("/rdevents/v1/requests", params={"status": "accepted"}).json()[
            "requests"]
        record = api.get(f"/rdevents/v1/requests/{kept['uuid']}").json()
        assert (record["status"], record["response_body"], record["error_types"]) == (
            200, accepted.json(), [])
        assert [r["status"] for r in api.get("/rdevents/v1/requests",
                                             params={"status": "rejected"}).json()["requests"]] \
            == [400]
        # Extension routes are not RD's: not logged.
        assert {r["path"] for r in listed(api, 2)} == {"/platform/events"}


def test_off_keeps_nothing(own_server):
    server = own_server(request_log="off")
    _, token = server.new_account()
    with server.client(token) as api:
        assert api.send_event({"event_type": "NOPE"}).status_code == 400
        assert server.call(server.app.state.request_log.flush()) is None
        assert server.call(server.store.fetch("SELECT count(*) FROM request_log")) == [(0,)]
        assert api.get("/rdevents/v1/requests").json()["requests"] == []


def test_a_500_has_a_request_id_and_is_counted():
    """The observer is outside Starlette's error handling: an unexpected error's 500 (RD's
    SERVICE_UNAVAILABLE body) carries a request id too."""
    import asyncio

    from starlette.routing import Route

    from rdevents import metrics
    from rdevents.http.errors import EXCEPTION_HANDLERS
    from rdevents.http.observe import ObservedApp

    async def boom(request: Any) -> Any:
        raise RuntimeError("a defect")

    app = ObservedApp(None, False, routes=[Route("/boom", boom)],
                      exception_handlers=EXCEPTION_HANDLERS)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/boom", headers={"X-Request-Id": "boom-1"})

    before = metrics.HTTP_REQUESTS.labels("/boom", "GET", "500")._value.get()
    response = asyncio.run(call())
    metrics.flush()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json() == {"errors": {"error_type": "SERVICE_UNAVAILABLE",
                                          "error_message": "Service temporarily unavailable"}}
    assert metrics.HTTP_REQUESTS.labels("/boom", "GET", "500")._value.get() == before + 1
