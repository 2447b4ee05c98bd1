"""`Idempotency-Key` on the write routes, on both backends: a request sent again with its key
is answered byte for byte as the first was and stores nothing again; another body with the same
key is refused; what stored nothing (400, 429) does not keep the key; keys are an account's
own, forgotten after their retention; and of concurrent requests with one key, exactly one is
stored, also from two server processes on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import Server, conversion, event
from rdevents.tokens import issue_api_key
from serverproc import ServerProcess

KEY_HEADER = "Idempotency-Key"


def keyed(key: str) -> dict[str, str]:
    return {KEY_HEADER: key}


def history(api: httpx.Client, email: str) -> list[dict]:
    response = api.get(f"/platform/contacts/email:{email}/events")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_repeated_event_is_answered_as_the_first_and_stored_once(api):
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    first = api.post("/platform/events", json=conversion(email), headers=keyed(key))
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    again = api.post("/platform/events", json=conversion(email), headers=keyed(key))
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert len(history(api, email)) == 1


def test_the_same_json_value_written_otherwise_is_the_same_request(api):
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    body = conversion(email, name="Ana")
    first = api.post("/platform/events", json=body, headers=keyed(key))
    reordered = {"payload": dict(reversed(list(body["payload"].items()))),
                 "event_family": "CDP", "event_type": "CONVERSION"}
    again = api.post("/platform/events", content=b"  " + httpx.Request(
        "POST", "/", json=reordered).content, headers={
            **keyed(key), "Content-Type": "application/json"})
    assert again.status_code == 200
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


def test_a_repeated_batch_is_answered_as_the_first_and_stored_once(api):
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    batch = [conversion(email), event("OPPORTUNITY", email=email, funnel_name="default")]
    first = api.post("/platform/events/batch", json=batch, headers=keyed(key))
    assert first.status_code == 200, first.text
    again = api.post("/platform/events/batch", json=batch, headers=keyed(key))
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert len(history(api, email)) == 2


def test_a_repeated_conversion_with_an_api_key_is_answered_with_cors(server: Server):
    account_id, _ = server.new_account()
    api_key = server.call(issue_api_key(server.store, account_id))
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answers = [http.post("/platform/conversions", params={"api_key": api_key},
                             json=conversion(email), headers=keyed(key)) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[1].content == answers[0].content
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("second", ["other body", "other invalid body", "other route"])
def test_the_same_key_with_another_request_is_refused(api, second):
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    assert api.post("/platform/events", json=conversion(email),
                    headers=keyed(key)).status_code == 200
    if second == "other body":
        refused = api.post("/platform/events", json=conversion(email, name="Other"),
                           headers=keyed(key))
    elif second == "other invalid body":
        refused = api.post("/platform/events", json=conversion("not an e-mail"),
                           headers=keyed(key))
    else:
        refused = api.post("/platform/events/batch", json=[conversion(email)],
                           headers=keyed(key))
    assert refused.status_code == 422
    assert refused.json() == {"errors": {
        "error_type": "IDEMPOTENCY_KEY_REUSED",
        "error_message": "This Idempotency-Key was used with another request (another route "
                         "or body): use a new key for a new request."}}
    assert len(history(api, email)) == 1


def test_keys_are_each_accounts_own(server: Server):
    key = str(uuid.uuid4())
    answers = []
    for _ in range(2):
        _, token = server.new_account()
        with server.client(token) as api:
            answers.append(api.post("/platform/events", json=conversion("same@keys.example"),
                                    headers=keyed(key)))
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].content != answers[1].content
    assert "idempotent-replayed" not in answers[1].headers


def test_a_rejected_request_keeps_no_key(api):
    """A 400 stored nothing: the key stays free, for the request corrected."""
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    sale = event("SALE", email=email, funnel_name="default", value=10)
    unknown = api.post("/platform/events", json=sale, headers=keyed(key))
    assert unknown.status_code == 400  # no such contact yet
    assert api.post("/platform/events", json=conversion(email)).status_code == 200
    stored = api.post("/platform/events", json=sale, headers=keyed(key))
    assert stored.status_code == 200, stored.text
    assert "idempotent-replayed" not in stored.headers


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_refused(api, value):
    response = api.post("/platform/events", json=conversion("a@keys.example"),
                        headers={KEY_HEADER: value.encode()})
    assert response.status_code == 400
    assert response.json() == {"errors": {
        "error_type": "INVALID_FORMAT",
        "error_message": "The Idempotency-Key header must be 1 to 255 visible ASCII "
                         "characters."}}


def test_a_rate_limited_request_keeps_no_key(own_server):
    server = own_server(rate_limits=True)
    account_id, token = server.new_account()
    server.call(server.store.set_account_limits(account_id, None, 1, None))
    key = str(uuid.uuid4())
    with server.client(token) as api:
        assert api.post("/platform/events", json=conversion("a@keys.example")).status_code == 200
        limited = api.post("/platform/events", json=conversion("b@keys.example"),
                           headers=keyed(key))
        assert limited.status_code == 429
        server.call(server.store.set_account_limits(account_id, None, 0, None))
        retried = api.post("/platform/events", json=conversion("b@keys.example"),
                           headers=keyed(key))
        assert retried.status_code == 200, retried.text
        assert "idempotent-replayed" not in retried.headers
        assert len(history(api, "b@keys.example")) == 1


def test_a_key_is_forgotten_after_its_retention(own_server):
    server = own_server(idempotency_retention_hours=0)
    _, token = server.new_account()
    key = str(uuid.uuid4())
    with server.client(token) as api:
        assert api.post("/platform/events", json=conversion("a@keys.example"),
                        headers=keyed(key)).status_code == 200
        server.call(server.app.state.key_pruner.prune())
        other = api.post("/platform/events", json=conversion("b@keys.example"),
                         headers=keyed(key))
        assert other.status_code == 200, other.text


def fire(url: str, headers: dict, calls: int, body: dict, key: str) -> list[httpx.Response]:
    """The same keyed request from `calls` threads at once."""
    barrier = threading.Barrier(calls)

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            barrier.wait()
            return http.post("/platform/events", json=body, headers=keyed(key))

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(send, range(calls)))


def assert_stored_once(answers: list[httpx.Response]) -> None:
    """Each answer is the one stored event's (the first, or a replay) or a 409 while it was
    being stored; at least one is the first's."""
    ok = [a for a in answers if a.status_code == 200]
    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    assert len({a.content for a in ok}) == 1
    assert len([a for a in ok if "idempotent-replayed" not in a.headers]) == 1
    for refused in (a for a in answers if a.status_code == 409):
        assert refused.json()["errors"]["error_type"] == "IDEMPOTENCY_KEY_IN_USE"
        assert refused.headers["retry-after"] == "1"


def test_concurrent_requests_with_one_key_store_one_event(server: Server):
    _, token = server.new_account()
    email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
    answers = fire(server.url, {"Authorization": f"Bearer {token}"}, 16, conversion(email),
                   key)
    assert_stored_once(answers)
    with server.client(token) as api:
        assert len(history(api, email)) == 1


def test_concurrent_requests_with_one_key_to_two_processes_store_one_event(tmp_path,
                                                                           postgres_url):
    first = ServerProcess(tmp_path, postgres_url).start()
    second = first.sibling().start()
    try:
        for round_ in range(5):
            email, key = f"{uuid.uuid4().hex[:8]}@keys.example", str(uuid.uuid4())
            body = conversion(email, round=round_)
            with ThreadPoolExecutor(2) as pool:
                both = list(pool.map(lambda s, b=body, k=key: fire(s.url, s.headers, 8, b, k),
                                     [first, second]))
            assert_stored_once(both[0] + both[1])
            with first.client() as api:
                assert len(history(api, email)) == 1
    finally:
        first.stop()
        second.stop()
