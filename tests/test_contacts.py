"""The contact read API over real HTTP: what events do to contacts, funnels and histories."""

from __future__ import annotations

import copy
import re

import pytest

from conftest import conversion, event
from rdevents.catalogue import EVENT_TYPES

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
QUALIFICATION_TYPES = ("OPPORTUNITY", "SALE", "OPPORTUNITY_LOST")
CREATING_TYPES = tuple(name for name in EVENT_TYPES if name not in QUALIFICATION_TYPES)
NEW_FUNNEL = {"lifecycle_stage": "Lead", "opportunity": False, "contact_owner_email": None,
              "fit": None, "interest": None}
LEAD_NOT_FOUND = {"errors": {"error_type": "RESOURCE_NOT_FOUND",
                             "error_message": "Lead not found."}}
DP_CONTRACT = {"category": "data_processing", "type": "pre_existent_contract"}
COMM_CONSENT = {"category": "communications", "type": "consent", "status": "granted"}
# Keys that describe one event, never the person: they must never show on a contact.
EVENT_ONLY = re.compile(r"^(conversion_identifier|client_tracking_id|traffic_|cf_order_|cf_cart_|"
                        r"chat_|cf_chat_|call_|media_|funnel_name$|value$|reason$)")


def example(event_type: str, email: str, **changes) -> dict:
    """The seed's example of `event_type` for `email`, with `changes` to its payload."""
    body = copy.deepcopy(EVENT_TYPES[event_type].example)
    body["payload"].update(email=email, **changes)
    return body


def ok(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def send(api, body) -> str:
    return ok(api.send_event(body))["event_uuid"]


def get_contact(api, email: str) -> dict:
    return ok(api.contact(email))


def funnel(api, contact_uuid: str) -> dict:
    return ok(api.get(f"/platform/contacts/{contact_uuid}/funnels/default"))


def history(api, contact_uuid: str, **params) -> list[dict]:
    return ok(api.get(f"/platform/contacts/{contact_uuid}/events", params=params))


def without_times(document: dict) -> dict:
    return {k: v for k, v in document.items() if k not in ("created_at", "updated_at")}


# --- the contact document -------------------------------------------------------------------------


def test_conversion_creates_the_contact_with_every_contact_field_of_the_seed_example(api):
    body = example("CONVERSION", " Ana@Example.COM ", unknown_key="kept on the event only",
                   bio="not a CONVERSION field")
    send(api, body)
    contact = get_contact(api, "ana@example.com")
    assert UUID.match(contact["uuid"])
    assert TIMESTAMP.match(contact["created_at"]) and TIMESTAMP.match(contact["updated_at"])
    assert without_times(contact) == {
        "uuid": contact["uuid"],
        "email": "ana@example.com",
        "name": "Nome",
        "job_title": "job title value",
        "website": "website of the contact",
        "personal_phone": "phone of the contact",
        "mobile_phone": "mobile_phone of the contact",
        "city": "city of the contact",
        "state": "state of the contact",
        "country": "country of the contact",
        "twitter": "twitter handler of the contact",
        "facebook": "facebook name of the contact",
        "linkedin": "linkedin user name of the contact",
        "company_name": "company name",
        "company_site": "company website",
        "company_address": "company address",
        "available_for_mailing": True,
        "tags": ["mql", "2019"],
        "legal_bases": [DP_CONTRACT, COMM_CONSENT],
        "cf_custom_field_api_identifier": "custom field value",
    }


@pytest.mark.parametrize("reference", ["email:{email}", "email:{upper}", "uuid:{uuid}", "{uuid}",
                                       "uuid:{upper_uuid}"])
def test_the_contact_is_the_same_whichever_way_it_is_named(api, reference):
    send(api, conversion("Bea@Example.com", name="Bea"))
    by_email = get_contact(api, "bea@example.com")
    path = reference.format(email="bea@example.com", upper="BEA@EXAMPLE.COM",
                            uuid=by_email["uuid"], upper_uuid=by_email["uuid"].upper())
    assert ok(api.get(f"/platform/contacts/{path}")) == by_email


def test_custom_fields_are_flattened_onto_the_contact(api):
    send(api, conversion("cf@example.com", cf_plan="gold", cf_seats=12, cf_score=4.0,
                         cf_active=False, cf_interests=["api", "crm"]))
    contact = get_contact(api, "cf@example.com")
    assert {k: v for k, v in contact.items() if k.startswith("cf_")} == {
        "cf_plan": "gold", "cf_seats": 12, "cf_score": 4.0, "cf_active": False,
        "cf_interests": ["api", "crm"]}
    assert "custom_fields" not in contact


@pytest.mark.parametrize("event_type", CREATING_TYPES)
def test_event_specific_and_unknown_keys_never_reach_the_contact(api, event_type):
    email = f"{event_type.lower()}@example.com"
    unknown = {"unknown_key": "x", "bio": "unknown here", "nested": {"name": "not a name"}}
    if event_type != "CONVERSION":  # only a CONVERSION carries custom fields for the contact
        unknown["cf_unlisted"] = "not a field of this type"
    send(api, example(event_type, email, **unknown))
    contact = get_contact(api, email)
    leaked = sorted(k for k in contact if EVENT_ONLY.match(k) or k in unknown)
    assert leaked == []
    assert contact["email"] == email
    assert funnel(api, contact["uuid"]) == NEW_FUNNEL


@pytest.mark.parametrize(
    ("event_type", "extra", "contact_keys"),
    [
        ("CHAT_STARTED", {}, ["name", "job_title", "personal_phone", "mobile_phone", "twitter",
                              "facebook", "linkedin", "website", "company_name", "company_site",
                              "cf_birthdate", "cf_gender"]),
        ("ORDER_PLACED", {}, ["name"]),
        ("MEDIA_PLAYBACK_STARTED", {}, ["name", "company_name", "company_site", "job_title",
                                        "personal_phone", "mobile_phone", "twitter", "facebook",
                                        "linkedin", "website"]),
        ("CALL_FINISHED", {}, ["name", "company_name", "company_site", "job_title",
                               "personal_phone"]),
        ("ECOMMERCE_ORDER_PLACED", {"name": "Eve", "mobile_phone": "+5511900000000",
                                    "personal_phone": "+551100000000"},
         ["name", "mobile_phone", "personal_phone"]),
    ],
)
def test_other_event_types_create_the_contact_with_their_contact_fields(api, event_type, extra,
                                                                        contact_keys):
    body = example(event_type, "  Other@Example.COM", **extra)
    send(api, body)
    contact = get_contact(api, "other@example.com")
    payload = body["payload"]
    expected = {"uuid": contact["uuid"], "email": "other@example.com", "tags": [],
                "legal_bases": payload.get("legal_bases", []),
                **{key: payload[key] for key in contact_keys}}
    assert without_times(contact) == expected


def test_tags_are_lower_cased_and_merged_as_a_set_in_order_of_first_appearance(api):
    send(api, conversion("tags@example.com", tags=["MQL", "2019", "mql"]))
    send(api, conversion("tags@example.com", tags=["New", "2019", " VIP "]))
    send(api, example("CHAT_STARTED", "tags@example.com"))  # no tags: keeps them
    send(api, conversion("tags@example.com", tags=[]))
    assert get_contact(api, "tags@example.com")["tags"] == ["mql", "2019", "new", "vip"]


def test_legal_bases_merge_per_category_and_type_the_newer_replacing_the_older(api):
    email = "lb@example.com"
    send(api, conversion(email, legal_bases=[DP_CONTRACT, COMM_CONSENT]))
    declined = {"category": "communications", "type": "consent", "status": "declined"}
    legit = {"category": "data_processing", "type": "legitimate_interest", "status": "granted"}
    send(api, example("ORDER_PLACED", email, legal_bases=[declined, legit]))
    assert get_contact(api, email)["legal_bases"] == [DP_CONTRACT, declined, legit]


def test_later_events_overwrite_the_fields_they_carry_and_keep_the_others(api):
    email = "later@example.com"
    send(api, conversion(email, name="First", city="Recife", job_title="Dev",
                         available_for_mailing=True, cf_plan="gold", cf_team="a"))
    first = get_contact(api, email)
    send(api, example("CHAT_STARTED", email, name="Second", job_title="CTO"))
    send(api, conversion(email, available_for_mailing=False, cf_plan="silver"))
    contact = get_contact(api, email)
    assert (contact["uuid"], contact["created_at"]) == (first["uuid"], first["created_at"])
    assert contact["updated_at"] >= first["updated_at"]
    assert {k: contact.get(k) for k in ("name", "city", "job_title", "available_for_mailing",
                                        "cf_plan", "cf_team", "cf_gender")} == {
        "name": "Second", "city": "Recife", "job_title": "CTO", "available_for_mailing": False,
        "cf_plan": "silver", "cf_team": "a", "cf_gender": "Gender of the Contact"}


def test_one_contact_per_normalised_email(api):
    send(api, conversion("Same@Example.com", name="A"))
    send(api, example("ORDER_PLACED", " SAME@example.COM ", name="B"))
    contact = get_contact(api, "same@example.com")
    assert contact["name"] == "B"
    assert len(history(api, contact["uuid"])) == 2


@pytest.mark.parametrize("event_type", QUALIFICATION_TYPES)
def test_qualification_events_never_create_contacts(api, event_type):
    response = api.send_event(example(event_type, "ghost@example.com"))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["error_type"], e["path"]) for e in errors] == [
        ("RESOURCE_NOT_FOUND", "$.body.payload.email")]
    assert "send a CONVERSION" in errors[0]["error_message"]
    assert "ghost@example.com" in errors[0]["error_message"]
    assert api.contact("ghost@example.com").json() == LEAD_NOT_FOUND


def test_contacts_of_another_account_are_invisible(server, api):
    send(api, conversion("mine@example.com"))
    contact_uuid = get_contact(api, "mine@example.com")["uuid"]
    _, token = server.new_account()
    with server.client(token) as other:
        for path in ("email:mine@example.com", contact_uuid, f"{contact_uuid}/events",
                     f"{contact_uuid}/funnels/default"):
            response = other.get(f"/platform/contacts/{path}")
            assert (response.status_code, response.json()) == (404, LEAD_NOT_FOUND)
        # nor can another account qualify it
        response = other.send_event(example("OPPORTUNITY", "mine@example.com"))
        assert response.json()["errors"][0]["error_type"] == "RESOURCE_NOT_FOUND"
    assert funnel(api, contact_uuid)["opportunity"] is False


# --- the funnel -----------------------------------------------------------------------------------


def test_funnel_follows_the_qualification_events(api):
    email = "funnel@example.com"
    send(api, conversion(email))
    contact_uuid = get_contact(api, email)["uuid"]
    assert funnel(api, contact_uuid) == NEW_FUNNEL
    steps = [
        (event("OPPORTUNITY", email=" FUNNEL@example.com", funnel_name="default"),
         {"lifecycle_stage": "Lead", "opportunity": True}),
        (event("SALE", email=email, funnel_name="default", value=99.5),
         {"lifecycle_stage": "Client", "opportunity": True}),
        (event("OPPORTUNITY_LOST", email=email, funnel_name="default", reason="price"),
         {"lifecycle_stage": "Client", "opportunity": False}),
        (conversion(email), {"lifecycle_stage": "Client", "opportunity": False}),
        (example("CHAT_STARTED", email), {"lifecycle_stage": "Client", "opportunity": False}),
        (event("OPPORTUNITY", email=email, funnel_name="default"),
         {"lifecycle_stage": "Client", "opportunity": True}),
    ]
    for body, expected in steps:
        send(api, body)
        assert funnel(api, contact_uuid) == {**NEW_FUNNEL, **expected}, body["event_type"]


def test_sale_alone_makes_a_lead_a_client(api):
    send(api, conversion("sale@example.com"))
    send(api, event("SALE", email="sale@example.com", funnel_name="default"))
    contact_uuid = get_contact(api, "sale@example.com")["uuid"]
    assert funnel(api, contact_uuid) == {**NEW_FUNNEL, "lifecycle_stage": "Client"}


# --- the event history ----------------------------------------------------------------------------


@pytest.fixture
def three_events(api):
    """A contact with a CONVERSION, a CHAT_STARTED and an OPPORTUNITY, sent in that order."""
    email = "history@example.com"
    bodies = [conversion(email, name="H", unknown_key=1), example("CHAT_STARTED", email),
              event("OPPORTUNITY", email=email, funnel_name="default")]
    for body in bodies:
        send(api, body)
    return get_contact(api, email)["uuid"], bodies


def test_history_has_rd_shape_newest_first(api, three_events):
    contact_uuid, bodies = three_events
    events = history(api, contact_uuid)
    assert [sorted(e) for e in events] == [
        ["event_family", "event_identifier", "event_timestamp", "event_type", "payload"]] * 3
    assert [(e["event_type"], e["event_family"], e["event_identifier"], e["payload"])
            for e in events] == [
        ("OPPORTUNITY", "CDP", "OPPORTUNITY", bodies[2]["payload"]),
        ("CHAT_STARTED", "CDP", "CHAT_STARTED", bodies[1]["payload"]),
        ("CONVERSION", "CDP", "signup", bodies[0]["payload"]),
    ]
    timestamps = [e["event_timestamp"] for e in events]
    assert all(TIMESTAMP.match(t) for t in timestamps)
    assert timestamps == sorted(timestamps, reverse=True)


@pytest.mark.parametrize(
    ("params", "types"),
    [
        ({"order": "created_at:desc"}, ["OPPORTUNITY", "CHAT_STARTED", "CONVERSION"]),
        ({"order": "created_at:asc"}, ["CONVERSION", "CHAT_STARTED", "OPPORTUNITY"]),
        ({"event_type": "CONVERSION"}, ["CONVERSION"]),
        ({"event_type": "SALE"}, []),
        ({"event_type": "CONVERSION|OPPORTUNITY"}, ["OPPORTUNITY", "CONVERSION"]),
        ({"event_type": "CONVERSION|OPPORTUNITY", "order": "created_at:asc"},
         ["CONVERSION", "OPPORTUNITY"]),
    ],
)
def test_history_order_and_type_filter(api, three_events, params, types):
    contact_uuid, _ = three_events
    assert [e["event_type"] for e in history(api, contact_uuid, **params)] == types


@pytest.fixture
def twelve_conversions(api):
    """A contact with twelve CONVERSIONs named c0 .. c11, in that order."""
    email = "pages@example.com"
    batch = [conversion(email, **{"conversion_identifier": f"c{i}"}) for i in range(12)]
    ok(api.send_batch(batch))
    return get_contact(api, email)["uuid"]


@pytest.mark.parametrize(
    ("params", "identifiers"),
    [
        ({}, [f"c{i}" for i in range(11, 1, -1)]),
        ({"page": "1"}, [f"c{i}" for i in range(11, 1, -1)]),
        ({"page": "2"}, ["c1", "c0"]),
        ({"page": "3"}, []),
        ({"page_size": "5"}, ["c11", "c10", "c9", "c8", "c7"]),
        ({"page_size": "5", "page": "2"}, ["c6", "c5", "c4", "c3", "c2"]),
        ({"page_size": "5", "page": "3", "order": "created_at:asc"}, ["c10", "c11"]),
        ({"page_size": "100"}, [f"c{i}" for i in range(11, -1, -1)]),
    ],
)
def test_history_pages(api, twelve_conversions, params, identifiers):
    assert [e["event_identifier"] for e in history(api, twelve_conversions, **params)] == \
        identifiers


def _option_error(path, options):
    return {"error_type": "INVALID_OPTION", "error_message": "Must be one of the valid options.",
            "validation_rules": {"valid_options": list(options)}, "path": path}


def _positive_int_error(path):
    return {"error_type": "INVALID_DATA_TYPE",
            "error_message": "Must be of type 'POSITIVE_INTEGER'.",
            "validation_rules": {"data_type": "POSITIVE_INTEGER"}, "path": path}


EVENT_TYPE_ERROR = _option_error("$.query.event_type", EVENT_TYPES)
ORDER_ERROR = _option_error("$.query.order", ("created_at:desc", "created_at:asc"))


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"event_type": "NOPE"}, [EVENT_TYPE_ERROR]),
        ({"event_type": "CONVERSION|NOPE"}, [EVENT_TYPE_ERROR]),
        ({"order": "created_at"}, [ORDER_ERROR]),
        ({"order": "updated_at:desc"}, [ORDER_ERROR]),
        ({"page": "0"}, [_positive_int_error("$.query.page")]),
        ({"page": "-1"}, [_positive_int_error("$.query.page")]),
        ({"page": "two"}, [_positive_int_error("$.query.page")]),
        ({"page": "1.5"}, [_positive_int_error("$.query.page")]),
        ({"page_size": "0"}, [_positive_int_error("$.query.page_size")]),
        ({"page_size": ""}, [_positive_int_error("$.query.page_size")]),
        ({"page": "²"}, [_positive_int_error("$.query.page")]),
        ({"page": "99999999999999999999"}, [{
            "error_type": "INVALID_FORMAT", "error_message": "Must be a whole number from 1 to "
            "1000000.", "validation_rules": {"format": "1..1000000"}, "path": "$.query.page"}]),
        ({"event_type": "NOPE", "order": "x", "page": "0", "page_size": "x"},
         [EVENT_TYPE_ERROR, ORDER_ERROR, _positive_int_error("$.query.page"),
          _positive_int_error("$.query.page_size")]),
    ],
)
def test_bad_history_query_values_are_400_with_every_error(api, three_events, params, errors):
    contact_uuid, _ = three_events
    response = api.get(f"/platform/contacts/{contact_uuid}/events", params=params)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}


# --- unknown contacts and bad identifiers ---------------------------------------------------------

ROUTES = ["/platform/contacts/{ref}", "/platform/contacts/{ref}/events",
          "/platform/contacts/{ref}/funnels/default"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("ref", ["email:nobody@example.com",
                                 "uuid:0b0e7f5c-1d3a-4c8e-9f2a-6b7c8d9e0f1a",
                                 "5f6e7d8c-9b0a-4f1e-8d2c-3b4a5f6e7d8c", "uuid:not-a-uuid",
                                 "not-a-uuid"])
def test_unknown_contact_is_404_lead_not_found(api, route, ref):
    response = api.get(route.format(ref=ref))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == LEAD_NOT_FOUND


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("ref", ["phone:123", "id:1"])
def test_bad_identifier_kind_is_400(api, route, ref):
    send(api, conversion("known@example.com"))
    response = api.get(route.format(ref=ref))
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["errors"], dict)
    assert body["errors"]["error_type"] == "INVALID_OPTION"
    assert body["errors"]["error_message"]
