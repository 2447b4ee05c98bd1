"""RD's contacts API: POST /platform/contacts, PATCH (upsert), POST .../tag."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import conversion, dangling_references


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


def test_delete_erases_the_contact_and_the_personal_data_of_its_events(api):
    email = new_email()
    sent = api.send_batch([conversion(email, name="Private Person"),
                           {"event_type": "OPPORTUNITY", "event_family": "CDP",
                            "payload": {"email": email, "funnel_name": "default"}}])
    assert sent.status_code == 200
    contact_uuid = api.contact(email).json()["uuid"]
    deleted = api.delete(f"/platform/contacts/uuid:{contact_uuid}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.contact(email).status_code == 404
    assert api.delete(f"/platform/contacts/email:{email}").status_code == 404
    for stored in sent.json()["events"]:  # the events remain, as anonymous counts
        event = api.get(f"/platform/events/{stored['event_uuid']}").json()
        assert (event["payload"], event["contact_uuid"]) == ({}, None)
        assert email not in str(event)
    # the e-mail is free again: a new conversion makes a new Lead
    assert api.send_event(conversion(email)).status_code == 200
    again = api.contact(email).json()
    assert again["uuid"] != contact_uuid and "name" not in again
    assert api.get(f"/platform/contacts/email:{email}/funnels/default").json()[
        "opportunity"] is False


def test_delete_in_the_same_group_as_events_of_the_contact(server, api):
    """A delete that shares its transaction with events of the same e-mail, before and
    after it: the earlier ones are erased, the later ones make a new contact."""
    from concurrent.futures import ThreadPoolExecutor

    email = new_email()
    first = api.send_event(conversion(email, name="first"))
    assert first.status_code == 200
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(api.send_event, conversion(email, name=f"n{i}"))
                   for i in range(3)]
        futures.append(pool.submit(api.delete, f"/platform/contacts/email:{email}"))
        futures += [pool.submit(api.send_event, conversion(email, name=f"m{i}"))
                    for i in range(3)]
        codes = [f.result().status_code for f in futures]
    assert codes.count(204) == 1 and codes.count(200) == 6
    erased = api.get(f"/platform/events/{first.json()['event_uuid']}").json()
    assert (erased["payload"], erased["contact_uuid"]) == ({}, None)
    # Whatever order the writer saw, the contact now (if any) was made after the delete:
    # its history holds only events sent alongside it, never the first one.
    contact = api.contact(email)
    if contact.status_code == 200:
        history = api.get(f"/platform/contacts/{contact.json()['uuid']}/events",
                          params={"page_size": 100}).json()
        names = {event["payload"]["name"] for event in history}
        assert names and names <= {f"n{i}" for i in range(3)} | {f"m{i}" for i in range(3)}


def test_list_filters_by_email_tag_and_stage_and_pages(server):
    _, token = server.new_account()  # an account of its own: the list is exact
    with server.client(token) as api:
        emails = [new_email() for _ in range(5)]
        for i, email in enumerate(emails):
            tags = ["even"] if i % 2 == 0 else ["odd"]
            assert api.send_event(conversion(email, tags=tags + ["all"])).status_code == 200
        api.put(f"/platform/contacts/email:{emails[1]}/funnels/default",
                json={"lifecycle_stage": "Client"})

        def listed(**params):
            response = api.get("/platform/contacts", params=params)
            assert response.status_code == 200, response.text
            return [c["email"] for c in response.json()["contacts"]]

        assert listed() == emails  # oldest first
        assert listed(tag="EVEN") == [emails[0], emails[2], emails[4]]
        assert listed(lifecycle_stage="Client") == [emails[1]]
        assert listed(email=emails[3].upper()) == [emails[3]]
        assert listed(tag="odd", lifecycle_stage="Client") == [emails[1]]
        assert listed(tag="nope") == []
        assert listed(page_size=2, page=2) == emails[2:4]
        bad = api.get("/platform/contacts", params={"lifecycle_stage": "Boss", "page": "0"})
        assert bad.status_code == 400
        assert [e["path"] for e in bad.json()["errors"]] == [
            "$.query.lifecycle_stage", "$.query.page"]


TAG_POOL = ("a", "b", "c", "d")


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 2),
                                st.sampled_from(("event", "patch", "tag", "erase")),
                                st.lists(st.sampled_from(TAG_POOL), max_size=3)),
                      min_size=1, max_size=12))
def test_listing_by_tag_follows_every_change_of_tags(server, steps):
    """Events add tags, PATCH replaces them, POST .../tag adds, erasure removes the contact; the
    list by tag always says what the contacts' tags say, with changes sent together or not;
    no row is left referring to an erased contact."""
    account_id, token = server.new_account()
    emails = [new_email() for _ in range(3)]
    expected: dict[str, set[str]] = {}

    def send(api, contact, kind, tags):
        email = emails[contact]
        if kind == "event":
            assert api.send_event(conversion(email, tags=tags)).status_code == 200
            expected.setdefault(email, set()).update(tags)
        elif kind == "patch":
            assert api.patch(f"/platform/contacts/email:{email}",
                             json={"name": "x", "tags": tags}).status_code == 200
            expected[email] = set(tags)
        elif kind == "tag" and email in expected and tags:
            answer = api.post(f"/platform/contacts/email:{email}/tag", json={"tags": tags})
            if answer.status_code == 200:
                expected[email].update(tags)
        elif kind == "erase" and email in expected:
            assert api.delete(f"/platform/contacts/email:{email}").status_code == 204
            del expected[email]

    with server.client(token) as api:
        with ThreadPoolExecutor(4) as pool:  # concurrent requests share write groups
            for future in [pool.submit(send, api, *step) for step in steps
                           if step[1] == "event"]:  # tags merge: any order gives one result
                future.result()
        for step in steps:
            send(api, *step)
        for tag in TAG_POOL:
            listed = api.get("/platform/contacts", params={"tag": tag, "page_size": 100})
            assert listed.status_code == 200
            assert sorted(c["email"] for c in listed.json()["contacts"]) == sorted(
                email for email, tags in expected.items() if tag in tags)
    assert dangling_references(server, account_id) == {}
