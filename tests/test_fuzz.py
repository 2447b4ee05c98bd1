"""Property tests: whatever arrives at the write endpoints, the answer is a JSON 2xx/4xx with one of
the documented shapes, never a 5xx."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdevents.catalogue import EVENT_TYPES
from receiver import Receiver
from strategies import CLEAN_JSON, CLEAN_TEXT, json_values, near_valid_events

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
WRITE_PATHS = ["/platform/events", "/platform/events/batch"]
ITEM_KEYS = {"error_type", "error_message", "validation_rules", "path"}
# The validation error types the OpenAPI document promises (ValidationErrors schema).
VALIDATION_TYPES = {"CANNOT_BE_NULL", "CANNOT_BE_BLANK", "INVALID_DATA_TYPE", "INVALID_OPTION",
                    "INVALID_FORMAT", "TOO_LONG", "RESOURCE_NOT_FOUND"}
REQUEST_ERROR_TYPES = {"BAD_REQUEST", "REQUEST_ENTITY_TOO_LARGE"}


def body_of(response) -> Any:
    assert response.headers.get("content-type", "").split(";")[0].strip() == \
        "application/json", (response.status_code, response.text[:200])
    return response.json()


def assert_validation_errors(body: Any, path_prefix: str) -> None:
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    for item in errors:
        assert isinstance(item, dict) and set(item) == ITEM_KEYS, item
        assert item["error_type"] in VALIDATION_TYPES, item
        assert isinstance(item["error_message"], str) and item["error_message"], item
        assert isinstance(item["validation_rules"], dict), item
        assert isinstance(item["path"], str) and item["path"].startswith(path_prefix), item


def assert_request_error(body: Any) -> None:
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert isinstance(errors, dict) and set(errors) == {"error_type", "error_message"}, body
    assert errors["error_type"] in REQUEST_ERROR_TYPES, body


def assert_success(path: str, body: Any, count: int | None = None) -> list[str]:
    if path == "/platform/events":
        assert set(body) == {"event_uuid"}, body
        uuids = [body["event_uuid"]]
    else:
        assert set(body) == {"event_batch_uuid", "events"}, body
        uuid.UUID(body["event_batch_uuid"])
        uuids = [item["event_uuid"] for item in body["events"]]
        if count is not None:
            assert len(uuids) == count
    for value in uuids:
        assert str(uuid.UUID(value)) == value
    return uuids


def assert_well_formed(path: str, response) -> None:
    """Any answer: never 5xx, always JSON, and one of the documented shapes."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    body = body_of(response)
    if response.status_code == 200:
        assert_success(path, body)
    else:
        assert response.status_code in (400, 413), (response.status_code, body)
        if isinstance(body.get("errors"), list):
            assert_validation_errors(body, "$.body")
        else:
            assert_request_error(body)


def post_bytes(api, path: str, content: bytes):
    return api.post(path, content=content, headers={"Content-Type": "application/json"})


# --- arbitrary JSON and arbitrary bytes -----------------------------------------------------------


@pytest.mark.parametrize("path", WRITE_PATHS)
@FUZZ
@given(value=json_values())
def test_arbitrary_json(api, path, value):
    response = post_bytes(api, path, json.dumps(value).encode())
    assert_well_formed(path, response)
    expected_container = dict if path == "/platform/events" else list
    if not isinstance(value, expected_container):
        assert response.status_code == 400
        assert body_of(response)["errors"]["error_type"] == "BAD_REQUEST"


@pytest.mark.parametrize("path", WRITE_PATHS)
@FUZZ
@given(content=st.binary(max_size=300)
       | st.builds(lambda v, cut: json.dumps(v).encode()[:cut], CLEAN_JSON,
                   st.integers(0, 200)))
def test_arbitrary_bytes(api, path, content):
    assert_well_formed(path, post_bytes(api, path, content))


# --- near-valid events ----------------------------------------------------------------------------


@pytest.fixture
def fuzz_api(api):
    """An account where the examples' contact exists, so that qualification events can pass."""
    conversion = copy.deepcopy(EVENT_TYPES["CONVERSION"].example)
    assert api.send_event(conversion).status_code == 200
    return api


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def assert_stored_as_sent(api, event_uuid: str, sent: dict) -> None:
    stored = api.get(f"/platform/events/{event_uuid}")
    assert stored.status_code == 200, stored.text
    assert canonical(stored.json()["payload"]) == canonical(sent["payload"])


@FUZZ
@given(event=near_valid_events())
def test_near_valid_event(fuzz_api, event):
    response = fuzz_api.send_event(event)
    assert response.status_code in (200, 400), (response.status_code, response.text[:300])
    body = body_of(response)
    if response.status_code == 200:
        (event_uuid,) = assert_success("/platform/events", body)
        assert_stored_as_sent(fuzz_api, event_uuid, event)
    else:
        assert_validation_errors(body, "$.body.")


@FUZZ
@given(events=st.lists(near_valid_events(), min_size=1, max_size=3))
def test_near_valid_batch(fuzz_api, events):
    response = fuzz_api.send_batch(events)
    assert response.status_code in (200, 400), (response.status_code, response.text[:300])
    body = body_of(response)
    if response.status_code == 200:
        uuids = assert_success("/platform/events/batch", body, count=len(events))
        for event_uuid, event in zip(uuids, events, strict=True):
            assert_stored_as_sent(fuzz_api, event_uuid, event)
    else:
        assert_validation_errors(body, "$.body[")
        indices = {int(item["path"][len("$.body["):].split("]")[0]) for item in body["errors"]}
        assert indices <= set(range(len(events)))


# --- the contacts, fields and webhooks APIs -------------------------------------------------------

MANAGEMENT_KEYS = ["email", "name", "tags", "legal_bases", "cf_plan", "lifecycle_stage",
                   "opportunity", "contact_owner_email", "api_identifier", "data_type",
                   "presentation_type", "label", "validation_rules", "event_type", "entity_type",
                   "url", "http_method", "include_relations", "event_identifiers", "secret"]
MANAGEMENT_BODIES = st.dictionaries(st.sampled_from(MANAGEMENT_KEYS) | CLEAN_TEXT, CLEAN_JSON,
                                    max_size=6) | CLEAN_JSON


def assert_management_answer(response) -> None:
    """Never 5xx, always JSON; an error is RD's request error or its attribute-keyed errors."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    body = body_of(response)
    if response.status_code in (200, 201):
        assert isinstance(body, dict)
        return
    assert response.status_code in (400, 401, 404), (response.status_code, body)
    assert set(body) == {"errors"} and isinstance(body["errors"], dict), body
    errors = body["errors"]
    if set(errors) == {"error_type", "error_message"} and isinstance(errors["error_type"], str):
        return
    for problems in errors.values():
        by_locale = problems.values() if isinstance(problems, dict) else [problems]
        for listed in by_locale:
            assert isinstance(listed, list) and listed, body
            for item in listed:
                assert set(item) - {"path"} == {"error_type", "error_message"}, body


@pytest.mark.parametrize("method, path", [
    ("POST", "/platform/contacts"), ("PATCH", "/platform/contacts/email:fuzz@example.com"),
    ("PUT", "/platform/contacts/email:fuzz@example.com/funnels/default"),
    ("POST", "/platform/contacts/email:fuzz@example.com/tag"),
    ("POST", "/platform/contacts/fields"), ("PATCH", "/platform/contacts/fields/{field}"),
    ("POST", "/integrations/webhooks"), ("PUT", "/integrations/webhooks/{webhook}")])
@FUZZ
@given(body=MANAGEMENT_BODIES)
def test_management_bodies(api, receiver, method, path, body):
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        body["url"] = receiver.url  # the server checks a webhook's URL: never a fuzzed one
    path = path.format(field=ensure_field(api), webhook=ensure_webhook(api, receiver))
    assert_management_answer(api.request(method, path, content=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}))


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def ensure_field(api) -> str:
    fields = [f for f in api.get("/platform/contacts/fields").json()["fields"]
              if f["custom_field"]]
    if fields:
        return fields[0]["uuid"]
    return api.post("/platform/contacts/fields", json={
        "api_identifier": "cf_fuzzed", "data_type": "STRING", "presentation_type": "TEXT_INPUT",
        "name": {"pt-BR": "x"}, "label": {"pt-BR": "x"}}).json()["uuid"]


def ensure_webhook(api, receiver: Receiver) -> str:
    webhooks = api.get("/integrations/webhooks").json()["webhooks"]
    if webhooks:
        return webhooks[0]["uuid"]
    return api.post("/integrations/webhooks", json={
        "event_type": "WEBHOOK.MARKED_OPPORTUNITY", "url": receiver.url}).json()["uuid"]
