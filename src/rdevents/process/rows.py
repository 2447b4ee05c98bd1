"""The decisions of a group, as the rows its accepted jobs write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..contacts import Contact, FunnelTransition
from ..limits import CounterKey
from ..validation import ValidEvent
from .jobs import EventsJob, RequestKey
from .outcomes import KeyTaken, Repeated

ContactKey = tuple[int, str]  # (account_id, e-mail)
FieldKey = tuple[int, str]  # (account_id, cf_* api_identifier)
KeyRef = tuple[int, str]  # (account_id, idempotency key)


@dataclass(frozen=True)
class KeptRequest:
    """What an idempotency key keeps of the request that committed with it."""

    fingerprint: str
    event_uuids: tuple[str, ...]
    batch_uuid: str | None

    def answer(self, key: RequestKey) -> Repeated | KeyTaken:
        """What a request with the same key is answered: the same events again when it asks
        the same, else a refusal."""
        if key.fingerprint != self.fingerprint:
            return KeyTaken(in_flight=False)
        return Repeated(self.event_uuids, self.batch_uuid)


# A group makes one of each of these rows for each event it writes (a delivery, a relay row for
# each subscription or relay): named tuples, made in a sixth of the time a frozen dataclass
# takes, which sets each field through object.__setattr__.


class EventRow(NamedTuple):
    job: EventsJob
    event: ValidEvent
    event_uuid: str
    payload: str
    identifier: str  # RD's name for the event in a contact's history
    contact: ContactKey
    transition: FunnelTransition | None


class Delivery(NamedTuple):
    """A webhook to send once the group commits: its body, made from the contact as the event
    left it."""

    contact: ContactKey
    webhook_id: int
    event_uuid: str | None
    body: str


class RelayRow(NamedTuple):
    """An event to forward through a relay once the group commits: a row of the relay's
    outbox, in the order the group accepted its events."""

    relay_id: int
    event_uuid: str
    contact: ContactKey


@dataclass
class GroupRows:
    """What a group's accepted jobs write: the final state of each contact they touched (id
    None for a new one), their events (with funnel transitions) in order, the rate counters
    they moved, funnel changes made through the API, the custom fields they define, the
    webhook deliveries they queue, the events they queue for relays and the jobs whose
    idempotency keys they keep."""

    contacts: dict[ContactKey, Contact] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    counters: dict[CounterKey, int] = field(default_factory=dict)
    # Funnel changes made through the API: (contact, transition, time); caused by no event.
    api_transitions: list[tuple[ContactKey, FunnelTransition, str]] = field(
        default_factory=list)
    # Custom fields first seen in this group, with the data type their first value showed.
    new_fields: dict[FieldKey, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    relay_rows: list[RelayRow] = field(default_factory=list)
    keyed: list[EventsJob] = field(default_factory=list)
    # The tags each stored contact had before the group, for the tag index.
    tags_before: dict[ContactKey, list[str]] = field(default_factory=dict)
