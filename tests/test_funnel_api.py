"""PUT /platform/contacts/{contact}/funnels/default: RD's funnel API, recorded as transitions."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text

from conftest import conversion, event
from rdevents.store.schema import sqlalchemy_url


def new_contact(api) -> tuple[str, str]:
    email = f"funnel-{uuid.uuid4().hex[:10]}@example.com"
    assert api.send_event(conversion(email)).status_code == 200
    return email, api.contact(email).json()["uuid"]


def funnel(api, email):
    return api.get(f"/platform/contacts/email:{email}/funnels/default").json()


def test_put_changes_what_it_names_and_answers_the_funnel(api):
    email, contact_uuid = new_contact(api)
    response = api.put(f"/platform/contacts/uuid:{contact_uuid}/funnels/default",
                       json={"lifecycle_stage": "Qualified Lead"})
    assert response.status_code == 200
    assert response.json() == {"lifecycle_stage": "Qualified Lead", "opportunity": False,
                               "contact_owner_email": None, "fit": None, "interest": None}
    api.put(f"/platform/contacts/email:{email}/funnels/default",
            json={"opportunity": True, "contact_owner_email": " Owner@Example.com "})
    assert funnel(api, email) == {"lifecycle_stage": "Qualified Lead", "opportunity": True,
                                  "contact_owner_email": "owner@example.com", "fit": None,
                                  "interest": None}
    api.put(f"/platform/contacts/{contact_uuid}/funnels/default",
            json={"contact_owner_email": None})
    assert funnel(api, email)["contact_owner_email"] is None
    # events go on from the state the API left
    assert api.send_event(event("OPPORTUNITY_LOST", email=email, funnel_name="default")
                          ).status_code == 200
    assert funnel(api, email)["opportunity"] is False


def test_invalid_values_get_rds_attribute_errors(api):
    email, _ = new_contact(api)
    response = api.put(f"/platform/contacts/email:{email}/funnels/default", json={
        "lifecycle_stage": "Boss", "opportunity": "yes", "contact_owner_email": "nope"})
    assert response.status_code == 400
    assert response.json() == {"errors": {
        "lifecycle_stage": [{"error_type": "MUST_BE_VALID_OPTION", "error_message":
                             "invalid options for lifecycle_stage, the valid options are: "
                             "'Lead', 'Qualified Lead', 'Client'"}],
        "opportunity": [{"error_type": "MUST_BE_BOOLEAN",
                         "error_message": "opportunity must be boolean."}],
        "contact_owner_email": [{"error_type": "INVALID_EMAIL_FORMAT", "error_message":
                                 "contact_owner_email must be a valid e-mail address."}]}}
    null_stage = api.put(f"/platform/contacts/email:{email}/funnels/default",
                         json={"lifecycle_stage": None})
    assert null_stage.json()["errors"]["lifecycle_stage"][0]["error_type"] == "CANNOT_BE_NULL"
    assert funnel(api, email)["lifecycle_stage"] == "Lead"  # nothing changed


def test_unknown_fields_and_unknown_contacts(api):
    email, _ = new_contact(api)
    response = api.put(f"/platform/contacts/email:{email}/funnels/default",
                       json={"fit": 10, "lifecycle_stage": "Client"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"error_type": "INVALID_FIELDS", "error_message":
                                          "Payload contains fields that do not exist: (fit)"}}
    missing = api.put("/platform/contacts/email:nobody@example.com/funnels/default",
                      json={"lifecycle_stage": "Client"})
    assert missing.status_code == 404
    assert missing.json() == {"errors": {"error_type": "RESOURCE_NOT_FOUND",
                                         "error_message": "Lead not found."}}


def test_each_api_change_is_a_transition_with_its_cause(server, api):
    email, contact_uuid = new_contact(api)
    api.put(f"/platform/contacts/uuid:{contact_uuid}/funnels/default",
            json={"lifecycle_stage": "Client"})
    assert api.send_event(event("OPPORTUNITY", email=email, funnel_name="default")
                          ).status_code == 200
    engine = create_engine(sqlalchemy_url(server.settings.database_url))
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.cause, t.from_stage, t.to_stage, t.to_opportunity, t.event_id IS NULL "
            "FROM funnel_transitions t JOIN contacts c ON c.id = t.contact_id "
            "WHERE c.uuid = :u ORDER BY t.id"), {"u": contact_uuid}).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("event", None, "Lead", False, False),
        ("api", "Lead", "Client", False, True),
        ("event", "Client", "Client", True, False),
    ]
