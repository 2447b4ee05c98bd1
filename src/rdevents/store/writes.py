"""What storing a group of write jobs does, whatever the backend.

The jobs of a group are applied in memory, in order, against the contacts they concern (loaded in
one query); the pure rules of `contacts.py` decide every change. A job with errors leaves no trace.
Then the accepted jobs' rows are written in bulk: one statement per table, not one per event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Protocol

import orjson

from ..contacts import (
    Contact,
    ContactChangeRefused,
    FunnelTransition,
    apply_contact_change,
    apply_event,
    custom_field_values,
)
from ..custom_fields import fits, infer_data_type
from ..ids import new_uuid
from ..limits import CounterKey, Limited, Quota, check, job_counters
from ..outbound.webhooks import MARKED_OPPORTUNITY, TRIGGERS, Subscription, webhook_body
from ..validation import (
    INVALID_DATA_TYPE,
    RESOURCE_NOT_FOUND,
    Error,
    ValidEvent,
    child,
    element_index,
    error,
    type_error,
    unknown_contact_error,
)
from . import Failed, Rejected, WriteJob

ContactKey = tuple[int, str]  # (account_id, e-mail)
FieldKey = tuple[int, str]  # (account_id, cf_* api_identifier)


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
    """What a group's accepted jobs write: the final state of each contact they touched, their
    events (with funnel transitions) in order, and the rate counters they moved."""

    contacts: dict[ContactKey, Contact] = field(default_factory=dict)
    events: list[EventRow] = field(default_factory=list)
    counters: dict[CounterKey, int] = field(default_factory=dict)
    # Funnel changes made through the API: (contact, transition, time); caused by no event.
    api_transitions: list[tuple[ContactKey, FunnelTransition, str]] = field(
        default_factory=list)
    # Custom fields first seen in this group, with the data type their first value showed.
    new_fields: dict[FieldKey, str] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class Delivery:
    """A webhook to send once the group commits: its body, made from the contact as the event
    left it."""

    contact: ContactKey
    webhook_id: int
    event_uuid: str | None
    body: str


class WriteBackend(Protocol):
    """The two things a backend does inside the group's transaction."""

    def load_contacts(self, keys: set[ContactKey]) -> dict[ContactKey, Contact]:
        """The stored contacts among `keys` (absent keys are left out)."""

    def flush(self, rows: GroupRows) -> None:
        """Insert new contacts (id None), update the others, insert events and transitions,
        save the rate counters."""

    def load_quotas(self, account_ids: set[int]) -> dict[int, Quota]: ...

    def erase_contact(self, key: ContactKey, contact_id: int) -> None:
        """Delete the contact and its funnel; keep its events without personal data."""

    def lock_counters(self, account_ids: set[int]) -> None:
        """Keep other writers off these accounts' rate counters until the transaction ends."""

    def load_counters(self, keys: set[CounterKey]) -> dict[CounterKey, int]: ...

    def load_lookups(self, account_ids: set[int], field_keys: set[FieldKey]
                     ) -> tuple[dict[int, list[Subscription]], dict[FieldKey, str]]:
        """What a group needs besides its contacts: the webhook subscriptions of its accounts,
        and the data types of the defined custom fields among `field_keys`."""


def event_identifier(event: ValidEvent) -> str:
    """RD's name for the event in a contact's history."""
    name = event.type.identifier_field
    return event.payload[name] if name else event.type.name


def write_group(backend: WriteBackend,
                jobs: list[WriteJob]) -> list[Rejected | Failed | Limited | None]:
    """Apply and write `jobs`; one outcome per job (None when it will commit with the group)."""
    limits = _RateLimits(backend, [job for job in jobs if job.rate_limited])
    stored = backend.load_contacts(
        {(job.account_id, event.email) for job in jobs for event in job.events}
        | {(job.account_id, job.target_email) for job in jobs if job.target_email is not None})
    fields = _CustomFields(jobs)
    subscriptions, fields.types = backend.load_lookups({job.account_id for job in jobs},
                                                       fields.wanted)
    webhooks = _Webhooks(subscriptions)
    rows = GroupRows()
    outcomes: list[Rejected | Failed | Limited | None] = []
    for job in jobs:
        if job.contact_change is not None and job.contact_change.kind == "delete":
            outcomes.append(_delete_contact(backend, job, rows, stored))
            if outcomes[-1] is None:
                rows = GroupRows()  # what came before is written; start afresh
            continue
        refused = limits.refusal(job)
        if refused is not None:
            outcomes.append(refused)
            continue
        try:
            new_fields, errors = fields.check(job)
            if job.contact_change is not None:
                touched, events, deliveries, more = _apply_contact_change(
                    job, rows, stored, webhooks)
            else:
                touched, events, deliveries, more = _apply_job(job, rows.contacts, stored,
                                                               webhooks)
        except Exception as exc:  # a bug: fail this job alone
            outcomes.append(Failed(exc))
            continue
        errors += more
        if errors:
            outcomes.append(Rejected(sorted(errors, key=element_index)))
            continue
        rows.contacts.update(touched)
        rows.events.extend(events)
        rows.deliveries.extend(deliveries)
        rows.new_fields.update(new_fields)
        fields.accept(new_fields)
        limits.count(job, rows.counters)
        job.makes_deliveries = bool(deliveries)
        outcomes.append(None)
    if rows.contacts:
        backend.flush(rows)
    return outcomes


def _delete_contact(backend: WriteBackend, job: WriteJob, rows: GroupRows,
                    stored: dict[ContactKey, Contact]) -> Rejected | None:
    """Erase a contact (LGPD): first write what the group did so far, so that its events are
    erased too, then the contact, its funnel and its personal data in its events go."""
    key = (job.account_id, job.target_email)
    current = rows.contacts.get(key) or stored.get(key)
    if current is None:
        return Rejected([error(RESOURCE_NOT_FOUND, "Lead not found.", "")])
    if rows.contacts:
        backend.flush(rows)
        stored.update(rows.contacts)  # later jobs of the group start from what was written
    backend.erase_contact(key, current.id)
    stored.pop(key, None)
    return None


Applied = tuple[dict[ContactKey, Contact], list[EventRow], list[Delivery], list[Error]]


def _apply_contact_change(job: WriteJob, rows: GroupRows, stored: dict[ContactKey, Contact],
                          webhooks: _Webhooks) -> Applied:
    key = (job.account_id, job.target_email)
    current = rows.contacts.get(key) or stored.get(key)
    try:
        contact, transition = apply_contact_change(
            None if current is None else _copy(current), job.contact_change, job.target_email,
            new_uuid(), job.received_at)
    except ContactChangeRefused as refused:
        attribute = next(iter(refused.by_attribute), "")
        return {}, [], [], [error(refused.error_type, refused.message, attribute)]
    deliveries = []
    if transition is not None:
        rows.api_transitions.append((key, transition, job.received_at))
        if transition.to_opportunity and transition.from_opportunity is False:
            deliveries = webhooks.deliveries(MARKED_OPPORTUNITY, "default", key, contact, None,
                                             job.received_at)
    return {key: contact}, [], deliveries, []


class _CustomFields:
    """The data types of the custom fields a group's jobs write: the defined ones (`types`,
    loaded once for the `wanted` keys), and those a job defines by its first value once the job
    is accepted."""

    def __init__(self, jobs: list[WriteJob]) -> None:
        self.values = {id(job): list(_custom_values(job)) for job in jobs}
        self.wanted = {(job.account_id, name) for job in jobs
                       for _, values in self.values[id(job)] for name in values}
        self.types: dict[FieldKey, str] = {}

    def check(self, job: WriteJob) -> tuple[dict[FieldKey, str], list[Error]]:
        """The fields the job would define, and its values of the wrong type."""
        new: dict[FieldKey, str] = {}
        errors: list[Error] = []
        for path, values in self.values[id(job)]:
            for name, value in values.items():
                key = (job.account_id, name)
                data_type = self.types.get(key) or new.get(key)
                if data_type is None:
                    new[key] = infer_data_type(value) or "STRING"
                elif not fits(data_type, value):
                    errors.append(
                        type_error(data_type, child(path, name)) if path else
                        error(INVALID_DATA_TYPE, f"{name} must be of type '{data_type}'.", name,
                              {"data_type": data_type}))
        return new, errors

    def accept(self, new: dict[FieldKey, str]) -> None:
        self.types.update(new)


def _custom_values(job: WriteJob) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """The custom fields each part of a job writes: (the payload's path, or None for a
    contacts-API body, whose errors are keyed by attribute; the values)."""
    for event in job.events:
        values = custom_field_values(event)
        if values:
            yield child(event.path, "payload"), values
    if job.contact_change is not None:
        yield None, {name: value for name, value in job.contact_change.attributes.items()
                     if name.startswith("cf_") and value is not None}


class _Webhooks:
    """The webhook subscriptions of a group's accounts, and the deliveries they make."""

    def __init__(self, subscriptions: dict[int, list[Subscription]]) -> None:
        self.subscriptions = subscriptions

    def any_for(self, account_id: int) -> bool:
        return account_id in self.subscriptions

    def deliveries(self, webhook_type: str, identifier: str, key: ContactKey, contact: Contact,
                   event_uuid: str | None, at: str) -> list[Delivery]:
        return [Delivery(key, subscription.id, event_uuid, orjson.dumps(
                    webhook_body(subscription, identifier, contact, at)).decode())
                for subscription in self.subscriptions.get(key[0], ())
                if subscription.wants(webhook_type, identifier)]


class _RateLimits:
    """The rate counters of a group's limited jobs: loaded once, moved by accepted jobs."""

    def __init__(self, backend: WriteBackend, jobs: list[WriteJob]) -> None:
        accounts = {job.account_id for job in jobs}
        if accounts:
            backend.lock_counters(accounts)
        self.now = time.time()  # after the lock: the windows of the moment the group writes
        self.adds = {id(job): job_counters(job.account_id, [e.email for e in job.events],
                                           self.now) for job in jobs}
        wanted = set().union(*self.adds.values()) if jobs else set()
        self.current = backend.load_counters(wanted) if jobs else {}
        self.quotas = backend.load_quotas(accounts) if jobs else {}

    def refusal(self, job: WriteJob) -> Limited | None:
        if not job.rate_limited:
            return None
        return check(self.adds[id(job)], self.current, self.quotas[job.account_id], self.now)

    def count(self, job: WriteJob, saved: dict[CounterKey, int]) -> None:
        for key, added in self.adds.get(id(job), {}).items():
            self.current[key] = saved[key] = self.current.get(key, 0) + added


def _apply_job(job: WriteJob, group: dict[ContactKey, Contact],
               stored: dict[ContactKey, Contact], webhooks: _Webhooks) -> Applied:
    """Apply one job to private copies of its contacts, so that a rejected job changes nothing.

    Events are applied even after an error, so that later events see the contacts earlier ones
    would create and every error of the job is reported.
    """
    touched: dict[ContactKey, Contact] = {}
    events: list[EventRow] = []
    deliveries: list[Delivery] = []
    errors: list[Error] = []
    subscribed = webhooks.any_for(job.account_id)
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
        webhook_type = TRIGGERS.get(event.type.name) if subscribed else None
        if webhook_type is not None:
            deliveries += webhooks.deliveries(webhook_type, event_identifier(event), key,
                                              contact, event_uuid, job.received_at)
    return touched, events, deliveries, errors


def _copy(contact: Contact) -> Contact:
    return replace(contact, profile=dict(contact.profile), tags=list(contact.tags),
                   legal_bases=list(contact.legal_bases))
