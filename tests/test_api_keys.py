"""API keys and POST /platform/conversions?api_key=: CONVERSION only, CORS on this route only."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from conftest import conversion, event, let_token_cache_lapse
from rdevents.tokens import MAX_API_KEYS, hash_secret, issue_api_key

INVALID_KEY = {"errors": {"error_type": "UNAUTHORIZED", "error_message": "Invalid API key."}}
CORS = {"access-control-allow-origin": "*",
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "Content-Type, Idempotency-Key",
        "access-control-expose-headers": "Idempotent-Replayed"}


def new_email() -> str:
    return f"key-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def keyed(server):
    """(bearer client, API key) of one fresh account."""
    account_id, token = server.new_account()
    key = server.call(issue_api_key(server.store, account_id))
    with server.client(token) as client:
        yield client, key


def send(client, key, body, **params):
    return client.post("/platform/conversions", json=body, params={"api_key": key, **params})


def assert_cors(response) -> None:
    for name, value in CORS.items():
        assert response.headers.get(name) == value, (name, dict(response.headers))


def test_a_conversion_sent_with_an_api_key_is_stored_for_its_account(keyed):
    client, key = keyed
    email = new_email()
    response = send(client, key, conversion(email, name="Ana"))
    assert response.status_code == 200
    assert set(response.json()) == {"event_uuid"}
    assert_cors(response)
    assert client.contact(email).json()["name"] == "Ana"  # the bearer token's account sees it
    stored = client.get(f"/platform/events/{response.json()['event_uuid']}").json()
    assert stored["event_type"] == "CONVERSION"


@pytest.mark.parametrize("event_type", ["OPPORTUNITY", "SALE", "CHAT_STARTED"])
def test_only_conversions_are_accepted(keyed, event_type):
    client, key = keyed
    email = new_email()
    assert client.send_event(conversion(email)).status_code == 200
    response = send(client, key, event(event_type, email=email, funnel_name="default"))
    assert response.status_code == 400
    assert response.json() == {"errors": [{
        "error_type": "INVALID_OPTION", "error_message": "Must be one of the valid options.",
        "validation_rules": {"valid_options": ["CONVERSION"]}, "path": "$.body.event_type"}]}
    assert_cors(response)
    funnel = client.get(f"/platform/contacts/email:{email}/funnels/default").json()
    assert funnel["opportunity"] is False and funnel["lifecycle_stage"] == "Lead"


def test_an_invalid_conversion_gets_the_validation_errors_with_cors(keyed):
    client, key = keyed
    response = send(client, key, {"event_type": "CONVERSION", "event_family": "CDP",
                                  "payload": {"email": "nope"}})
    assert response.status_code == 400
    assert [e["path"] for e in response.json()["errors"]] == [
        "$.body.payload.conversion_identifier", "$.body.payload.email"]
    assert_cors(response)


@pytest.mark.parametrize("params", [{}, {"api_key": ""}, {"api_key": "rdk_nope"}])
def test_a_missing_or_unknown_key_is_401(keyed, params):
    client, _ = keyed
    email = new_email()
    response = client.post("/platform/conversions", json=conversion(email), params=params)
    assert response.status_code == 401
    assert response.json() == INVALID_KEY
    assert_cors(response)
    assert client.contact(email).status_code == 404


def test_a_bearer_token_is_no_api_key(server):
    _, token = server.new_account()
    with server.client() as anonymous:
        response = send(anonymous, token, conversion(new_email()))
    assert response.status_code == 401 and response.json() == INVALID_KEY


def test_a_deactivated_key_is_401_until_activated_again(server, keyed):
    client, key = keyed
    assert server.call(server.store.set_api_key_active(hash_secret(key), False)) is True
    let_token_cache_lapse(server)
    assert send(client, key, conversion(new_email())).json() == INVALID_KEY
    assert server.call(server.store.set_api_key_active(hash_secret(key), True)) is True
    let_token_cache_lapse(server)
    assert send(client, key, conversion(new_email())).status_code == 200


def test_at_most_five_keys_an_account(server):
    account_id, _ = server.new_account()
    keys = [server.call(issue_api_key(server.store, account_id)) for _ in range(MAX_API_KEYS)]
    assert all(keys) and len(set(keys)) == MAX_API_KEYS
    assert server.call(issue_api_key(server.store, account_id)) is None


def test_preflight_is_answered_on_the_conversions_route_only(server):
    with server.client() as anonymous:
        preflight = anonymous.options("/platform/conversions", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 204
        assert_cors(preflight)
        for method, path in (("OPTIONS", "/platform/events"), ("POST", "/platform/events"),
                             ("OPTIONS", "/platform/events/batch")):
            response = anonymous.request(method, path, headers={"Origin": "https://x.example"})
            assert "access-control-allow-origin" not in response.headers, (method, path)


def test_cli_creates_at_most_five_keys_and_deactivates_them(tmp_path):
    def rdevents(*args):
        return subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)

    assert rdevents("accounts", "create", "shop").returncode == 0
    created = [rdevents("apikeys", "create", "--account", "shop") for _ in range(MAX_API_KEYS)]
    assert all(r.returncode == 0 and r.stdout.startswith("rdk_") and r.stdout.count("\n") == 1
               for r in created)
    sixth = rdevents("apikeys", "create", "--account", "shop")
    assert sixth.returncode == 1 and "the most an account" in sixth.stderr
    key = created[0].stdout.strip()
    assert rdevents("apikeys", "deactivate", key).returncode == 0
    assert rdevents("apikeys", "activate", key).returncode == 0
    assert rdevents("apikeys", "deactivate", "rdk_unknown").returncode == 1


def test_a_wrong_method_on_the_conversions_route_still_answers_cors(server):
    with server.client() as anonymous:
        response = anonymous.get("/platform/conversions")
    assert response.status_code == 405
    assert_cors(response)
