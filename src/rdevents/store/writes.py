"""What storing a group of write jobs does, whatever the backend.

The jobs of a group are applied in memory, in order, against the contacts they concern (loaded in
one query); the pure rules of `contacts.py` decide every change. A job with errors leaves no trace.
Then the accepted jobs' rows are written in bulk: one statement per table, not one per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from ..ids import new_uuid
from ..contacts import Contact, FunnelTransition, apply_event
from ..validation import Error, ValidEvent, child, unknown_contact_error
from . import Failed, Rejected, WriteJob

ContactKey = tuple[int, str]  # (account_id, e-mail)


@dataclass
class EventRow:
    job: WriteJob
    event: ValidEvent
    event_uuid: str
    payload: str
    contact: ContactKey
    transition: FunnelTransition | None


@dataclass
class GroupRows:
    """What a group's accepted jobs write: the final state of each contact they touched, and
    their events (with funnel transitions) in order."""

    contacts: dict[ContactKey, Contact] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)


class WriteBackend(Protocol):
    """The two things a backend does inside the group's transaction."""

    def load_contacts(self, keys: set[ContactKey]) -> dict[ContactKey, Contact]:
        """The stored contacts among `keys` (absent keys are left out)."""

    def flush(self, rows: GroupRows) -> None:
        """Insert new contacts (id None), update the others, insert events and transitions."""


def event_identifier(event: ValidEvent) -> str:
    """RD's name for the event in a contact's history."""
    name = event.type.identifier_field
    return event.payload[name] if name else event.type.name


def write_group(backend: WriteBackend, jobs: list[WriteJob]) -> list[Rejected | Failed | None]:
    """Apply and write `jobs`; one outcome per job (None when it will commit with the group)."""
    stored = backend.load_contacts({(job.account_id, event.email)
                                    for job in jobs for event in job.events})
    rows = GroupRows()
    outcomes: list[Rejected | Failed | None] = []
    for job in jobs:
        try:
            touched, events, errors = _apply_job(job, rows.contacts, stored)
        except Exception as exc:  # a bug: fail this job alone
            outcomes.append(Failed(exc))
            continue
        if errors:
            outcomes.append(Rejected(errors))
            continue
        rows.contacts.update(touched)
        rows.events.extend(events)
        outcomes.append(None)
    if rows.events:
        backend.flush(rows)
    return outcomes


def _apply_job(job: WriteJob, group: dict[ContactKey, Contact],
               stored: dict[ContactKey, Contact]
               ) -> tuple[dict[ContactKey, Contact], list[EventRow], list[Error]]:
    """Apply one job to private copies of its contacts, so that a rejected job changes nothing.

    Events are applied even after an error, so that later events see the contacts earlier ones
    would create and every error of the job is reported.
    """
    touched: dict[ContactKey, Contact] = {}
    events: list[EventRow] = []
    errors: list[Error] = []
    for event, event_uuid, payload in zip(job.events, job.event_uuids, job.payloads):
        key = (job.account_id, event.email)
        contact = touched.get(key)
        if contact is None:
            current = group.get(key) or stored.get(key)
            contact = None if current is None else _copy(current)
        if contact is None and not event.type.creates_contact:
            errors.append(unknown_contact_error(event.type.name, event.email,
                                                child(child(event.path, "payload"), "email")))
            continue
        contact, transition = apply_event(contact, event, new_uuid() if contact is None else None,
                                          job.received_at)
        touched[key] = contact
        events.append(EventRow(job, event, event_uuid, payload, key, transition))
    return touched, events, errors


def _copy(contact: Contact) -> Contact:
    return replace(contact, profile=dict(contact.profile), tags=list(contact.tags),
                   legal_bases=list(contact.legal_bases))
