"""The pure contact and funnel rules (rdevents.contacts), without HTTP or a database.

Events are built from the catalogue's own examples and validated by the real validator, so the
rules are exercised on exactly what the store would hand them.
"""

from __future__ import annotations

import copy

import pytest

from rdevents.catalogue import EVENT_TYPES
from rdevents.contacts import (
    CLIENT,
    LEAD,
    Contact,
    FunnelTransition,
    apply_event,
    merge_legal_bases,
    merge_tags,
)
from rdevents.validation import ValidEvent, validate_event

QUALIFICATION_TYPES = ("OPPORTUNITY", "SALE", "OPPORTUNITY_LOST")
CREATING_TYPES = tuple(name for name in EVENT_TYPES if name not in QUALIFICATION_TYPES)
EMAIL = "email@email.com"  # the e-mail every catalogue example uses
T0, T1 = "2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z"


def valid(event_type: str, **payload_changes) -> ValidEvent:
    """The catalogue example of `event_type`, with `payload_changes` applied, validated."""
    body = copy.deepcopy(EVENT_TYPES[event_type].example)
    body["payload"].update(payload_changes)
    body["payload"] = {k: v for k, v in body["payload"].items() if v is not None}
    event, errors = validate_event(body)
    assert errors == [], errors
    return event


def existing(lifecycle_stage: str = LEAD, opportunity: bool = False, **profile) -> Contact:
    return Contact(uuid="c-1", email=EMAIL, created_at=T0, updated_at=T0, profile=dict(profile),
                   lifecycle_stage=lifecycle_stage, opportunity=opportunity, id=7)


def test_only_the_qualification_events_do_not_create_contacts():
    assert {n for n, t in EVENT_TYPES.items() if not t.creates_contact} == set(QUALIFICATION_TYPES)


# --- new contacts ---------------------------------------------------------------------------------


def test_conversion_creates_a_lead_with_every_contact_field_of_the_example():
    event = valid("CONVERSION", email="  Ana@Example.COM ")
    contact, transition = apply_event(None, event, "new-uuid", T1)
    assert (contact.uuid, contact.email, contact.created_at, contact.updated_at, contact.id) == (
        "new-uuid", "ana@example.com", T1, T1, None)
    assert (contact.lifecycle_stage, contact.opportunity, contact.contact_owner_email) == (
        LEAD, False, None)
    assert transition == FunnelTransition(None, LEAD, None, False)
    assert contact.profile == {
        "name": "Nome",
        "job_title": "job title value",
        "state": "state of the contact",
        "city": "city of the contact",
        "country": "country of the contact",
        "personal_phone": "phone of the contact",
        "mobile_phone": "mobile_phone of the contact",
        "twitter": "twitter handler of the contact",
        "facebook": "facebook name of the contact",
        "linkedin": "linkedin user name of the contact",
        "website": "website of the contact",
        "company_name": "company name",
        "company_site": "company website",
        "company_address": "company address",
        "available_for_mailing": True,
        "cf_custom_field_api_identifier": "custom field value",
    }
    assert contact.tags == ["mql", "2019"]
    assert contact.legal_bases == [
        {"category": "data_processing", "type": "pre_existent_contract"},
        {"category": "communications", "type": "consent", "status": "granted"},
    ]


@pytest.mark.parametrize("event_type", CREATING_TYPES)
def test_every_creating_type_makes_a_lead_and_keeps_event_fields_off_the_contact(event_type):
    event = valid(event_type, unknown_key="x", bio="not a field of this type")
    contact, transition = apply_event(None, event, "new-uuid", T1)
    assert transition == FunnelTransition(None, LEAD, None, False)
    assert contact.email == EMAIL
    contact_fields = {f.name for f in event.type.fields if f.contact}
    allowed = contact_fields | ({"cf_custom_field_api_identifier"}
                                if event.type.custom_fields else set())
    expected = {k: v for k, v in event.payload.items()
                if k in allowed and k not in ("email", "tags", "legal_bases")}
    assert contact.profile == expected


def test_chat_birthdate_and_gender_go_to_the_contact_but_chat_fields_do_not():
    contact, _ = apply_event(None, valid("CHAT_STARTED"), "u", T1)
    assert contact.profile["cf_birthdate"] == "1980-06-10"
    assert contact.profile["cf_gender"] == "Gender of the Contact"
    assert not {"chat_subject", "cf_chat_status", "cf_chat_type"} & contact.profile.keys()


@pytest.mark.parametrize("event_type", QUALIFICATION_TYPES)
def test_qualification_event_without_a_contact_raises(event_type):
    with pytest.raises(ValueError, match=event_type):
        apply_event(None, valid(event_type), "u", T1)


# --- existing contacts ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", CREATING_TYPES)
def test_no_transition_for_a_non_qualification_event_on_an_existing_contact(event_type):
    contact, transition = apply_event(existing(CLIENT, True), valid(event_type), "unused", T1)
    assert transition is None
    assert (contact.uuid, contact.id, contact.created_at, contact.updated_at) == (
        "c-1", 7, T0, T1)
    assert (contact.lifecycle_stage, contact.opportunity) == (CLIENT, True)


@pytest.mark.parametrize(
    ("event_type", "changes", "before", "after", "transition"),
    [
        ("OPPORTUNITY", {}, (LEAD, False), (LEAD, True),
         FunnelTransition(LEAD, LEAD, False, True)),
        ("OPPORTUNITY", {}, (CLIENT, True), (CLIENT, True),
         FunnelTransition(CLIENT, CLIENT, True, True)),
        ("SALE", {}, (LEAD, True), (CLIENT, True),
         FunnelTransition(LEAD, CLIENT, True, True, value=200.0)),
        ("SALE", {"value": None}, (LEAD, False), (CLIENT, False),
         FunnelTransition(LEAD, CLIENT, False, False, value=None)),
        ("OPPORTUNITY_LOST", {}, (LEAD, True), (LEAD, False),
         FunnelTransition(LEAD, LEAD, True, False, reason="Lost reason")),
        ("OPPORTUNITY_LOST", {"reason": None}, (CLIENT, True), (CLIENT, False),
         FunnelTransition(CLIENT, CLIENT, True, False, reason=None)),
    ],
)
def test_qualification_transitions(event_type, changes, before, after, transition):
    contact, got = apply_event(existing(*before, name="Kept"), valid(event_type, **changes),
                               "unused", T1)
    assert got == transition
    assert (contact.lifecycle_stage, contact.opportunity) == after
    assert contact.profile == {"name": "Kept"}  # qualification events carry no contact fields
    assert (contact.uuid, contact.updated_at) == ("c-1", T1)


def test_sale_value_is_recorded_as_a_float():
    _, transition = apply_event(existing(), valid("SALE", value=150), "unused", T1)
    assert transition.value == 150.0 and type(transition.value) is float


def test_a_later_conversion_overwrites_the_fields_it_carries_and_keeps_the_others():
    contact = existing(name="Old", city="Recife", available_for_mailing=True, cf_plan="gold")
    body = {"event_type": "CONVERSION", "event_family": "CDP",
            "payload": {"conversion_identifier": "x", "email": EMAIL, "name": "New",
                        "available_for_mailing": False, "cf_plan": "silver"}}
    event, errors = validate_event(body)
    assert errors == []
    contact, _ = apply_event(contact, event, "unused", T1)
    assert contact.profile == {"name": "New", "city": "Recife", "available_for_mailing": False,
                               "cf_plan": "silver"}


# --- tags and legal bases -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "merged"),
    [
        ([], ["MQL", "2019"], ["mql", "2019"]),
        (["mql"], [" MQL ", "Lead", "lead", "2019"], ["mql", "lead", "2019"]),
        (["b", "a"], ["a", "C", "b"], ["b", "a", "c"]),
        (["a"], ["", "  "], ["a"]),
        (["a"], [], ["a"]),
    ],
)
def test_merge_tags(current, new, merged):
    before = list(current)
    assert merge_tags(current, new) == merged
    assert current == before  # the input is not mutated


def test_tags_accumulate_across_events():
    contact = existing()
    contact.tags = ["vip"]
    contact, _ = apply_event(contact, valid("CONVERSION", tags=["MQL", "VIP", "new"]), "u", T1)
    assert contact.tags == ["vip", "mql", "new"]


DP_CONTRACT = {"category": "data_processing", "type": "pre_existent_contract"}
COMM_CONSENT_GRANTED = {"category": "communications", "type": "consent", "status": "granted"}
COMM_CONSENT_DECLINED = {"category": "communications", "type": "consent", "status": "declined"}
DP_CONSENT = {"category": "data_processing", "type": "consent", "status": "granted"}


@pytest.mark.parametrize(
    ("current", "new", "merged"),
    [
        ([], [DP_CONTRACT, COMM_CONSENT_GRANTED], [DP_CONTRACT, COMM_CONSENT_GRANTED]),
        # the newer basis of the same (category, type) replaces the older, in its place
        ([COMM_CONSENT_GRANTED, DP_CONTRACT], [COMM_CONSENT_DECLINED],
         [COMM_CONSENT_DECLINED, DP_CONTRACT]),
        # same type, other category: two bases
        ([COMM_CONSENT_GRANTED], [DP_CONSENT], [COMM_CONSENT_GRANTED, DP_CONSENT]),
        # a null status is not kept
        ([], [{"category": "data_processing", "type": "vital_interest", "status": None}],
         [{"category": "data_processing", "type": "vital_interest"}]),
        # the last of duplicates inside one event wins
        ([], [COMM_CONSENT_GRANTED, COMM_CONSENT_DECLINED], [COMM_CONSENT_DECLINED]),
        # a basis without status replaces one with a status
        ([DP_CONSENT], [{"category": "data_processing", "type": "consent"}],
         [{"category": "data_processing", "type": "consent"}]),
    ],
)
def test_merge_legal_bases(current, new, merged):
    before = copy.deepcopy(current)
    assert merge_legal_bases(current, new) == merged
    assert current == before


def test_legal_bases_merge_through_apply_event():
    contact = existing()
    contact.legal_bases = [COMM_CONSENT_DECLINED, DP_CONSENT]
    contact, _ = apply_event(contact, valid("ORDER_PLACED"), "u", T1)
    assert contact.legal_bases == [COMM_CONSENT_GRANTED, DP_CONSENT, DP_CONTRACT]
