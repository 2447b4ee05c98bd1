"""Webhooks as rules (pure): which subscriptions an event triggers, the body RD's v2 format sends,
and how a delivery is signed and retried."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from .contacts import Contact, attributes_of, custom_fields_of

CONVERTED = "WEBHOOK.CONVERTED"
MARKED_OPPORTUNITY = "WEBHOOK.MARKED_OPPORTUNITY"
WEBHOOK_EVENT_TYPES = (CONVERTED, MARKED_OPPORTUNITY)
RELATIONS = ("COMPANY", "CONTACT_FUNNEL")
SIGNATURE_HEADER = "X-RDEvents-Signature"
DELIVERY_HEADER = "X-RDEvents-Delivery"

# The event types that trigger each kind of webhook.
TRIGGERS = {"CONVERSION": CONVERTED, "OPPORTUNITY": MARKED_OPPORTUNITY}


@dataclass(frozen=True)
class Subscription:
    """What the writer needs of a webhook subscription."""

    id: int
    event_type: str
    include_relations: tuple[str, ...]
    event_identifiers: tuple[str, ...]

    def wants(self, event_type: str, identifier: str) -> bool:
        """Whether a webhook of `event_type` for a conversion named `identifier` goes here."""
        return self.event_type == event_type and (
            event_type != CONVERTED or not self.event_identifiers
            or identifier in self.event_identifiers)


def webhook_body(subscription: Subscription, identifier: str, contact: Contact,
                 event_time: str) -> dict[str, Any]:
    """RD's v2 webhook body for `contact` as it is now. `timestamp` is when it is sent: the
    sender sets it; until then it holds the event's time."""
    document: dict[str, Any] = {
        "uuid": contact.uuid, "email": contact.email, **attributes_of(contact),
        "tags": list(contact.tags),
        # RD leaves out custom fields with no value.
        **{name: value for name, value in custom_fields_of(contact).items()
           if value not in (None, "", [])},
        "legal_bases": [dict(basis) for basis in contact.legal_bases]}
    if "COMPANY" in subscription.include_relations:
        document["company"] = {"name": contact.profile.get("company_name")}
    if "CONTACT_FUNNEL" in subscription.include_relations:
        # interest and fit are RD's lead scores, and origin its attribution: rdevents has none.
        document["funnel"] = {"name": "default", "lifecycle_stage": contact.lifecycle_stage,
                              "opportunity": contact.opportunity,
                              "contact_owner_email": contact.contact_owner_email,
                              "interest": None, "fit": None, "origin": None}
    return {"event_type": subscription.event_type, "entity_type": "CONTACT",
            "event_identifier": identifier if subscription.event_type == CONVERTED else "default",
            "timestamp": event_time, "event_timestamp": event_time, "contact": document}


# A secret an account chooses: printable ASCII without spaces, long enough to be a key (and
# no longer than the 64 characters stored).
SECRET_LENGTHS = range(16, 65)


def acceptable_secret(value: Any) -> bool:
    return (isinstance(value, str) and len(value) in SECRET_LENGTHS
            and all("!" <= c <= "~" for c in value))


def signature(secret: str, body: bytes) -> str:
    """The value of the signature header: HMAC-SHA256 of the exact body, under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def next_delay(attempts: int, retry_delays: tuple[float, ...]) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None once the retries are
    spent and the delivery has failed."""
    return retry_delays[attempts - 1] if attempts <= len(retry_delays) else None
