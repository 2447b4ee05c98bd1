"""Custom fields: what a cf_* field's definition holds, and the rules for its values (pure).

An account defines its fields through RD's fields API; a cf_* key first seen in an event or a
contacts-API body defines one with the type its value shows. A value of another type than its
field's is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .catalogue import EVENT_ONLY_CUSTOM_NAMES

DATA_TYPES = ("STRING", "INTEGER", "BOOLEAN", "STRING[]")
PRESENTATION_TYPES = ("TEXT_INPUT", "EMAIL_INPUT", "COMBO_BOX", "URL_INPUT", "TEXT_AREA",
                      "RADIO_BUTTON", "PHONE_INPUT", "NUMBER_INPUT", "CHECK_BOX",
                      "MULTIPLE_CHOICE")
# How a field defined by its first value is presented.
INFERRED_PRESENTATION = {"STRING": "TEXT_INPUT", "INTEGER": "NUMBER_INPUT",
                         "BOOLEAN": "RADIO_BUTTON", "STRING[]": "CHECK_BOX"}
API_IDENTIFIER = re.compile(r"cf_[a-z0-9_]{1,196}")  # use with fullmatch

# RD's reserved names (besides the e-commerce and chat cf_* names the catalogue gives events).
RESERVED_NAMES = frozenset({
    "account_id", "address", "bio", "birthdate", "c_utmz", "city", "client_id",
    "client_tracking_id", "company", "company_address", "company_name", "company_site",
    "conversion_identifier", "country", "created_at", "email", "facebook", "id", "job_title",
    "legal_bases", "lifecycle_stage", "linkedin", "mobile_phone", "name", "opportunity",
    "personal_phone", "state", "tags", "traffic_campaign", "traffic_medium", "traffic_source",
    "traffic_value", "twitter", "uuid", "website",
}) | EVENT_ONLY_CUSTOM_NAMES


@dataclass(frozen=True)
class FieldDefinition:
    uuid: str
    api_identifier: str
    data_type: str
    name: dict[str, str]
    label: dict[str, str]
    presentation_type: str
    validation_rules: dict[str, Any]
    origin: str  # "API", or "EVENT" for a field defined by the first value seen
    created_at: str
    updated_at: str


# An INTEGER field holds what a 64-bit integer holds, as the integers of most clients and
# databases do: a wider number could only be kept altered.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def beyond_int64(value: Any) -> bool:
    """Whether a number is outside what an INTEGER field holds (1e300, 1e19, -2**63 - 1)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and not INT64_MIN <= value <= INT64_MAX)


def infer_data_type(value: Any) -> str | None:
    """The data type a value shows; None when it fits none (the validator refuses those)."""
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int) or isinstance(value, float) and value.is_integer():
        return "INTEGER"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "STRING[]"
    return None


def fits(data_type: str, value: Any) -> bool:
    """Whether a value may be stored in a field of `data_type` (INTEGER takes 2.0, not 2.5)."""
    if data_type == "STRING[]":
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return infer_data_type(value) == data_type


def stored_value(value: Any) -> Any:
    """A custom field's value as the contact keeps it: 2.0 is the INTEGER 2."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def inferred_definition(api_identifier: str, data_type: str, uuid: str,
                        now: str) -> FieldDefinition:
    """The definition made for a cf_* key first seen with a value of `data_type`."""
    names = {"default": api_identifier, "pt-BR": api_identifier}
    return FieldDefinition(uuid, api_identifier, data_type, names, dict(names),
                           INFERRED_PRESENTATION[data_type], {}, "EVENT", now, now)


# RD's standard contact fields, listed by the fields API before the custom ones: (api_identifier,
# data type, presentation, Portuguese name). legal_bases is left out: no data type describes it.
STANDARD_FIELDS = (
    ("email", "STRING", "EMAIL_INPUT", "Email"),
    ("name", "STRING", "TEXT_INPUT", "Nome"),
    ("job_title", "STRING", "TEXT_INPUT", "Cargo"),
    ("state", "STRING", "TEXT_INPUT", "Estado"),
    ("city", "STRING", "TEXT_INPUT", "Cidade"),
    ("country", "STRING", "TEXT_INPUT", "País"),
    ("personal_phone", "STRING", "PHONE_INPUT", "Telefone"),
    ("mobile_phone", "STRING", "PHONE_INPUT", "Celular"),
    ("twitter", "STRING", "TEXT_INPUT", "Twitter"),
    ("facebook", "STRING", "TEXT_INPUT", "Facebook"),
    ("linkedin", "STRING", "TEXT_INPUT", "LinkedIn"),
    ("website", "STRING", "URL_INPUT", "Website"),
    ("company_name", "STRING", "TEXT_INPUT", "Empresa"),
    ("company_site", "STRING", "URL_INPUT", "Site da empresa"),
    ("company_address", "STRING", "TEXT_INPUT", "Endereço da empresa"),
    ("tags", "STRING[]", "CHECK_BOX", "Tags"),
)
