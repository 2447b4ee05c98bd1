"""The kinds of write job: what one request asks the store to do, all of it or nothing."""

from __future__ import annotations

from dataclasses import dataclass

from ..contacts import ContactChange
from ..validation import ValidEvent


@dataclass(frozen=True)
class RequestKey:
    """A request's idempotency key (its `Idempotency-Key` header) and the fingerprint of what
    it asks (its route and body): the same key with another fingerprint is refused."""

    key: str
    fingerprint: str


@dataclass(frozen=True)
class EventsJob:
    """The events of one request (one event, or a batch), stored together or not at all."""

    account_id: int
    received_at: str
    events: list[ValidEvent]
    event_uuids: list[str]
    payloads: list[str]  # each event's payload as stored: JSON text, made off the writer
    batch_uuid: str | None = None
    rate_limited: bool = False  # whether the account's rate limits apply (see limits.py)
    key: RequestKey | None = None  # kept with the events, if they are accepted


@dataclass(frozen=True)
class ContactChangeJob:
    """A change of the contact with this e-mail through RD's contacts API (create, upsert, tag,
    funnel)."""

    account_id: int
    received_at: str
    email: str
    change: ContactChange


@dataclass(frozen=True)
class EraseJob:
    """The erasure (LGPD) of the contact with this e-mail: the contact, its funnel, its tags'
    index entries, and the personal data of its events and webhook deliveries."""

    account_id: int
    received_at: str
    email: str


Job = EventsJob | ContactChangeJob | EraseJob
