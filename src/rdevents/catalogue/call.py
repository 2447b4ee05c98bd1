"""Call events (seed: "Eventos de Llamadas")."""

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

CALL_FINISHED = EventType(
    name="CALL_FINISHED",
    family="call",
    title="Call finished",
    description="Registered every time a call ends.",
    fields=(
        contact_string("name", "Lead name"),
        email("Lead email"),
        contact_string("company_name", "Lead's company name"),
        contact_string("company_site", "Lead's company website"),
        contact_string("job_title", "Lead's job title"),
        contact_string("personal_phone", "Leads phone (phone of the person who answered the call)"),
        event_string("call_user_email", "Caller email"),
        event_string("call_from_number", "Number of Call Tracking", required=True),
        Field("call_started_at", FieldType.TIMESTAMP, False,
              "Call starting time. Must be in RFC 3339 datetime format "
              "(example: '2019-03-15T15:00:00.05Z')."),
        event_string("call_duration", "Call duration, in seconds."),
        event_string("call_type", "Call type. Inbound or Outbound"),
        event_string("call_status", "Call status.", required=True),
        event_string("call_status_description",
                     'Call status complement. This could be the name of the recipient, a '
                     'personalized message or "Off"'),
        event_string("call_phone_type", "Phone type. Mobile or comercial."),
        event_string("call_carrier", "Carrier name"),
        event_string("call_record", "Call recording URL"),
        LEGAL_BASES,
    ),
    example={
        "event_type": "CALL_FINISHED",
        "event_family": "CDP",
        "payload": {
            "name": "John Doe",
            "email": "email@email.com",
            "company_name": "Acme Inc",
            "company_site": "http://www.acme.inc",
            "job_title": "CEO",
            "personal_phone": "+5511912341234",
            "call_user_email": "user.name@yourcompany.com",
            "call_from_number": "+551112341234",
            "call_started_at": "2019-03-15T14:53:42.928Z",
            "call_duration": "58",
            "call_type": "Inbound",
            "call_status": "in_progress",
            "call_status_description": "n/a",
            "call_phone_type": "Mobile",
            "call_carrier": "Vivo",
            "call_record": "http://wwww.mycompany.com/calls/c9266675-f484-44a7-9ad1-e43a080a8545",
            "legal_bases": LEGAL_BASES_EXAMPLE,
        },
    },
)

EVENT_TYPES = (CALL_FINISHED,)
