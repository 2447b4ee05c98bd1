"""What storing a write job does, whatever the backend: load, decide (pure rules), persist."""

from __future__ import annotations

import uuid
from typing import Protocol

from ..contacts import Contact, FunnelTransition, apply_event
from ..validation import RESOURCE_NOT_FOUND, Error, ValidEvent, child, error
from . import WriteJob


class WriteSession(Protocol):
    """The statements a backend runs inside the group's transaction."""

    def load_contact(self, account_id: int, email: str) -> Contact | None: ...

    def save_contact(self, account_id: int, contact: Contact) -> None:
        """Insert (contact.id is None; sets it) or update the contact."""

    def insert_event(self, job: WriteJob, event: ValidEvent, event_uuid: str,
                     contact_id: int) -> int: ...

    def insert_transition(self, account_id: int, contact_id: int, event_id: int,
                          transition: FunnelTransition, at: str) -> None: ...


def event_identifier(event: ValidEvent) -> str:
    """RD's name for the event in a contact's history."""
    field = event.type.identifier_field
    return event.payload[field] if field else event.type.name


def apply_job(session: WriteSession, job: WriteJob) -> list[Error]:
    """Apply every event of `job` in order; return the errors that forbid committing it.

    Events are applied even after an error, so that later events see the contacts earlier ones
    would create and every error of the job is reported; the caller rolls back on any error.
    """
    errors: list[Error] = []
    for event, event_uuid in zip(job.events, job.event_uuids):
        contact = session.load_contact(job.account_id, event.email)
        if contact is None and not event.type.creates_contact:
            errors.append(unknown_contact_error(event))
            continue
        contact, transition = apply_event(contact, event, str(uuid.uuid4()), job.received_at)
        session.save_contact(job.account_id, contact)
        event_id = session.insert_event(job, event, event_uuid, contact.id)
        if transition is not None:
            session.insert_transition(job.account_id, contact.id, event_id, transition,
                                      job.received_at)
    return errors


def unknown_contact_error(event: ValidEvent) -> Error:
    return error(
        RESOURCE_NOT_FOUND,
        f"No contact has the e-mail '{event.email}'. {event.type.name} does not create contacts: "
        "send a CONVERSION for this e-mail first (an earlier event of the same batch counts).",
        child(child(event.path, "payload"), "email"),
    )
