"""Deciding a group of jobs: what each job's outcome is and what the accepted ones write.

The jobs are applied in memory, in order, against the contacts they concern (read once for the
group); the pure rules of `contacts.py` decide every change. A job with errors leaves no trace.
The accepted jobs' rows are then written in bulk by the backend: one statement per table, not
one per event. An erasure writes what the jobs before it decided first, so that their events
are erased too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson

from ..config import DataCaps
from ..contacts import (
    Contact,
    ContactChangeRefused,
    apply_contact_change,
    apply_event,
    custom_field_values,
)
from ..custom_fields import fits, infer_data_type
from ..ids import new_uuid
from ..limits import CounterKey, Limited, Quota, check, job_counters
from ..validation import (
    INVALID_DATA_TYPE,
    LIMIT_EXCEEDED,
    RESOURCE_NOT_FOUND,
    TOO_LONG,
    Error,
    ValidEvent,
    child,
    element_index,
    error,
    type_error,
    unknown_contact_error,
)
from ..webhook_rules import MARKED_OPPORTUNITY, TRIGGERS, Subscription, webhook_body
from .backend import ProcessBackend
from .jobs import ContactChangeJob, EraseJob, EventsJob, Job
from .outcomes import (
    ACCEPTED,
    ACCEPTED_WITH_DELIVERIES,
    Failed,
    Invalid,
    KeyTaken,
    Outcome,
    Repeated,
)
from .rows import (
    ContactKey,
    Delivery,
    EventRow,
    FieldKey,
    GroupRows,
    KeptRequest,
    KeyRef,
    RelayRow,
)

# The custom fields each part of a job writes: (the event's path, its payload's fields' paths
# built from it only for an error; or None for a contacts-API body, whose errors are keyed by
# attribute; the values).
FieldValues = list[tuple[str | None, dict[str, Any]]]


def process_group(backend: ProcessBackend, jobs: list[Job],
                  caps: DataCaps = DataCaps()) -> list[Outcome]:
    """Decide `jobs` and have the backend write what the accepted ones do; one outcome a job,
    in order."""
    keys = _IdempotencyKeys(backend, jobs)  # its locks are tried, never waited for
    limits = _RateLimits(backend, jobs)  # first to wait: counters are locked before contacts
    event_values = [[custom_field_values(event) for event in job.events]
                    if isinstance(job, EventsJob) else [] for job in jobs]
    field_values = [_custom_values(job, values)
                    for job, values in zip(jobs, event_values, strict=True)]
    fields = _CustomFields(caps.custom_fields)
    wanted = {(job.account_id, name) for job, values in zip(jobs, field_values, strict=True)
              for _, named in values for name in named}
    context = backend.load_context(
        {(job.account_id, event.email) for job in jobs if isinstance(job, EventsJob)
         for event in job.events}
        | {(job.account_id, job.email) for job in jobs if not isinstance(job, EventsJob)},
        {job.account_id for job in jobs}, wanted)
    fields.types = dict(context.field_types)
    undefined = wanted - fields.types.keys()
    if undefined:
        fields.types.update(backend.lock_fields(undefined))
        fields.counts = backend.count_fields({account_id for account_id, _ in undefined})
    stored = dict(context.contacts)
    webhooks = _Webhooks(context.subscriptions)
    rows = GroupRows()
    outcomes: list[Outcome] = []
    for job, values, each_event, adds in zip(jobs, field_values, event_values, limits.adds,
                                             strict=True):
        if isinstance(job, EraseJob):
            outcomes.append(_erase(backend, job, rows, stored))
            if outcomes[-1] is ACCEPTED:
                rows = GroupRows()  # what came before is written; start afresh
            continue
        answered = keys.outcome(job)
        if answered is not None:
            outcomes.append(answered)
            continue
        refused = limits.refusal(job, adds)
        if refused is not None:
            outcomes.append(refused)
            continue
        try:
            new_fields, errors = fields.check(job.account_id, values)
            if isinstance(job, ContactChangeJob):
                applied = _apply_contact_change(job, rows, stored, webhooks, caps)
            else:
                applied = _apply_events(job, each_event, rows.contacts, stored, webhooks,
                                        caps)
        except Exception as exc:  # a bug: fail this job alone
            outcomes.append(Failed(exc))
            continue
        errors += applied.errors
        if errors:
            outcomes.append(Invalid(sorted(errors, key=element_index)))
            continue
        rows.contacts.update(applied.contacts)
        rows.events.extend(applied.events)
        rows.relay_rows.extend(_relayed(context.relays, applied.events))
        rows.deliveries.extend(applied.deliveries)
        if applied.transition is not None:
            rows.api_transitions.append(applied.transition)
        rows.new_fields.update(new_fields)
        keys.keep(job, rows)
        fields.accept(new_fields)
        limits.count(adds, rows.counters)
        outcomes.append(ACCEPTED_WITH_DELIVERIES if applied.deliveries else ACCEPTED)
    if rows.contacts:
        _write(backend, rows, stored)
    return outcomes


def event_identifier(event: ValidEvent) -> str:
    """RD's name for the event in a contact's history."""
    name = event.type.identifier_field
    return event.payload[name] if name else event.type.name


def _write(backend: ProcessBackend, rows: GroupRows, stored: dict[ContactKey, Contact]) -> None:
    rows.tags_before = {key: stored[key].tags for key in rows.contacts if key in stored}
    backend.write(rows)


def _erase(backend: ProcessBackend, job: EraseJob, rows: GroupRows,
           stored: dict[ContactKey, Contact]) -> Outcome:
    """Erase a contact (LGPD): first write what the group decided so far, so that its events
    are erased too, then the contact, its funnel and its personal data in its events go."""
    key = (job.account_id, job.email)
    current = rows.contacts.get(key) or stored.get(key)
    if current is None:
        return Invalid([error(RESOURCE_NOT_FOUND, "Lead not found.", "")])
    if rows.contacts:
        _write(backend, rows, stored)
        stored.update(rows.contacts)  # later jobs of the group start from what was written
    assert current.id is not None  # written just above if it was new
    backend.erase_contact(key, current.id)
    stored.pop(key, None)
    return ACCEPTED


class _Applied:
    """What applying one job decided: the contacts it touched, its events, the deliveries it
    queues, a funnel change made through the API, and its errors."""

    __slots__ = ("contacts", "events", "deliveries", "transition", "errors")

    def __init__(self) -> None:
        self.contacts: dict[ContactKey, Contact] = {}
        self.events: list[EventRow] = []
        self.deliveries: list[Delivery] = []
        self.transition: Any = None
        self.errors: list[Error] = []


def _apply_contact_change(job: ContactChangeJob, rows: GroupRows,
                          stored: dict[ContactKey, Contact], webhooks: _Webhooks,
                          caps: DataCaps) -> _Applied:
    applied = _Applied()
    key = (job.account_id, job.email)
    current = rows.contacts.get(key) or stored.get(key)
    try:
        contact, transition = apply_contact_change(
            None if current is None else _copy(current), job.change, job.email, new_uuid(),
            job.received_at)
    except ContactChangeRefused as refused:
        attribute = next(iter(refused.by_attribute), "")
        applied.errors.append(error(refused.error_type, refused.message, attribute))
        return applied
    if len(contact.tags) > caps.tags_per_contact:
        applied.errors.append(_too_many_tags(caps, "tags"))
        return applied
    applied.contacts[key] = contact
    if transition is not None:
        applied.transition = (key, transition, job.received_at)
        if transition.to_opportunity and transition.from_opportunity is False:
            applied.deliveries = webhooks.deliveries(MARKED_OPPORTUNITY, "default", key,
                                                     contact, None, job.received_at)
    return applied


def _apply_events(job: EventsJob, custom_values: list[dict[str, Any]],
                  group: dict[ContactKey, Contact], stored: dict[ContactKey, Contact],
                  webhooks: _Webhooks, caps: DataCaps) -> _Applied:
    """Apply one job's events (with each one's custom field values) to private copies of their
    contacts, so that a refused job changes nothing.

    Events are applied even after an error, so that later events see the contacts earlier ones
    would create and every error of the job is reported.
    """
    applied = _Applied()
    touched = applied.contacts
    subscribed = webhooks.any_for(job.account_id)
    for event, event_uuid, payload, values in zip(job.events, job.event_uuids, job.payloads,
                                                  custom_values, strict=True):
        key = (job.account_id, event.email)
        contact = touched.get(key)
        if contact is None:
            current = group.get(key) or stored.get(key)
            contact = None if current is None else _copy(current)
        if contact is None and not event.type.creates_contact:
            applied.errors.append(unknown_contact_error(
                event.type.name, event.email, child(child(event.path, "payload"), "email")))
            continue
        contact, transition = apply_event(contact, event, new_uuid() if contact is None else None,
                                          job.received_at, values)
        if len(contact.tags) > caps.tags_per_contact:
            applied.errors.append(
                _too_many_tags(caps, child(child(event.path, "payload"), "tags")))
        touched[key] = contact
        identifier = event_identifier(event)
        applied.events.append(
            EventRow(job, event, event_uuid, payload, identifier, key, transition))
        webhook_type = TRIGGERS.get(event.type.name) if subscribed else None
        if webhook_type is not None:
            applied.deliveries += webhooks.deliveries(webhook_type, identifier, key, contact,
                                                      event_uuid, job.received_at)
    return applied


def _relayed(relays: dict[int, tuple[int, ...]],
             events: list[EventRow]) -> Iterator[RelayRow]:
    """A relay row for each accepted event and each relay of its account, in the order the
    events were accepted: the order each relay forwards them in."""
    for row in events:
        for relay_id in relays.get(row.job.account_id, ()):
            yield RelayRow(relay_id, row.event_uuid, row.contact)


def _too_many_tags(caps: DataCaps, path: str) -> Error:
    return error(TOO_LONG, f"Must leave the contact at most {caps.tags_per_contact} tags.", path,
                 {"max_items": caps.tags_per_contact})


def _custom_values(job: Job, event_values: list[dict[str, Any]]) -> FieldValues:
    """The custom fields `job` writes; `event_values`, those of each of its events."""
    if isinstance(job, EventsJob):
        return [(event.path, values)
                for event, values in zip(job.events, event_values, strict=True) if values]
    if isinstance(job, ContactChangeJob):
        values = {name: value for name, value in job.change.attributes.items()
                  if name.startswith("cf_") and value is not None}
        return [(None, values)] if values else []
    return []


def _field_path(event_path: str | None, name: str) -> str:
    """Where an error about custom field `name` points: in the payload of the event at
    `event_path`, or at the attribute itself (a contacts-API body)."""
    return child(child(event_path, "payload"), name) if event_path else name


class _CustomFields:
    """The data types of the custom fields a group's jobs write: the defined ones (`types`),
    and those a job defines by its first value once the job is accepted, while its account
    has fewer than `cap` fields (`counts`: how many each account that may define one has)."""

    def __init__(self, cap: int) -> None:
        self.types: dict[FieldKey, str] = {}
        self.cap = cap
        self.counts: dict[int, int] = {}

    def check(self, account_id: int, values: FieldValues
              ) -> tuple[dict[FieldKey, str], list[Error]]:
        """The fields the job would define, and its values of the wrong type."""
        new: dict[FieldKey, str] = {}
        errors: list[Error] = []
        for path, named in values:
            for name, value in named.items():
                key = (account_id, name)
                data_type = self.types.get(key) or new.get(key)
                if data_type is None:
                    if self.counts.get(account_id, 0) + len(new) >= self.cap:
                        errors.append(error(
                            LIMIT_EXCEEDED, f"The account has {self.cap} custom fields, the "
                            "most it may have: use one of them, or delete one.",
                            _field_path(path, name), {"max_items": self.cap}))
                        continue
                    new[key] = infer_data_type(value) or "STRING"
                elif not fits(data_type, value):
                    errors.append(
                        type_error(data_type, _field_path(path, name)) if path else
                        error(INVALID_DATA_TYPE, f"{name} must be of type '{data_type}'.", name,
                              {"data_type": data_type}))
        return new, errors

    def accept(self, new: dict[FieldKey, str]) -> None:
        self.types.update(new)
        for account_id, _ in new:
            self.counts[account_id] = self.counts.get(account_id, 0) + 1


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


class _IdempotencyKeys:
    """The idempotency keys of a group's jobs: what each keeps of the request committed with it
    before, read once; those another transaction is committing; and those the group's accepted
    jobs keep."""

    def __init__(self, backend: ProcessBackend, jobs: list[Job]) -> None:
        wanted = {_key_ref(job) for job in jobs if isinstance(job, EventsJob) and job.key}
        self.kept: dict[KeyRef, KeptRequest] = {}
        self.busy: set[KeyRef] = set()
        if wanted:  # most groups have no keyed job: then no statement at all
            self.kept, self.busy = backend.load_keys(wanted)
        self.kept_now: set[KeyRef] = set()

    def outcome(self, job: Job) -> Repeated | KeyTaken | None:
        """What the job is answered instead of being applied, if its key says so."""
        if not isinstance(job, EventsJob) or job.key is None:
            return None
        ref = _key_ref(job)
        kept = self.kept.get(ref)
        if kept is not None:
            return kept.answer(job.key)
        if ref in self.busy or ref in self.kept_now:  # not committed yet
            return KeyTaken(in_flight=True)
        return None

    def keep(self, job: Job, rows: GroupRows) -> None:
        """The accepted job's key is written with its events."""
        if isinstance(job, EventsJob) and job.key is not None:
            self.kept_now.add(_key_ref(job))
            rows.keyed.append(job)


def _key_ref(job: EventsJob) -> KeyRef:
    assert job.key is not None
    return job.account_id, job.key.key


class _RateLimits:
    """The rate counters of a group's limited jobs: locked and read once, moved by accepted
    jobs. `adds` holds what each job would add (empty for jobs the limits do not apply to)."""

    def __init__(self, backend: ProcessBackend, jobs: list[Job]) -> None:
        accounts = {job.account_id for job in jobs
                    if isinstance(job, EventsJob) and job.rate_limited}
        if accounts:
            backend.lock_rate_counters(accounts)
        self.now = time.time()  # after the lock: the windows of the moment the group writes
        self.adds: list[Counter[CounterKey]] = [
            job_counters(job.account_id, [e.email for e in job.events], self.now)
            if isinstance(job, EventsJob) and job.rate_limited else Counter() for job in jobs]
        self.current: dict[CounterKey, int] = {}
        self.quotas: dict[int, Quota] = {}
        if accounts:
            self.current, self.quotas = backend.load_rate_state(
                accounts, set().union(*self.adds))

    def refusal(self, job: Job, adds: Counter[CounterKey]) -> Limited | None:
        if not adds:
            return None
        return check(adds, self.current, self.quotas[job.account_id], self.now)

    def count(self, adds: Counter[CounterKey], saved: dict[CounterKey, int]) -> None:
        for key, added in adds.items():
            self.current[key] = saved[key] = self.current.get(key, 0) + added


def _copy(contact: Contact) -> Contact:
    return replace(contact, profile=dict(contact.profile), tags=list(contact.tags),
                   legal_bases=list(contact.legal_bases))
