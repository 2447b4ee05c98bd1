"""Chat events (seed: "Eventos de Chat")."""

from .fields import (
    LEGAL_BASES,
    LEGAL_BASES_EXAMPLE,
    EventType,
    Field,
    FieldType,
    contact_string,
    email,
    event_string,
)

_CONTACT_FIELDS = (
    contact_string("name", "Name of the contact."),
    email(),
    contact_string("job_title", "Job title of the contact."),
    contact_string("personal_phone", "Phone of the contact."),
    contact_string("mobile_phone", "Mobile phone of the contact."),
    contact_string("twitter", "Twitter handler of the contact."),
    contact_string("facebook", "Facebook of the contact."),
    contact_string("linkedin", "Linkedin of the contact."),
    contact_string("website", "Website of the contact."),
    contact_string("company_name", "Company name of the contact."),
    contact_string("company_site", "Company website of the contact."),
    LEGAL_BASES,
)
_SUBJECT = event_string("chat_subject", "The subject of the chat.", required=True)
_STATUS = event_string("cf_chat_status", "Status of the chat.", required=True)
_TRANSCRIPT = event_string("cf_chat_transcript_message", "Transcript of the chat.", required=True)
# cf_birthdate and cf_gender describe the person, so they update the contact's custom fields.
_PROFILE = (
    event_string("cf_chat_type", "Type of the chat."),
    Field("cf_birthdate", FieldType.STRING, False, "Bith date of the Contact", contact=True),
    Field("cf_gender", FieldType.STRING, False, "Gender of the Contact.", contact=True),
)

_EXAMPLE_PAYLOAD = {
    "name": "Name of the contact",
    "email": "email@email.com",
    "company_name": "Company name of the contact",
    "company_site": "Company website of the contact",
    "job_title": "Job title of the contact",
    "personal_phone": "Phone of the contact",
    "mobile_phone": "Mobile phone of the contact",
    "twitter": "Twitter handler of the contact",
    "facebook": "Facebook of the contact",
    "linkedin": "Linkedin of the contact",
    "website": "Website of the contact",
    "chat_subject": "Chat subject",
    "cf_birthdate": "1980-06-10",
    "cf_gender": "Gender of the Contact",
    "cf_chat_status": "online",
    "cf_chat_type": "Type of the chat: sales, support, ...",
}

CHAT_STARTED = EventType(
    name="CHAT_STARTED",
    family="chat",
    title="Chat started",
    description="Registered every time a chat conversation starts.",
    fields=(_SUBJECT, _STATUS, *_PROFILE, *_CONTACT_FIELDS),
    example={
        "event_type": "CHAT_STARTED",
        "event_family": "CDP",
        "payload": {**_EXAMPLE_PAYLOAD, "legal_bases": LEGAL_BASES_EXAMPLE},
    },
)

CHAT_FINISHED = EventType(
    name="CHAT_FINISHED",
    family="chat",
    title="Chat finished",
    description="Registered every time a chat conversation ends.",
    fields=(_SUBJECT, _STATUS, _TRANSCRIPT, *_PROFILE, *_CONTACT_FIELDS),
    example={
        "event_type": "CHAT_FINISHED",
        "event_family": "CDP",
        "payload": {
            **_EXAMPLE_PAYLOAD,
            "cf_chat_transcript_message": "Transcript of the chat",
            "legal_bases": LEGAL_BASES_EXAMPLE,
        },
    },
)

EVENT_TYPES = (CHAT_STARTED, CHAT_FINISHED)
