"""Default events: conversion and funnel qualification (seed: "Eventos Predeterminados")."""

from .fields import (
    LEGAL_BASES,
    LEGAL_BASES_EXAMPLE,
    EventType,
    Field,
    FieldType,
    contact_string,
    email,
    event_string,
    funnel_name,
)

CONVERSION = EventType(
    name="CONVERSION",
    family="standard",
    title="Conversion",
    description="Registered every time a conversion happens. The value of conversion_identifier "
    "is the identifier of the event. Creates or updates the contact.",
    fields=(
        event_string("conversion_identifier", "The name of the conversion event.", required=True),
        contact_string("name", "Name of the contact."),
        email(),
        contact_string("job_title", "Job title of the contact."),
        contact_string("state", "State of the contact."),
        contact_string("city", "City of the contact."),
        contact_string("country", "Country of the contact."),
        contact_string("personal_phone", "Phone of the contact."),
        contact_string("mobile_phone", "Mobile phone of the contact."),
        contact_string("twitter", "Twitter handler of the contact."),
        contact_string("facebook", "Facebook of the contact."),
        contact_string("linkedin", "Linkedin of the contact."),
        contact_string("website", "Website of the contact."),
        contact_string("company_name", "Company name of the contact."),
        contact_string("company_site", "Company website of the contact."),
        contact_string("company_address", "Company address of the contact."),
        event_string("client_tracking_id",
                     "Value of a '_rdtrk' cookie. (e.g: 43b00843-09af-4fae-bf9d-a0697640b808)"),
        event_string("traffic_source",
                     "This can either be the value of a '__trf.src' cookie (base 64 encoded or "
                     "not) or an UTM source param. If passing a cookie the following fields MUST "
                     "be empty: traffic_medium, traffic_campaign and traffic_value."),
        event_string("traffic_medium", "UTM medium param."),
        event_string("traffic_campaign", "UTM campaign param."),
        event_string("traffic_value", "UTM value param (term)."),
        Field("tags", FieldType.STRING_ARRAY, False, "Tags that can be added to the contact.",
              contact=True),
        Field("available_for_mailing", FieldType.BOOLEAN, False,
              "Enable/disable receive emails.", contact=True),
        LEGAL_BASES,
    ),
    custom_fields=True,
    rules=("traffic_source_cookie",),
    identifier_field="conversion_identifier",
    example={
        "event_type": "CONVERSION",
        "event_family": "CDP",
        "payload": {
            "conversion_identifier": "Name of the conversion event",
            "name": "Nome",
            "email": "email@email.com",
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
            "cf_custom_field_api_identifier": "custom field value",
            "company_name": "company name",
            "company_site": "company website",
            "company_address": "company address",
            "client_tracking_id": "lead tracking client_id",
            "traffic_source": "Google",
            "traffic_medium": "cpc",
            "traffic_campaign": "easter-50-off",
            "traffic_value": "easter eggs",
            "tags": ["mql", "2019"],
            "available_for_mailing": True,
            "legal_bases": LEGAL_BASES_EXAMPLE,
        },
    },
)

OPPORTUNITY = EventType(
    name="OPPORTUNITY",
    family="standard",
    title="Opportunity marked",
    description="Registers that a contact was marked as an opportunity. Does not create a "
    "contact: the contact must exist.",
    fields=(funnel_name("opportunity"), email()),
    creates_contact=False,
    example={
        "event_type": "OPPORTUNITY",
        "event_family": "CDP",
        "payload": {"email": "email@email.com", "funnel_name": "default"},
    },
)

SALE = EventType(
    name="SALE",
    family="standard",
    title="Opportunity won",
    description="Registers a contact as a won opportunity. Does not create a contact: the "
    "contact must exist.",
    fields=(
        funnel_name("won"),
        email(),
        Field("value", FieldType.FLOAT, False, "Value of the won opportunity."),
    ),
    creates_contact=False,
    example={
        "event_type": "SALE",
        "event_family": "CDP",
        "payload": {"email": "email@email.com", "funnel_name": "default", "value": 200.0},
    },
)

OPPORTUNITY_LOST = EventType(
    name="OPPORTUNITY_LOST",
    family="standard",
    title="Opportunity lost",
    description="Registers a contact as a lost opportunity. Does not create a contact: the "
    "contact must exist.",
    fields=(
        email(),
        funnel_name("lost"),
        event_string("reason", "Reason for why the Contact was marked as lost."),
    ),
    creates_contact=False,
    example={
        "event_type": "OPPORTUNITY_LOST",
        "event_family": "CDP",
        "payload": {"email": "email@email.com", "funnel_name": "default", "reason": "Lost reason"},
    },
)

EVENT_TYPES = (CONVERSION, OPPORTUNITY, SALE, OPPORTUNITY_LOST)
