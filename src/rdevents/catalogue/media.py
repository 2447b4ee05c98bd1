"""Media events (seed: "Eventos Multimedia")."""

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

_RFC3339 = "Must be in RFC 3339 datetime format (example: '2019-03-15T15:00:00.05Z')."

_COMMON = (
    email("Lead email"),
    contact_string("name", "Lead name"),
    contact_string("company_name", "Lead's company name"),
    contact_string("company_site", "Lead's company website"),
    contact_string("job_title", "Lead's job title"),
    contact_string("personal_phone", "Lead's phone"),
    contact_string("mobile_phone", "Lead's mobile pgone"),
    contact_string("twitter", "Lead's Twitter"),
    contact_string("facebook", "Lead's Facebook"),
    contact_string("linkedin", "Lead's Linkedin"),
    contact_string("website", "Lead's website"),
    event_string("media_type", "Video or Audio", required=True),
    event_string("media_metadata", "Media (audio or video) URL"),
    Field("media_recorded_content", FieldType.BOOLEAN, False,
          "True if this is a recording. False if it is live."),
    event_string("media_identifier", "identifier", required=True),
    event_string("media_category", "Media category"),
    Field("media_duration", FieldType.INTEGER, False, "Media duration, in seconds."),
    Field("media_published_date_timestamp", FieldType.TIMESTAMP, False,
          f"Datetime of media publishing. {_RFC3339}"),
)

# The seed types media_user_interaction_date_timestamp as String but requires RFC 3339 in its
# description; it is checked as a timestamp, which still reports 'STRING' for a wrong type.
_STOPPED_ONLY = (
    Field("media_finished", FieldType.BOOLEAN, False,
          "Indicates if the media was watched or listened to the end."),
    Field("media_user_interaction_duration", FieldType.INTEGER, False,
          "Time the user listend or watched the media. In seconds."),
    Field("media_user_interaction_percentage", FieldType.INTEGER, False,
          "Percentage of the media that the user listend or watched."),
    Field("media_user_interaction_date_timestamp", FieldType.TIMESTAMP, False,
          f"Datetime of when the media was consumed. {_RFC3339}"),
)

_EXAMPLE = {
    "email": "email@email.com",
    "name": "John Doe",
    "company_name": "Acme Inc",
    "company_site": "http://www.acme.inc",
    "job_title": "CTO",
    "personal_phone": "+551112341234",
    "mobile_phone": "+5511912341234",
    "twitter": "@johndoe",
    "facebook": "https://facebook.com/john.doe/",
    "linkedin": "https://www.linkedin.com/in/johndoe/",
    "website": "https://johndoe.com",
    "media_type": "Video",
    "media_metadata": "https://www.mycompany.com/videos/c9266675-f484-44a7-9ad1-e43a080a8545",
    "media_recorded_content": True,
    "media_identifier": "c9266675-f484-44a7-9ad1-e43a080a8545",
    "media_category": "Marketing",
    "media_duration": 58,
}

MEDIA_PLAYBACK_STARTED = EventType(
    name="MEDIA_PLAYBACK_STARTED",
    family="media",
    title="Media playback started",
    description="Registered every time the playback of a media (audio or video) starts.",
    fields=(*_COMMON, LEGAL_BASES),
    example={
        "event_type": "MEDIA_PLAYBACK_STARTED",
        "event_family": "CDP",
        "payload": {
            **_EXAMPLE,
            "media_published_date_timestamp": "2019-03-15T14:53:42.928Z",
            "legal_bases": LEGAL_BASES_EXAMPLE,
        },
    },
)

MEDIA_PLAYBACK_STOPPED = EventType(
    name="MEDIA_PLAYBACK_STOPPED",
    family="media",
    title="Media playback stopped",
    description="Registered every time the playback of a media (audio or video) ends.",
    fields=(*_COMMON, *_STOPPED_ONLY, LEGAL_BASES),
    example={
        "event_type": "MEDIA_PLAYBACK_STOPPED",
        "event_family": "CDP",
        "payload": {
            **_EXAMPLE,
            "media_finished": True,
            "media_published_date_timestamp": "2019-03-11T14:53:42.928Z",
            "media_user_interaction_duration": 30,
            "media_user_interaction_percentage": 30,
            "media_user_interaction_date_timestamp": "2019-03-15T14:53:42.928Z",
            "legal_bases": LEGAL_BASES_EXAMPLE,
        },
    },
)

EVENT_TYPES = (MEDIA_PLAYBACK_STARTED, MEDIA_PLAYBACK_STOPPED)
