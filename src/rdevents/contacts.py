"""How events change contacts and their funnel: pure functions, no I/O.

The store loads a contact, calls `apply_event`, and persists what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .catalogue import EVENT_TYPES
from .custom_fields import stored_value
from .validation import ValidEvent

LEAD = "Lead"
QUALIFIED_LEAD = "Qualified Lead"
CLIENT = "Client"
LIFECYCLE_STAGES = (LEAD, QUALIFIED_LEAD, CLIENT)

# RD's contact attributes, in the order RD's contact documents list them; then cf_* fields.
RD_ATTRIBUTES = ("name", "job_title", "birthdate", "bio", "website", "personal_phone",
                 "mobile_phone", "city", "state", "country", "twitter", "facebook", "linkedin")
# Contact attributes handled on their own rather than copied into the profile.
_SPECIAL = frozenset({"email", "tags", "legal_bases"})
# For each event type, the fields copied as they are into the contact's profile: attributes,
# and cf_* fields of the catalogue's own (the chat events' cf_birthdate and cf_gender).
_PROFILE_FIELDS = {
    t.name: tuple(f.name for f in t.fields
                  if f.contact and f.name not in _SPECIAL and not f.name.startswith("cf_"))
    for t in EVENT_TYPES.values()
}
_CUSTOM_PROFILE_FIELDS = {
    t.name: tuple(f.name for f in t.fields if f.contact and f.name.startswith("cf_"))
    for t in EVENT_TYPES.values()
}


@dataclass
class Contact:
    uuid: str
    email: str
    created_at: str
    updated_at: str
    # RD's contact attributes (name, job_title, phones, socials, company_*, city, ...,
    # available_for_mailing) and cf_* custom fields.
    profile: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    legal_bases: list[dict[str, str]] = field(default_factory=list)
    lifecycle_stage: str = LEAD
    opportunity: bool = False
    contact_owner_email: str | None = None
    id: int | None = None  # the store's key; None until stored


def attributes_of(contact: Contact, names: tuple[str, ...] = RD_ATTRIBUTES) -> dict[str, Any]:
    """The contact's attributes among `names` that are set, in that order."""
    return {name: contact.profile[name] for name in names if name in contact.profile}


def custom_fields_of(contact: Contact) -> dict[str, Any]:
    """The contact's cf_* custom fields, by name."""
    profile = contact.profile
    return {name: profile[name] for name in sorted(k for k in profile if k.startswith("cf_"))}


@dataclass(frozen=True)
class FunnelTransition:
    """One change of a contact's funnel, caused by one event."""

    from_stage: str | None
    to_stage: str
    from_opportunity: bool | None
    to_opportunity: bool
    value: float | None = None  # SALE
    reason: str | None = None  # OPPORTUNITY_LOST


# The transition of every new contact: it enters the funnel as a Lead.
NEW_CONTACT = FunnelTransition(None, LEAD, None, False)


def apply_event(contact: Contact | None, event: ValidEvent, new_uuid: str | None,
                now: str, custom_values: dict[str, Any] | None = None
                ) -> tuple[Contact, FunnelTransition | None]:
    """The contact after `event`, and the funnel transition it caused (if any).

    `contact` is None for an unknown e-mail; only event types that create contacts may get one,
    and it gets `new_uuid`. `custom_values` are the event's `custom_field_values`, when the
    caller has them already.
    """
    if contact is None:
        if new_uuid is None:
            raise ValueError("a new contact needs a uuid")
        if not event.type.creates_contact:
            raise ValueError(f"{event.type.name} does not create contacts")
        contact = Contact(uuid=new_uuid, email=event.email, created_at=now, updated_at=now)
        transition: FunnelTransition | None = NEW_CONTACT
    else:
        transition = None
    _merge_attributes(contact, event,
                      custom_field_values(event) if custom_values is None else custom_values)
    transition = _apply_funnel(contact, event) or transition
    contact.updated_at = now
    return contact, transition


def _merge_attributes(contact: Contact, event: ValidEvent,
                      custom_values: dict[str, Any]) -> None:
    payload, event_type, profile = event.payload, event.type, contact.profile
    profile.update({name: value for name in _PROFILE_FIELDS[event_type.name]
                    if (value := payload.get(name)) is not None})  # absent or null: kept
    profile.update(custom_values)
    known = event_type.fields_by_name
    if "tags" in known and payload.get("tags"):
        contact.tags = merge_tags(contact.tags, payload["tags"])
    if "legal_bases" in known and payload.get("legal_bases"):
        contact.legal_bases = merge_legal_bases(contact.legal_bases, payload["legal_bases"])


def custom_field_values(event: ValidEvent) -> dict[str, Any]:
    """The cf_* custom fields an event writes on its contact, with their values."""
    payload = event.payload
    names = _CUSTOM_PROFILE_FIELDS[event.type.name]
    values = {name: stored_value(payload[name]) for name in names
              if payload.get(name) is not None} if names else {}
    for key in event.custom_fields:
        value = payload[key]
        if value is not None:
            values[key] = stored_value(value)
    return values


def merge_tags(current: list[str], new: list[str]) -> list[str]:
    """Tags are a set of lower-cased, trimmed strings, kept in the order first seen."""
    merged = list(current)
    seen = set(merged)
    for tag in new:
        tag = tag.strip().lower()
        if tag and tag not in seen:
            seen.add(tag)
            merged.append(tag)
    return merged


def merge_legal_bases(current: list[dict[str, Any]],
                      new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One legal basis per (category, type): a newer one replaces the older."""
    if new == current:  # the same bases again, as most integrations send
        return current
    by_key = {(b["category"], b["type"]): b for b in current} if current else {}
    for basis in new:  # category and type are required; status is kept when given
        category, kind, status = basis["category"], basis["type"], basis.get("status")
        by_key[(category, kind)] = ({"category": category, "type": kind} if status is None else
                                    {"category": category, "type": kind, "status": status})
    return list(by_key.values())


def _apply_funnel(contact: Contact, event: ValidEvent) -> FunnelTransition | None:
    name = event.type.name
    before_stage, before_opportunity = contact.lifecycle_stage, contact.opportunity
    if name == "OPPORTUNITY":
        contact.opportunity = True
        extra: dict[str, Any] = {}
    elif name == "SALE":
        contact.lifecycle_stage = CLIENT
        extra = {"value": _float_or_none(event.payload.get("value"))}
    elif name == "OPPORTUNITY_LOST":
        contact.opportunity = False
        extra = {"reason": event.payload.get("reason")}
    else:
        return None
    return FunnelTransition(before_stage, contact.lifecycle_stage, before_opportunity,
                            contact.opportunity, **extra)


@dataclass(frozen=True)
class FunnelUpdate:
    """A change of a contact's funnel through the API (RD's PUT .../funnels/default): only the
    attributes given change; `contact_owner_email` None with `owner_given` unsets the owner."""

    lifecycle_stage: str | None = None
    opportunity: bool | None = None
    owner_given: bool = False
    contact_owner_email: str | None = None


class ContactChangeRefused(Exception):
    """A contacts-API change that the contact's state forbids (RD's error type and message)."""

    def __init__(self, error_type: str, message: str, attribute: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        # RD's attribute-keyed errors, when the refusal is about attributes.
        self.by_attribute: dict[str, list[dict[str, str]]] = {}
        if attribute:
            self.by_attribute[attribute] = [{"error_type": error_type, "error_message": message}]

    @classmethod
    def from_errors(cls, errors: list[dict[str, Any]]) -> ContactChangeRefused:
        """One refusal for the errors of a rejected change (each with the attribute it is about
        as its path, or none): a request-level error if there is one, else every attribute's."""
        plain = [e for e in errors if not e["path"]]
        first = (plain or errors)[0]
        refused = cls(first["error_type"], first["error_message"], first["path"] or None)
        for other in [] if plain else errors[1:]:
            refused.by_attribute.setdefault(other["path"], []).append(
                {"error_type": other["error_type"], "error_message": other["error_message"]})
        return refused


@dataclass(frozen=True)
class ContactChange:
    """A change of a contact through RD's contacts API.

    kind: "create" (POST: the e-mail must be new; tags added), "upsert" (PATCH: created or
    updated; tags replaced), "tag" (POST .../tag: the contact must exist; tags added, none
    already there), "funnel" (PUT .../funnels/default). An erasure is a job of its own
    (process.EraseJob).
    """

    kind: str
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None
    legal_bases: list[dict[str, Any]] | None = None
    funnel: FunnelUpdate | None = None


def apply_contact_change(contact: Contact | None, change: ContactChange, email: str,
                         new_uuid: str, now: str) -> tuple[Contact, FunnelTransition | None]:
    """The contact after an API change, and the funnel transition it caused (if any)."""
    if change.kind == "create" and contact is not None:
        raise ContactChangeRefused("EMAIL_ALREADY_IN_USE", "email already in use")
    if change.kind in ("tag", "funnel") and contact is None:
        raise ContactChangeRefused("RESOURCE_NOT_FOUND", "Lead not found.")
    transition = None
    if contact is None:
        contact = Contact(uuid=new_uuid, email=email, created_at=now, updated_at=now)
        transition = NEW_CONTACT
    if change.kind == "funnel":
        # A funnel change that names no attribute changes nothing.
        return contact, apply_funnel_update(contact, change.funnel or FunnelUpdate(), now)
    contact.profile.update({k: v for k, v in change.attributes.items() if v is not None})
    if change.tags is not None:
        tags = [t.strip().lower() for t in change.tags]
        if change.kind == "tag" and set(tags) & set(contact.tags):
            raise ContactChangeRefused("VALUES_MUST_BE_UNIQUE", "must not contain duplicate values",
                                       "tags")
        contact.tags = merge_tags([] if change.kind == "upsert" else contact.tags, tags)
    if change.legal_bases:
        contact.legal_bases = merge_legal_bases(contact.legal_bases, change.legal_bases)
    contact.updated_at = now
    return contact, transition


def apply_funnel_update(contact: Contact, update: FunnelUpdate, now: str) -> FunnelTransition:
    """Apply an API funnel change to `contact`; the transition records it."""
    before_stage, before_opportunity = contact.lifecycle_stage, contact.opportunity
    if update.lifecycle_stage is not None:
        contact.lifecycle_stage = update.lifecycle_stage
    if update.opportunity is not None:
        contact.opportunity = update.opportunity
    if update.owner_given:
        contact.contact_owner_email = update.contact_owner_email
    contact.updated_at = now
    return FunnelTransition(before_stage, contact.lifecycle_stage, before_opportunity,
                            contact.opportunity)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)

