"""POST /platform/events/batch over real HTTP: order, atomicity, in-batch contacts, limits."""

from __future__ import annotations

import copy
import re
import threading

import orjson
import pytest

from conftest import Server, conversion, event, sqlite_settings
from rdevents.catalogue import EVENT_TYPES

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LEAD_NOT_FOUND = {"errors": {"error_type": "RESOURCE_NOT_FOUND",
                             "error_message": "Lead not found."}}


def example(event_type: str, email: str, **changes) -> dict:
    body = copy.deepcopy(EVENT_TYPES[event_type].example)
    body["payload"].update(email=email, **changes)
    return body


def opportunity(email: str) -> dict:
    return event("OPPORTUNITY", email=email, funnel_name="default")


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def rejected(response) -> list[dict]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, list)
    return errors


def contact_uuid(api, email: str) -> str:
    return ok(api.contact(email))["uuid"]


def absent(api, email: str) -> bool:
    response = api.contact(email)
    return response.status_code == 404 and response.json() == LEAD_NOT_FOUND


def all_events(api, uuid: str) -> list[dict]:
    events, page = [], 1
    while True:
        chunk = ok(api.get(f"/platform/contacts/{uuid}/events",
                           params={"page_size": 100, "page": page, "order": "created_at:asc"}))
        events += chunk
        if len(chunk) < 100:
            return events
        page += 1


# --- success --------------------------------------------------------------------------------------


def test_success_body_lists_event_uuids_in_request_order(api):
    batch = [
        conversion(" A@Example.com ", name="A"),
        example("CHAT_STARTED", "a@example.com"),
        example("ORDER_PLACED", "b@example.com"),
        opportunity("a@example.com"),
        example("MEDIA_PLAYBACK_STARTED", "c@example.com"),
        event("SALE", email="B@example.com", funnel_name="default", value=10.5),
        example("ECOMMERCE_ORDER_PLACED", "c@example.com", unknown_key={"kept": True}),
    ]
    response = ok(api.send_batch(batch))
    assert sorted(response) == ["event_batch_uuid", "events"]
    assert UUID.match(response["event_batch_uuid"])
    assert all(sorted(e) == ["event_uuid"] for e in response["events"])
    uuids = [e["event_uuid"] for e in response["events"]]
    assert len(uuids) == len(batch) and len(set(uuids)) == len(batch)
    assert response["event_batch_uuid"] not in uuids
    contacts = {email: contact_uuid(api, email)
                for email in ("a@example.com", "b@example.com", "c@example.com")}
    for sent, event_uuid in zip(batch, uuids, strict=True):
        stored = ok(api.get(f"/platform/events/{event_uuid}"))
        assert UUID.match(event_uuid)
        assert stored["event_uuid"] == event_uuid
        assert stored["event_batch_uuid"] == response["event_batch_uuid"]
        assert (stored["event_type"], stored["event_family"]) == (sent["event_type"], "CDP")
        assert stored["payload"] == sent["payload"]
        assert stored["contact_uuid"] == contacts[sent["payload"]["email"].strip().lower()]


def test_each_batch_has_its_own_batch_uuid(api):
    first = ok(api.send_batch([conversion("one@example.com")]))
    second = ok(api.send_batch([conversion("one@example.com")]))
    assert first["event_batch_uuid"] != second["event_batch_uuid"]
    for response in (first, second):
        stored = ok(api.get(f"/platform/events/{response['events'][0]['event_uuid']}"))
        assert stored["event_batch_uuid"] == response["event_batch_uuid"]


@pytest.mark.parametrize(
    ("types", "funnel"),
    [
        (["OPPORTUNITY"], {"lifecycle_stage": "Lead", "opportunity": True}),
        (["SALE"], {"lifecycle_stage": "Client", "opportunity": False}),
        (["OPPORTUNITY", "SALE", "OPPORTUNITY_LOST"],
         {"lifecycle_stage": "Client", "opportunity": False}),
        (["OPPORTUNITY_LOST", "OPPORTUNITY"], {"lifecycle_stage": "Lead", "opportunity": True}),
    ],
)
def test_a_conversion_earlier_in_the_batch_counts_for_qualification(api, types, funnel):
    batch = [conversion("New@Example.com")] + [
        event(t, email="new@example.com", funnel_name="default") for t in types]
    ok(api.send_batch(batch))
    uuid = contact_uuid(api, "new@example.com")
    assert ok(api.get(f"/platform/contacts/{uuid}/funnels/default")) == {
        **funnel, "contact_owner_email": None, "fit": None, "interest": None}
    assert [e["event_type"] for e in all_events(api, uuid)] == ["CONVERSION", *types]


# --- atomicity ------------------------------------------------------------------------------------


@pytest.fixture
def kept(api) -> str:
    """An existing contact, to show that a rejected batch leaves it untouched."""
    ok(api.send_event(conversion("kept@example.com", name="Kept", tags=["old"])))
    return contact_uuid(api, "kept@example.com")


def assert_untouched(api, kept_uuid: str) -> None:
    contact = ok(api.contact("kept@example.com"))
    assert (contact["name"], contact["tags"]) == ("Kept", ["old"])
    assert ok(api.get(f"/platform/contacts/{kept_uuid}/funnels/default"))["opportunity"] is False
    assert len(all_events(api, kept_uuid)) == 1


INVALID = {"event_type": "CONVERSION", "event_family": "CDP",
           "payload": {"email": "not-an-email"}}


@pytest.mark.parametrize("bad_index", [0, 2, 4])
def test_one_invalid_event_rejects_the_whole_batch(api, kept, bad_index):
    batch = [conversion("kept@example.com", name="Changed", tags=["new"]),
             opportunity("kept@example.com"),
             conversion("fresh1@example.com"),
             example("CHAT_STARTED", "fresh2@example.com")]
    batch.insert(bad_index, INVALID)
    errors = rejected(api.send_batch(batch))
    assert sorted((e["error_type"], e["path"]) for e in errors) == [
        ("CANNOT_BE_NULL", f"$.body[{bad_index}].payload.conversion_identifier"),
        ("INVALID_FORMAT", f"$.body[{bad_index}].payload.email"),
    ]
    assert_untouched(api, kept)
    assert absent(api, "fresh1@example.com") and absent(api, "fresh2@example.com")


def test_an_unknown_contact_rejects_the_whole_batch(api, kept):
    batch = [conversion("kept@example.com", name="Changed", tags=["new"]),
             opportunity("kept@example.com"),
             conversion("fresh@example.com"),
             event("SALE", email="ghost@example.com", funnel_name="default")]
    errors = rejected(api.send_batch(batch))
    assert [(e["error_type"], e["path"]) for e in errors] == [
        ("RESOURCE_NOT_FOUND", "$.body[3].payload.email")]
    assert_untouched(api, kept)
    assert absent(api, "fresh@example.com") and absent(api, "ghost@example.com")


def test_every_error_of_every_element_is_reported(api):
    batch = [
        conversion("valid@example.com"),
        {"event_type": "NOPE", "event_family": "XYZ"},
        {"event_type": "CONVERSION", "event_family": "CDP",
         "payload": {"email": "bad", "tags": "x",
                     "legal_bases": [{"category": "communications", "type": "consent"}]}},
        example("ORDER_PLACED", "o@example.com", cf_order_id=None, cf_order_total_items="2"),
        example("CHAT_STARTED", "ok@example.com"),
        {"event_family": "CDP", "payload": []},
    ]
    errors = rejected(api.send_batch(batch))
    got = [(e["error_type"], e["path"]) for e in errors]
    assert sorted(got) == sorted([
        ("INVALID_OPTION", "$.body[1].event_type"),
        ("INVALID_OPTION", "$.body[1].event_family"),
        ("CANNOT_BE_NULL", "$.body[1].payload"),
        ("CANNOT_BE_NULL", "$.body[2].payload.conversion_identifier"),
        ("INVALID_FORMAT", "$.body[2].payload.email"),
        ("INVALID_DATA_TYPE", "$.body[2].payload.tags"),
        ("CANNOT_BE_NULL", "$.body[2].payload.legal_bases[0].status"),
        ("CANNOT_BE_NULL", "$.body[3].payload.cf_order_id"),
        ("INVALID_DATA_TYPE", "$.body[3].payload.cf_order_total_items"),
        ("CANNOT_BE_NULL", "$.body[5].event_type"),
        ("INVALID_DATA_TYPE", "$.body[5].payload"),
    ])
    indexes = [int(re.match(r"^\$\.body\[(\d+)\]", path).group(1)) for _, path in got]
    assert indexes == sorted(indexes)  # reported element by element
    event_type_error = next(e for e in errors if e["path"] == "$.body[1].event_type")
    assert event_type_error["validation_rules"] == {"valid_options": list(EVENT_TYPES)}
    for email in ("valid@example.com", "o@example.com", "ok@example.com"):
        assert absent(api, email)


def test_a_qualification_before_the_conversion_of_its_contact_rejects_everything(api):
    batch = [opportunity("y@example.com"), conversion("y@example.com")]
    errors = rejected(api.send_batch(batch))
    assert len(errors) == 1
    assert (errors[0]["error_type"], errors[0]["path"]) == (
        "RESOURCE_NOT_FOUND", "$.body[0].payload.email")
    assert "CONVERSION" in errors[0]["error_message"]
    assert absent(api, "y@example.com")


def test_every_unknown_contact_of_a_batch_is_reported(api):
    batch = [opportunity("u1@example.com"),
             conversion("known@example.com"),
             event("SALE", email="u2@example.com", funnel_name="default"),
             event("OPPORTUNITY_LOST", email="U3@example.com", funnel_name="default"),
             opportunity("known@example.com"),
             opportunity("u1@example.com")]
    errors = rejected(api.send_batch(batch))
    assert [(e["error_type"], e["path"]) for e in errors] == [
        ("RESOURCE_NOT_FOUND", f"$.body[{i}].payload.email") for i in (0, 2, 3, 5)]
    assert "u3@example.com" in errors[2]["error_message"]
    for email in ("u1@example.com", "known@example.com", "u2@example.com", "u3@example.com"):
        assert absent(api, email)


def test_unknown_contacts_are_reported_with_the_validation_errors(api):
    """An unknown contact is an error of its element too, so it is listed even when another
    element of the batch is invalid (DESIGN: a rejected batch lists every error)."""
    batch = [opportunity("ghost@example.com"), INVALID]
    errors = rejected(api.send_batch(batch))
    assert sorted((e["error_type"], e["path"]) for e in errors) == [
        ("CANNOT_BE_NULL", "$.body[1].payload.conversion_identifier"),
        ("INVALID_FORMAT", "$.body[1].payload.email"),
        ("RESOURCE_NOT_FOUND", "$.body[0].payload.email"),
    ]


# --- shape and limits -----------------------------------------------------------------------------


def test_empty_batch_is_blank(api):
    assert rejected(api.send_batch([])) == [{
        "error_type": "CANNOT_BE_BLANK", "error_message": "Can not be blank.",
        "validation_rules": {}, "path": "$.body"}]


@pytest.mark.parametrize("element", ["CONVERSION", 1, None, True, [], [conversion("x@y.com")]])
def test_non_object_element_is_invalid_data_type(api, element):
    errors = rejected(api.send_batch([conversion("first@example.com"), element]))
    assert errors == [{"error_type": "INVALID_DATA_TYPE",
                       "error_message": "Must be of type 'OBJECT'.",
                       "validation_rules": {"data_type": "OBJECT"}, "path": "$.body[1]"}]
    assert absent(api, "first@example.com")


@pytest.mark.parametrize("body", [orjson.dumps(conversion("obj@example.com")), b"{}",
                                  b'"batch"', b"3", b"null"])
def test_a_body_that_is_not_an_array_is_a_bad_request(api, body):
    response = api.post("/platform/events/batch", content=body,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    errors = response.json()["errors"]
    assert isinstance(errors, dict)
    assert errors["error_type"] == "BAD_REQUEST"
    assert "array" in errors["error_message"]
    assert absent(api, "obj@example.com")


def too_long(limit: int) -> list[dict]:
    return [{"error_type": "TOO_LONG", "error_message": f"Must contain at most {limit} events.",
             "validation_rules": {"max_items": limit}, "path": "$.body"}]


def test_batch_limit_is_configurable(tmp_path):
    small = Server(sqlite_settings(tmp_path, max_batch_events=3)).start()
    try:
        _, token = small.new_account()
        with small.client(token) as client:
            over = [conversion(f"over{i}@example.com") for i in range(4)]
            assert rejected(client.send_batch(over)) == too_long(3)
            assert absent(client, "over0@example.com")
            at_limit = [conversion(f"at{i}@example.com") for i in range(3)]
            assert len(ok(client.send_batch(at_limit))["events"]) == 3
    finally:
        small.stop()


def test_default_batch_limit_is_a_thousand(api):
    # The size is checked before the elements, so empty objects suffice.
    assert rejected(api.send_batch([{}] * 1001)) == too_long(1000)


# --- concurrency ----------------------------------------------------------------------------------

THREADS, ROUNDS = 20, 4


def test_concurrent_batches_and_single_events_are_all_stored(server, api):
    token = api.headers["Authorization"].removeprefix("Bearer ")
    barrier = threading.Barrier(THREADS)
    answers: dict[int, list] = {}

    def worker(n: int) -> None:
        own = f"t{n}@example.com"
        statuses, uuids = [], []
        with server.client(token) as client:
            barrier.wait()
            for r in range(ROUNDS):
                response = client.send_batch([conversion(own, name=f"r{r}"),
                                              conversion("shared@example.com"),
                                              example("CHAT_STARTED", own),
                                              opportunity(own)])
                statuses.append(response.status_code)
                if response.status_code == 200:
                    uuids += [e["event_uuid"] for e in response.json()["events"]]
                response = client.send_event(example("CALL_FINISHED", own))
                statuses.append(response.status_code)
                if response.status_code == 200:
                    uuids.append(response.json()["event_uuid"])
                # a rejected batch in the same commit group must not disturb the others
                response = client.send_batch([conversion(own), opportunity(f"ghost{n}@x.com")])
                statuses.append(response.status_code)
        answers[n] = [statuses, uuids]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == list(range(THREADS))
    all_uuids = []
    for n, (statuses, uuids) in answers.items():
        assert statuses == [200, 200, 400] * ROUNDS, n
        all_uuids += uuids
        events = all_events(api, contact_uuid(api, f"t{n}@example.com"))
        assert [e["event_type"] for e in events] == [
            "CONVERSION", "CHAT_STARTED", "OPPORTUNITY", "CALL_FINISHED"] * ROUNDS
        assert absent(api, f"ghost{n}@x.com")
    assert len(all_uuids) == len(set(all_uuids)) == THREADS * ROUNDS * 5
    shared = all_events(api, contact_uuid(api, "shared@example.com"))
    assert len(shared) == THREADS * ROUNDS
