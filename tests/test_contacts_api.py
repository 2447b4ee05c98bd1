"""RD's contacts API: POST /platform/contacts, PATCH (upsert), POST .../tag."""

from __future__ import annotations

import uuid

from conftest import conversion


def new_email() -> str:
    return f"api-{uuid.uuid4().hex[:10]}@example.com"


def test_create_then_email_already_in_use(api):
    email = new_email()
    created = api.post("/platform/contacts", json={
        "email": email.upper(), "name": "Ana", "city": "Recife", "tags": ["vip", "b2b"],
        "cf_plan": "gold", "legal_bases": [{"category": "communications", "type": "consent",
                                            "status": "granted"}]})
    assert created.status_code == 200, created.text
    contact = created.json()
    assert (contact["email"], contact["name"], contact["city"], contact["tags"],
            contact["cf_plan"]) == (email, "Ana", "Recife", ["vip", "b2b"], "gold")
    assert api.get(f"/platform/contacts/email:{email}/funnels/default").json()[
        "lifecycle_stage"] == "Lead"
    again = api.post("/platform/contacts", json={"email": email})
    assert (again.status_code, again.json()) == (400, {"errors": {
        "error_type": "EMAIL_ALREADY_IN_USE", "error_message": "email already in use"}})


def test_patch_upserts_by_email_and_replaces_tags(api):
    email = new_email()
    first = api.patch(f"/platform/contacts/email:{email}", json={"name": "Bia",
                                                                 "tags": ["a", "b"]})
    assert first.status_code == 200
    assert (first.json()["name"], first.json()["tags"]) == ("Bia", ["a", "b"])
    second = api.patch(f"/platform/contacts/email:{email}", json={"tags": ["c"],
                                                                  "job_title": "CTO"})
    assert (second.json()["name"], second.json()["tags"], second.json()["job_title"]) == (
        "Bia", ["c"], "CTO")
    by_uuid = api.patch(f"/platform/contacts/uuid:{second.json()['uuid']}",
                        json={"city": "Natal"})
    assert by_uuid.json()["city"] == "Natal"
    # events and the API share the contact
    assert api.send_event(conversion(email, tags=["from-event"])).status_code == 200
    assert api.contact(email).json()["tags"] == ["c", "from-event"]


def test_patch_refuses_the_identifying_attribute_and_unknown_uuids(api):
    email = new_email()
    conflict = api.patch(f"/platform/contacts/email:{email}", json={"email": email})
    assert (conflict.status_code, conflict.json()) == (400, {"errors": {
        "error_type": "CONFLICTING_FIELD",
        "error_message": "The payload contains an attribute that was used to identify the "
                         "lead"}})
    missing = api.patch(f"/platform/contacts/uuid:{uuid.uuid4()}", json={"name": "x"})
    assert missing.status_code == 404


def test_tags_accumulate_and_repeat_tags_are_refused(api):
    email = new_email()
    api.post("/platform/contacts", json={"email": email, "tags": ["one"]})
    added = api.post(f"/platform/contacts/email:{email}/tag", json={"tags": ["two"]})
    assert added.status_code == 200 and added.json()["tags"] == ["one", "two"]
    repeated = api.post(f"/platform/contacts/email:{email}/tag", json={"tags": ["two"]})
    assert (repeated.status_code, repeated.json()) == (400, {"errors": {"tags": [{
        "error_type": "VALUES_MUST_BE_UNIQUE",
        "error_message": "must not contain duplicate values"}]}})
    unknown = api.post("/platform/contacts/email:nobody@example.com/tag", json={"tags": ["x"]})
    assert (unknown.status_code, unknown.json()) == (404, {"errors": {
        "error_type": "RESOURCE_NOT_FOUND", "error_message": "Lead not found."}})


def test_bad_values_get_attribute_keyed_errors_and_change_nothing(api):
    email = new_email()
    response = api.post("/platform/contacts", json={
        "email": email, "name": 5, "tags": ["Upper"], "legal_bases": [{"category": "x"}]})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["name"] == [{"error_type": "MUST_BE_STRING",
                               "error_message": "name must be string."}]
    assert errors["tags"] == [{"error_type": "VALUES_MUST_BE_LOWERCASE",
                               "error_message": "must not contain capital letters"}]
    assert errors["legal_bases"][0]["error_type"] == "INVALID_OPTION"
    assert api.contact(email).status_code == 404
    unknown = api.post("/platform/contacts", json={"email": email, "shoe_size": "42"})
    assert unknown.json() == {"errors": {"error_type": "INVALID_FIELDS", "error_message":
                                         "Payload contains fields that do not exist: "
                                         "(shoe_size)"}}
    no_email = api.post("/platform/contacts", json={"name": "x"})
    assert no_email.json()["errors"]["email"][0]["error_type"] == "CANNOT_BE_NULL"
