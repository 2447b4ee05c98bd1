"""The building blocks of the event catalogue: field types, fields, event types.

Everything here is plain data. The validator, the OpenAPI document, the docs page and many tests
read it; none of them hard-code an event type or a field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any


class FieldType(Enum):
    """A type as the seed's tables name it, with the data type RD reports in its errors."""

    STRING = ("String", "STRING")
    INTEGER = ("Integer", "INTEGER")
    FLOAT = ("Float", "FLOAT")
    BOOLEAN = ("Boolean", "BOOLEAN")
    TIMESTAMP = ("Timestamp", "STRING")  # a string in RFC 3339 date-time format
    STRING_ARRAY = ("Array of Strings", "SET")  # RD reports tags as a SET
    OBJECT_ARRAY = ("Array of Objects", "ARRAY")

    def __init__(self, label: str, data_type: str) -> None:
        self.label = label
        self.data_type = data_type


@dataclass(frozen=True)
class Field:
    """One row of a seed table (a payload attribute)."""

    name: str
    type: FieldType
    required: bool
    description: str
    options: tuple[str, ...] | None = None
    # True when the value describes the contact and updates it; False when it stays on the event.
    contact: bool = False
    # "email" for e-mail addresses; TIMESTAMP fields are always checked as RFC 3339.
    format: str | None = None
    # For OBJECT_ARRAY: the fields of each element.
    items: tuple[Field, ...] = ()
    # Named cross-field rules of each element (see validation.ITEM_RULES).
    item_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventType:
    """One event type of the Events API."""

    name: str
    family: str  # the catalogue module it belongs to: standard, ecommerce, chat, call, media
    title: str
    description: str
    fields: tuple[Field, ...]
    example: dict[str, Any]
    # Qualification events need an existing contact; every other type upserts one.
    creates_contact: bool = True
    # CONVERSION accepts any cf_* key as a custom field of the contact.
    custom_fields: bool = False
    # Named cross-field rules of the payload (see validation.PAYLOAD_RULES).
    rules: tuple[str, ...] = ()
    # Which payload field names the event in the contact's history (RD's event_identifier);
    # None means the event type itself is the identifier.
    identifier_field: str | None = None
    deprecated: str | None = None
    source: str = "seed"  # "seed" or the reference section a type comes from

    @cached_property
    def fields_by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}


EVENT_FAMILY = "CDP"

# --- fields shared by many tables (descriptions as the seed words them) -------------------------

LEGAL_BASIS_CATEGORIES = ("data_processing", "communications")
LEGAL_BASIS_TYPES = (
    "pre_existent_contract",
    "consent",
    "legitimate_interest",
    "judicial_process",
    "vital_interest",
    "public_interest",
)
LEGAL_BASIS_STATUSES = ("granted", "declined")

LEGAL_BASES = Field(
    "legal_bases",
    FieldType.OBJECT_ARRAY,
    False,
    "Legal Bases of the contact.",
    contact=True,
    items=(
        Field("category", FieldType.STRING, True, "data_processing or communications",
              options=LEGAL_BASIS_CATEGORIES),
        Field("type", FieldType.STRING, True,
              "pre_existent_contract, consent, legitimate_interest, judicial_process, "
              "vital_interest or public_interest", options=LEGAL_BASIS_TYPES),
        Field("status", FieldType.STRING, False,
              "granted or declined (only when category is communications)",
              options=LEGAL_BASIS_STATUSES),
    ),
    item_rules=("legal_basis_status",),
)

FUNNEL_NAMES = ("default",)


def email(description: str = "Email of the contact.") -> Field:
    return Field("email", FieldType.STRING, True, description, contact=True, format="email")


def contact_string(name: str, description: str) -> Field:
    """An optional string that updates the contact (name, phones, socials, company...)."""
    return Field(name, FieldType.STRING, False, description, contact=True)


def event_string(name: str, description: str, required: bool = False) -> Field:
    """A string that stays on the event."""
    return Field(name, FieldType.STRING, required, description)


def funnel_name(verb: str) -> Field:
    return Field("funnel_name", FieldType.STRING, True,
                 f"Name of the funnel to which the Contact should be marked as {verb}.",
                 options=FUNNEL_NAMES)


LEGAL_BASES_EXAMPLE = [
    {"category": "data_processing", "type": "pre_existent_contract"},
    {"category": "communications", "type": "consent", "status": "granted"},
]
