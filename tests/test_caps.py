"""What one account may hold is bounded: custom fields per account, tags per contact."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BACKENDS, Server, backend_settings, conversion

FIELDS, TAGS = 3, 4


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[Server]:
    settings = backend_settings(request, request.param, tmp_path_factory.mktemp("db"),
                                max_custom_fields=FIELDS, max_tags_per_contact=TAGS)
    running = Server(settings).start()
    yield running
    running.stop()


def new_email() -> str:
    return f"cap-{uuid.uuid4().hex[:10]}@example.com"


def field_count(api) -> int:
    return sum(f["custom_field"] for f in api.get("/platform/contacts/fields").json()["fields"])


def too_many_fields(path: str) -> dict:
    return {"error_type": "LIMIT_EXCEEDED", "error_message":
            f"The account has {FIELDS} custom fields, the most it may have: use one of them, "
            "or delete one.", "validation_rules": {"max_items": FIELDS}, "path": path}


def test_events_define_custom_fields_up_to_the_cap(server):
    _, token = server.new_account()
    with server.client(token) as api:
        refused = api.send_event(conversion(new_email(), cf_a=1, cf_b=2, cf_c=3, cf_d=4))
        assert refused.status_code == 400
        assert refused.json() == {"errors": [too_many_fields("$.body.payload.cf_d")]}
        assert field_count(api) == 0  # the refused event defined nothing
        assert api.send_batch([conversion(new_email(), cf_a=1, cf_b=2),
                               conversion(new_email(), cf_c=3)]).status_code == 200
        refused = api.send_batch([conversion(new_email(), cf_a=5),
                                  conversion(new_email(), cf_e="x")])
        assert refused.json() == {"errors": [too_many_fields("$.body[1].payload.cf_e")]}
        # Fields already defined take values as before.
        assert api.send_event(conversion(new_email(), cf_a=7, cf_c=8)).status_code == 200
        email = new_email()
        assert api.send_event(conversion(email)).status_code == 200
        patched = api.patch(f"/platform/contacts/email:{email}", json={"cf_new": "x"})
        assert patched.status_code == 400
        assert patched.json() == {"errors": {"cf_new": [{
            "error_type": "LIMIT_EXCEEDED", "error_message": too_many_fields("")[
                "error_message"]}]}}
        created = api.post("/platform/contacts/fields", json={
            "api_identifier": "cf_more", "data_type": "STRING",
            "presentation_type": "TEXT_INPUT", "name": {"pt-BR": "More"},
            "label": {"pt-BR": "More"}})
        assert created.status_code == 400
        assert created.json() == {"errors": {"base": [{
            "error_type": "LIMIT_EXCEEDED", "error_message":
            f"The account has {FIELDS} custom fields, the most it may have: delete one to "
            "create another."}]}}
        assert field_count(api) == FIELDS


def test_events_sent_at_once_that_each_define_a_field_define_no_more_than_the_cap(server):
    """Groups under way at once (PostgreSQL: two writers a process) each count the account's
    fields after the others have defined theirs."""
    _, token = server.new_account()

    def send(n: int) -> int:
        with server.client(token) as api:
            return api.send_event(conversion(new_email(), **{f"cf_field_{n}": n})).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(48)))
    assert sorted(set(statuses)) == [200, 400] and statuses.count(200) == FIELDS
    with server.client(token) as api:
        assert field_count(api) == FIELDS


def test_a_contact_has_at_most_the_cap_of_tags(server):
    _, token = server.new_account()
    email = new_email()
    with server.client(token) as api:
        refused = api.send_event(conversion(email, tags=["a", "b", "c", "d", "e"]))
        assert refused.status_code == 400
        assert refused.json() == {"errors": [{
            "error_type": "TOO_LONG", "error_message": f"Must leave the contact at most {TAGS} "
            "tags.", "validation_rules": {"max_items": TAGS}, "path": "$.body.payload.tags"}]}
        assert api.send_event(conversion(email, tags=["a", "b", "c"])).status_code == 200
        assert api.send_event(conversion(email, tags=["A", "d"])).status_code == 200  # a again
        refused = api.send_batch([conversion(new_email()), conversion(email, tags=["e"])])
        assert refused.json()["errors"][0]["path"] == "$.body[1].payload.tags"
        tagged = api.post(f"/platform/contacts/email:{email}/tag", json={"tags": ["e"]})
        assert tagged.status_code == 400
        assert tagged.json() == {"errors": {"tags": [{
            "error_type": "TOO_LONG",
            "error_message": f"Must leave the contact at most {TAGS} tags."}]}}
        # Replacing the tags is judged on what the contact is left with.
        replaced = api.patch(f"/platform/contacts/email:{email}",
                             json={"tags": ["v", "w", "x", "y"]})
        assert replaced.status_code == 200
        assert api.contact(email).json()["tags"] == ["v", "w", "x", "y"]


def test_fields_created_at_once_through_the_api_are_no_more_than_the_cap(server):
    _, token = server.new_account()

    def create(n: int) -> int:
        with server.client(token) as api:
            return api.post("/platform/contacts/fields", json={
                "api_identifier": f"cf_made_{n}", "data_type": "STRING",
                "presentation_type": "TEXT_INPUT", "name": {"pt-BR": f"Made {n}"},
                "label": {"pt-BR": f"Made {n}"}}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(create, range(32)))
    assert sorted(set(statuses)) == [201, 400] and statuses.count(201) == FIELDS
    with server.client(token) as api:
        assert field_count(api) == FIELDS
