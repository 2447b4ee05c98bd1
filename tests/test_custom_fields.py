"""RD's custom fields API, and custom fields defined by the values events and contacts bring."""

from __future__ import annotations

import copy
import uuid

import pytest

from conftest import conversion
from rdevents.catalogue import EVENT_TYPES

FIELD = {"api_identifier": "cf_plan", "data_type": "STRING", "presentation_type": "TEXT_INPUT",
         "name": {"pt-BR": "Plano"}, "label": {"pt-BR": "Plano contratado"}}


def new_email() -> str:
    return f"cf-{uuid.uuid4().hex[:10]}@example.com"


def custom_fields(api) -> dict[str, dict]:
    response = api.get("/platform/contacts/fields")
    assert response.status_code == 200
    return {f["api_identifier"]: f for f in response.json()["fields"] if f["custom_field"]}


def attribute_error(name: str, error_type: str, message: str) -> dict:
    return {name: [{"error_type": error_type, "error_message": message}]}


def test_create_list_update_delete(api):
    created = api.post("/platform/contacts/fields", json={
        **FIELD, "validation_rules": {"valid_options": [{"value": "gold", "label": "Gold"}]}})
    assert created.status_code == 201, created.text
    field = created.json()
    assert field == {
        "uuid": field["uuid"], "api_identifier": "cf_plan", "custom_field": True,
        "data_type": "STRING", "name": {"default": "Plano", "pt-BR": "Plano"},
        "label": {"default": "Plano contratado", "pt-BR": "Plano contratado"},
        "presentation_type": "TEXT_INPUT",
        "validation_rules": {"valid_options": [{"value": "gold", "label": "Gold"}]},
        "origin": "API"}
    listed = api.get("/platform/contacts/fields").json()["fields"]
    standard = [f["api_identifier"] for f in listed if not f["custom_field"]]
    assert standard[:3] == ["email", "name", "job_title"] and "tags" in standard
    assert [f for f in listed if f["custom_field"]] == [field]

    patched = api.patch(f"/platform/contacts/fields/{field['uuid']}", json={
        "label": {"pt-BR": "Plano", "en-US": "Plan"}, "presentation_type": "COMBO_BOX",
        "api_identifier": "cf_plan"})  # repeating a read-only value unchanged is fine
    assert patched.status_code == 200, patched.text
    assert (patched.json()["label"], patched.json()["presentation_type"]) == (
        {"default": "Plano", "pt-BR": "Plano", "en-US": "Plan"}, "COMBO_BOX")
    assert api.get(f"/platform/contacts/fields/{field['uuid']}").json() == patched.json()

    renamed = api.patch(f"/platform/contacts/fields/{field['uuid']}",
                        json={"api_identifier": "cf_other", "data_type": "INTEGER"})
    assert (renamed.status_code, renamed.json()) == (400, {"errors": {
        "error_type": "INVALID_FIELDS",
        "error_message": "Payload contains fields that cannot be modified: "
                         "(api_identifier, data_type)"}})

    assert api.delete(f"/platform/contacts/fields/{field['uuid']}").status_code == 204
    gone = api.delete(f"/platform/contacts/fields/{field['uuid']}")
    assert (gone.status_code, gone.json()) == (404, {"errors": {
        "error_type": "RESOURCE_NOT_FOUND", "error_message": "Field not found."}})
    assert custom_fields(api) == {}


def test_creation_errors_are_keyed_by_attribute(api):
    response = api.post("/platform/contacts/fields", json={
        "api_identifier": "plan", "data_type": "DATE", "name": {"pt-BR": " "},
        "label": "Plano"})
    assert (response.status_code, response.json()) == (400, {"errors": {
        **attribute_error("api_identifier", "INVALID_FORMAT",
                          "api_identifier must follow the structure cf_field_name: cf_ and then "
                          "lower-case letters, digits or _."),
        **attribute_error("data_type", "INCLUSION",
                          "invalid options, the valid options are: "
                          "[STRING, INTEGER, BOOLEAN, STRING[]]"),
        **attribute_error("presentation_type", "CANNOT_BE_NULL",
                          "presentation_type cannot be null."),
        "name": {"pt-BR": [{"error_type": "CANNOT_BE_BLANK",
                            "error_message": "cannot be blank"}]},
        **attribute_error("label", "MUST_BE_OBJECT",
                          'label must be an object of texts by locale, as {"pt-BR": "..."}.')}})


@pytest.mark.parametrize("name", ["cf_order_id", "cf_cart_status", "email", "tags"])
def test_reserved_names_are_refused(api, name):
    response = api.post("/platform/contacts/fields", json={**FIELD, "api_identifier": name})
    assert (response.status_code, response.json()) == (400, {"errors": attribute_error(
        "api_identifier", "EXCLUSION", "invalid options")})


def test_a_taken_identifier_and_unknown_keys_are_refused(api):
    assert api.post("/platform/contacts/fields", json=FIELD).status_code == 201
    again = api.post("/platform/contacts/fields", json=FIELD)
    assert (again.status_code, again.json()) == (400, {"errors": attribute_error(
        "api_identifier", "TAKEN", "Already in use")})
    extra = api.post("/platform/contacts/fields", json={**FIELD, "colour": "red"})
    assert (extra.status_code, extra.json()["errors"]["error_type"]) == (400, "INVALID_FIELDS")


def test_standard_fields_cannot_change(api):
    email_field = api.get("/platform/contacts/fields").json()["fields"][0]
    response = api.delete(f"/platform/contacts/fields/{email_field['uuid']}")
    assert (response.status_code, response.json()["errors"]["error_type"]) == (
        400, "INVALID_FIELDS")
    assert api.get(f"/platform/contacts/fields/{email_field['uuid']}").json() == email_field


def test_fields_of_other_accounts_are_invisible(server, api):
    field = api.post("/platform/contacts/fields", json=FIELD).json()
    _, other_token = server.new_account()
    with server.client(other_token) as other:
        assert custom_fields(other) == {}
        assert other.get(f"/platform/contacts/fields/{field['uuid']}").status_code == 404
        assert other.delete(f"/platform/contacts/fields/{field['uuid']}").status_code == 404


@pytest.mark.parametrize("value, data_type, presentation", [
    ("gold", "STRING", "TEXT_INPUT"), (3, "INTEGER", "NUMBER_INPUT"),
    (4.0, "INTEGER", "NUMBER_INPUT"), (True, "BOOLEAN", "RADIO_BUTTON"),
    (["a", "b"], "STRING[]", "CHECK_BOX")])
def test_an_event_defines_an_unknown_field_by_its_value(api, value, data_type, presentation):
    assert api.send_event(conversion(new_email(), cf_seen=value)).status_code == 200
    field = custom_fields(api)["cf_seen"]
    assert (field["data_type"], field["presentation_type"], field["origin"],
            field["name"]) == (data_type, presentation, "EVENT",
                               {"default": "cf_seen", "pt-BR": "cf_seen"})


def test_values_of_the_wrong_type_are_refused_at_their_path(api):
    api.post("/platform/contacts/fields", json={**FIELD, "api_identifier": "cf_seats",
                                                "data_type": "INTEGER"})
    email = new_email()
    assert api.send_event(conversion(email, cf_seats=12)).status_code == 200
    response = api.send_batch([conversion(email, cf_seats=2.0),
                               conversion(email, cf_seats="twelve", cf_new=True),
                               conversion(email, cf_new="yes")])
    assert (response.status_code, response.json()) == (400, {"errors": [
        {"error_type": "INVALID_DATA_TYPE", "error_message": "Must be of type 'INTEGER'.",
         "validation_rules": {"data_type": "INTEGER"}, "path": "$.body[1].payload.cf_seats"},
        # cf_new was defined as BOOLEAN by the element before, within the same batch
        {"error_type": "INVALID_DATA_TYPE", "error_message": "Must be of type 'BOOLEAN'.",
         "validation_rules": {"data_type": "BOOLEAN"}, "path": "$.body[2].payload.cf_new"}]})
    assert "cf_new" not in custom_fields(api)  # the batch left nothing, not even a definition
    assert api.contact(email).json()["cf_seats"] == 12


def test_the_contacts_api_follows_the_same_definitions(api):
    email = new_email()
    created = api.patch(f"/platform/contacts/email:{email}",
                        json={"cf_score": 7, "cf_colours": ["red"]})
    assert created.status_code == 200, created.text
    assert {k: f["data_type"] for k, f in custom_fields(api).items()} == {
        "cf_score": "INTEGER", "cf_colours": "STRING[]"}
    refused = api.patch(f"/platform/contacts/email:{email}",
                        json={"cf_score": "seven", "cf_colours": "red"})
    assert (refused.status_code, refused.json()) == (400, {"errors": {
        **attribute_error("cf_score", "INVALID_DATA_TYPE", "cf_score must be of type 'INTEGER'."),
        **attribute_error("cf_colours", "INVALID_DATA_TYPE",
                          "cf_colours must be of type 'STRING[]'.")}})
    wrong_event = api.send_event(conversion(email, cf_score="seven"))
    assert wrong_event.json()["errors"][0]["path"] == "$.body.payload.cf_score"


def test_chat_events_define_their_contact_fields(api):
    email = new_email()
    api.send_event(conversion(email))
    chat = copy.deepcopy(EVENT_TYPES["CHAT_STARTED"].example)
    chat["payload"]["email"] = email
    assert "cf_gender" in chat["payload"] and "cf_chat_status" in chat["payload"]
    response = api.send_event(chat)
    assert response.status_code == 200, response.text
    # cf_chat_* stay on the event
    assert set(custom_fields(api)) == {"cf_gender", "cf_birthdate"}


def test_a_deleted_definition_keeps_the_values_and_comes_back(api):
    email = new_email()
    api.send_event(conversion(email, cf_team="blue"))
    field = custom_fields(api)["cf_team"]
    assert api.delete(f"/platform/contacts/fields/{field['uuid']}").status_code == 204
    assert api.contact(email).json()["cf_team"] == "blue"
    assert api.send_event(conversion(email, cf_team=5)).status_code == 200
    assert custom_fields(api)["cf_team"]["data_type"] == "INTEGER"


def test_the_contacts_api_takes_only_names_a_field_may_have(api):
    response = api.patch(f"/platform/contacts/email:{new_email()}",
                         json={"cf_order_id": "1", "cf_Plan": "gold"})
    assert (response.status_code, response.json()) == (400, {"errors": {
        **attribute_error("cf_order_id", "EXCLUSION", "cf_order_id is a reserved name."),
        **attribute_error("cf_Plan", "INVALID_FORMAT",
                          "A custom field's name is cf_ and then up to 196 lower-case letters, "
                          "digits or _.")}})


def test_a_trailing_newline_is_no_identifier(api):
    response = api.post("/platform/contacts/fields", json={**FIELD, "api_identifier": "cf_nl\n"})
    assert response.json()["errors"]["api_identifier"][0]["error_type"] == "INVALID_FORMAT"


def test_whole_numbers_are_stored_as_integers_and_others_refused(api):
    email = new_email()
    assert api.send_event(conversion(email, cf_seats=2.0)).status_code == 200
    seats = api.contact(email).json()["cf_seats"]
    assert (seats, type(seats)) == (2, int)
    patched = api.patch(f"/platform/contacts/email:{email}", json={"cf_seats": 3.0})
    assert type(patched.json()["cf_seats"]) is int
    refused = api.patch(f"/platform/contacts/email:{email}", json={"cf_seats": 2.5})
    assert (refused.status_code, refused.json()) == (400, {"errors": attribute_error(
        "cf_seats", "INVALID_DATA_TYPE", "cf_seats must be of type 'INTEGER'.")})
