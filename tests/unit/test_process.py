"""The processing stage on an in-memory backend: what each job's outcome is, and what a group
writes. No database, no server: these run in milliseconds."""

from __future__ import annotations

import copy
from dataclasses import replace
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdevents.catalogue import EVENT_TYPES
from rdevents.config import DataCaps
from rdevents.contacts import Contact, ContactChange, FunnelUpdate
from rdevents.limits import CounterKey, Limited, Quota
from rdevents.process import (
    ACCEPTED,
    ACCEPTED_WITH_DELIVERIES,
    ContactChangeJob,
    ContactKey,
    EraseJob,
    EventsJob,
    Failed,
    FieldKey,
    GroupContext,
    GroupRows,
    Invalid,
    Job,
    KeptRequest,
    KeyRef,
    KeyTaken,
    Outcome,
    Repeated,
    RequestKey,
    process_group,
)
from rdevents.validation import validate_event
from rdevents.webhook_rules import CONVERTED, MARKED_OPPORTUNITY, Subscription

NOW = "2026-12-02T10:00:00.000000Z"


class MemoryBackend:
    """The backend contract over dictionaries; `calls` records what was asked, in order."""

    def __init__(self) -> None:
        self.contacts: dict[ContactKey, Contact] = {}
        self.subscriptions: dict[int, list[Subscription]] = {}
        self.field_types: dict[FieldKey, str] = {}
        self.counters: dict[CounterKey, int] = {}
        self.quotas: dict[int, Quota] = {}
        self.erased: list[tuple[ContactKey, int]] = []
        self.relays: dict[int, tuple[int, ...]] = {}
        self.written: list[GroupRows] = []
        self.kept: dict[KeyRef, KeptRequest] = {}
        self.busy: set[KeyRef] = set()  # keys another transaction is committing
        self.calls: list[str] = []
        self._ids = count(1)

    def load_keys(self, keys: set[KeyRef]) -> tuple[dict[KeyRef, KeptRequest], set[KeyRef]]:
        self.calls.append("load_keys")
        return {key: self.kept[key] for key in keys if key in self.kept}, keys & self.busy

    def lock_rate_counters(self, account_ids: set[int]) -> None:
        self.calls.append("lock_rate_counters")

    def load_rate_state(self, account_ids: set[int], keys: set[CounterKey]
                        ) -> tuple[dict[CounterKey, int], dict[int, Quota]]:
        self.calls.append("load_rate_state")
        return ({key: self.counters[key] for key in keys if key in self.counters},
                {account_id: self.quotas.get(account_id, Quota(120, 120))
                 for account_id in account_ids})

    def load_context(self, contacts: set[ContactKey], account_ids: set[int],
                     fields: set[FieldKey]) -> GroupContext:
        self.calls.append("load_context")
        return GroupContext(
            {key: copy.deepcopy(self.contacts[key]) for key in contacts if key in self.contacts},
            {a: self.subscriptions[a] for a in account_ids if a in self.subscriptions},
            {key: self.field_types[key] for key in fields if key in self.field_types},
            {a: self.relays[a] for a in account_ids if a in self.relays})

    def lock_fields(self, fields: set[FieldKey]) -> dict[FieldKey, str]:
        self.calls.append("lock_fields")
        return {key: self.field_types[key] for key in fields if key in self.field_types}

    def count_fields(self, account_ids: set[int]) -> dict[int, int]:
        return {a: sum(1 for account_id, _ in self.field_types if account_id == a)
                for a in account_ids}

    def erase_contact(self, key: ContactKey, contact_id: int) -> None:
        assert self.contacts[key].id == contact_id
        del self.contacts[key]
        self.erased.append((key, contact_id))

    def write(self, rows: GroupRows) -> None:
        self.calls.append("write")
        for key, contact in rows.contacts.items():
            if contact.id is None:
                contact.id = next(self._ids)
            self.contacts[key] = copy.deepcopy(contact)
        self.counters.update(rows.counters)
        self.field_types.update(rows.new_fields)
        for job in rows.keyed:
            assert job.key is not None
            self.kept[(job.account_id, job.key.key)] = KeptRequest(
                job.key.fingerprint, tuple(job.event_uuids), job.batch_uuid)
        self.written.append(rows)


def event(event_type: str, email: str, **payload: Any) -> Any:
    body = copy.deepcopy(EVENT_TYPES[event_type].example)
    body["payload"].update(email=email, **payload)
    valid, errors = validate_event(body)
    assert not errors, errors
    return valid


def events_job(*events: Any, account_id: int = 1, rate_limited: bool = False,
               key: RequestKey | None = None) -> EventsJob:
    return EventsJob(account_id, NOW, list(events), [f"uuid-{id(e)}" for e in events],
                     ['{"stored": true}'] * len(events), None, rate_limited, key)


def test_a_conversion_creates_its_contact_and_defines_its_custom_field() -> None:
    backend = MemoryBackend()
    outcomes = process_group(backend, [events_job(event("CONVERSION", "ana@example.com"))])
    assert outcomes == [ACCEPTED]
    [rows] = backend.written
    contact = rows.contacts[(1, "ana@example.com")]
    assert contact.id == 1 and contact.tags == ["mql", "2019"]
    [row] = rows.events
    assert row.identifier == "Name of the conversion event"
    assert row.contact == (1, "ana@example.com")
    assert rows.new_fields == {(1, "cf_custom_field_api_identifier"): "STRING"}
    assert rows.tags_before == {}  # a new contact had no tags


def test_reads_come_in_the_order_every_writer_locks_in() -> None:
    backend = MemoryBackend()
    process_group(backend, [events_job(event("CONVERSION", "a@example.com"), rate_limited=True)])
    assert backend.calls == ["lock_rate_counters", "load_rate_state", "load_context",
                             "lock_fields", "write"]


def test_an_event_for_an_unknown_contact_is_invalid_and_writes_nothing() -> None:
    backend = MemoryBackend()
    outcome, = process_group(backend, [events_job(event("OPPORTUNITY", "nobody@example.com"))])
    assert isinstance(outcome, Invalid)
    assert [e["path"] for e in outcome.errors] == ["$.body.payload.email"]
    assert backend.written == []


def test_later_jobs_of_a_group_see_the_contacts_earlier_ones_made() -> None:
    backend = MemoryBackend()
    outcomes = process_group(backend, [
        events_job(event("CONVERSION", "b@example.com")),
        events_job(event("OPPORTUNITY", "b@example.com"))])
    assert outcomes == [ACCEPTED, ACCEPTED]
    stored = backend.contacts[(1, "b@example.com")]
    assert stored.opportunity is True
    assert len(backend.written) == 1  # one write for the group


def test_a_refused_job_leaves_no_trace_and_others_go_on() -> None:
    backend = MemoryBackend()
    backend.field_types[(1, "cf_age")] = "INTEGER"
    bad = events_job(event("CONVERSION", "c@example.com", cf_age="old", tags=["x"]))
    good = events_job(event("CONVERSION", "d@example.com"))
    outcomes = process_group(backend, [bad, good])
    assert isinstance(outcomes[0], Invalid) and outcomes[1] == ACCEPTED
    assert outcomes[0].errors[0]["path"] == "$.body.payload.cf_age"
    assert (1, "c@example.com") not in backend.contacts
    assert (1, "d@example.com") in backend.contacts


def test_a_bug_in_one_job_fails_it_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import rdevents.process.stage as stage

    real = stage.apply_event

    def apply_event(contact: Any, valid: Any, *args: Any) -> Any:
        if valid.email == "bug@example.com":
            raise KeyError("a bug")
        return real(contact, valid, *args)

    monkeypatch.setattr(stage, "apply_event", apply_event)
    backend = MemoryBackend()
    outcomes = process_group(backend, [events_job(event("CONVERSION", "bug@example.com")),
                                       events_job(event("CONVERSION", "ok@example.com"))])
    assert isinstance(outcomes[0], Failed) and isinstance(outcomes[0].exception, KeyError)
    assert outcomes[1] == ACCEPTED


def test_an_erasure_writes_what_came_before_then_erases() -> None:
    backend = MemoryBackend()
    outcomes = process_group(backend, [
        events_job(event("CONVERSION", "e@example.com")),
        EraseJob(1, NOW, "e@example.com"),
        events_job(event("CONVERSION", "e@example.com", name="Again"))])
    assert outcomes == [ACCEPTED, ACCEPTED, ACCEPTED]
    assert backend.erased == [((1, "e@example.com"), 1)]
    again = backend.contacts[(1, "e@example.com")]
    assert again.id == 2 and again.profile["name"] == "Again"  # a new contact


def test_erasing_an_unknown_contact_is_invalid() -> None:
    outcome, = process_group(MemoryBackend(), [EraseJob(1, NOW, "ghost@example.com")])
    assert isinstance(outcome, Invalid)
    assert [(e["error_type"], e["error_message"]) for e in outcome.errors] == [
        ("RESOURCE_NOT_FOUND", "Lead not found.")]


def test_a_rate_limited_job_over_its_quota_is_limited_and_counts_nothing() -> None:
    backend = MemoryBackend()
    backend.quotas[1] = Quota(per_minute=2, per_contact_day=120)
    first = events_job(event("CONVERSION", "f@example.com"), event("CONVERSION", "g@example.com"),
                       rate_limited=True)
    third = events_job(event("CONVERSION", "h@example.com"), rate_limited=True)
    outcomes = process_group(backend, [first, third])
    assert outcomes[0] == ACCEPTED
    assert isinstance(outcomes[1], Limited) and outcomes[1].scope == "account"
    assert sorted(backend.counters.values()) == [1, 1, 2]  # two contacts' days, the minute


def test_a_subscribed_conversion_queues_a_delivery_of_the_contact() -> None:
    backend = MemoryBackend()
    backend.subscriptions[1] = [Subscription(7, CONVERTED, (), ())]
    outcome, = process_group(backend, [events_job(event("CONVERSION", "w@example.com"))])
    assert outcome == ACCEPTED_WITH_DELIVERIES
    [delivery] = backend.written[0].deliveries
    assert delivery.webhook_id == 7 and '"email":"w@example.com"' in delivery.body


def test_a_funnel_change_to_opportunity_queues_its_webhook_and_transition() -> None:
    backend = MemoryBackend()
    backend.subscriptions[1] = [Subscription(8, MARKED_OPPORTUNITY, (), ())]
    process_group(backend, [events_job(event("CONVERSION", "o@example.com"))])
    change = ContactChange("funnel", funnel=FunnelUpdate(opportunity=True))
    outcome, = process_group(backend, [ContactChangeJob(1, NOW, "o@example.com", change)])
    assert outcome == ACCEPTED_WITH_DELIVERIES
    rows = backend.written[-1]
    [(key, transition, at)] = rows.api_transitions
    assert key == (1, "o@example.com") and transition.to_opportunity and at == NOW


def test_custom_fields_past_the_cap_are_refused_with_limit_exceeded() -> None:
    backend = MemoryBackend()
    backend.field_types[(1, "cf_one")] = "STRING"
    outcome, = process_group(
        backend, [events_job(event("CONVERSION", "cap@example.com", cf_two="x"))],
        DataCaps(custom_fields=2))  # cf_custom_field_api_identifier takes the second place
    assert isinstance(outcome, Invalid)
    assert {e["error_type"] for e in outcome.errors} == {"LIMIT_EXCEEDED"}


def test_tags_past_the_cap_are_refused() -> None:
    outcome, = process_group(
        MemoryBackend(), [events_job(event("CONVERSION", "t@example.com", tags=["a", "b", "c"]))],
        DataCaps(tags_per_contact=2))
    assert isinstance(outcome, Invalid) and outcome.errors[0]["path"] == "$.body.payload.tags"


def test_the_tags_a_stored_contact_had_go_to_the_tag_index() -> None:
    backend = MemoryBackend()
    process_group(backend, [events_job(event("CONVERSION", "i@example.com", tags=["old"]))])
    process_group(backend, [events_job(event("CONVERSION", "i@example.com", tags=["new"]))])
    assert backend.written[-1].tags_before == {(1, "i@example.com"): ["old"]}


# --- one group or one job at a time: the same decisions -------------------------------------

EMAILS = ("p@example.com", "q@example.com", "r@example.com")
jobs_strategy = st.lists(st.one_of(
    st.builds(lambda kind, email, tags: events_job(event(kind, email, tags=tags))
              if kind == "CONVERSION" else events_job(event(kind, email)),
              st.sampled_from(["CONVERSION", "OPPORTUNITY", "SALE", "OPPORTUNITY_LOST"]),
              st.sampled_from(EMAILS), st.lists(st.sampled_from(["a", "b", "c"]), max_size=2)),
    st.builds(lambda email: EraseJob(1, NOW, email), st.sampled_from(EMAILS)),
    st.builds(lambda email, tags: ContactChangeJob(1, NOW, email, ContactChange(
        "upsert", {"name": "Upserted"}, tags)), st.sampled_from(EMAILS),
        st.lists(st.sampled_from(["a", "d"]), max_size=2))), max_size=12)


def state(backend: MemoryBackend) -> dict[str, Any]:
    return {email: (c.profile.get("name"), c.tags, c.lifecycle_stage, c.opportunity)
            for (_, email), c in sorted(backend.contacts.items())}


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [type(outcome).__name__ for outcome in outcomes]


@settings(max_examples=60, deadline=None)
@given(jobs=jobs_strategy)
def test_a_group_decides_as_its_jobs_would_one_at_a_time(jobs: list[Job]) -> None:
    together, alone = MemoryBackend(), MemoryBackend()
    grouped = process_group(together, [replace(job) for job in jobs])
    single = [outcome for job in jobs for outcome in process_group(alone, [replace(job)])]
    assert kinds(grouped) == kinds(single)
    assert state(together) == state(alone)


# --- relays ---------------------------------------------------------------------------------


def relayed(backend: MemoryBackend) -> list[tuple[int, str, ContactKey]]:
    """The relay rows written, in the order written: (relay, event uuid, contact)."""
    return [(row.relay_id, row.event_uuid, row.contact)
            for rows in backend.written for row in rows.relay_rows]


def test_each_accepted_event_is_queued_for_each_relay_of_its_account_in_order() -> None:
    backend = MemoryBackend()
    backend.relays = {1: (5, 6), 2: (7,)}
    first = events_job(event("CONVERSION", "a@example.com"), event("CONVERSION", "b@example.com"))
    other = events_job(event("CONVERSION", "c@example.com"), account_id=2)
    later = events_job(event("OPPORTUNITY", "a@example.com"))
    assert process_group(backend, [first, other, later]) == [ACCEPTED] * 3
    a, b, c, a2 = first.event_uuids + other.event_uuids + later.event_uuids
    assert relayed(backend) == [
        (5, a, (1, "a@example.com")), (6, a, (1, "a@example.com")),
        (5, b, (1, "b@example.com")), (6, b, (1, "b@example.com")),
        (7, c, (2, "c@example.com")),
        (5, a2, (1, "a@example.com")), (6, a2, (1, "a@example.com"))]


def test_a_refused_job_queues_nothing_for_relays_and_unrelayed_accounts_nothing() -> None:
    backend = MemoryBackend()
    backend.relays = {1: (5,)}
    refused = events_job(event("CONVERSION", "d@example.com"),
                         event("OPPORTUNITY", "nobody@example.com"))
    unrelayed = events_job(event("CONVERSION", "e@example.com"), account_id=3)
    accepted = events_job(event("CONVERSION", "f@example.com"))
    outcomes = process_group(backend, [refused, unrelayed, accepted])
    assert isinstance(outcomes[0], Invalid) and outcomes[1:] == [ACCEPTED, ACCEPTED]
    assert relayed(backend) == [(5, accepted.event_uuids[0], (1, "f@example.com"))]


def test_changes_through_the_contacts_api_are_not_relayed() -> None:
    backend = MemoryBackend()
    backend.relays = {1: (5,)}
    process_group(backend, [ContactChangeJob(1, NOW, "g@example.com", ContactChange(
        "upsert", {"name": "G"}, None))])
    assert backend.written and relayed(backend) == []


def test_events_before_an_erasure_are_written_with_their_relay_rows_first() -> None:
    """The erasure then deletes them (the backend's erase_contact): nothing of the erased
    contact is sent upstream; what follows is queued afresh."""
    backend = MemoryBackend()
    backend.relays = {1: (5,)}
    before = events_job(event("CONVERSION", "h@example.com"))
    after = events_job(event("CONVERSION", "h@example.com"))
    process_group(backend, [before, EraseJob(1, NOW, "h@example.com"), after])
    assert [[row.event_uuid for row in rows.relay_rows] for rows in backend.written] == [
        before.event_uuids, after.event_uuids]
    assert backend.erased == [((1, "h@example.com"), 1)]


@settings(max_examples=40, deadline=None)
@given(jobs=jobs_strategy)
def test_a_group_queues_for_relays_what_its_jobs_would_one_at_a_time(jobs: list[Job]) -> None:
    together, alone = MemoryBackend(), MemoryBackend()
    together.relays = alone.relays = {1: (5, 6)}
    process_group(together, [replace(job) for job in jobs])
    for job in jobs:
        process_group(alone, [replace(job)])
    assert relayed(together) == relayed(alone)


# --- idempotency keys -----------------------------------------------------------------------------


def test_a_keyed_job_keeps_its_key_and_a_repeat_is_answered_its_events() -> None:
    backend = MemoryBackend()
    key = RequestKey("k1", "fingerprint")
    first = events_job(event("CONVERSION", "a@example.com"), key=key)
    assert process_group(backend, [first]) == [ACCEPTED]
    assert backend.written[-1].keyed == [first]
    repeat = events_job(event("CONVERSION", "a@example.com"), key=key)
    assert process_group(backend, [repeat]) == [Repeated(tuple(first.event_uuids), None)]
    assert len(backend.written) == 1  # nothing written for the repeat


def test_a_kept_key_with_another_request_is_taken() -> None:
    backend = MemoryBackend()
    backend.kept[(1, "k1")] = KeptRequest("another", ("uuid-1",), None)
    job = events_job(event("CONVERSION", "a@example.com"), key=RequestKey("k1", "mine"))
    assert process_group(backend, [job]) == [KeyTaken(in_flight=False)]
    assert backend.written == []


def test_a_key_being_committed_elsewhere_or_earlier_in_the_group_is_in_flight() -> None:
    backend = MemoryBackend()
    backend.busy = {(1, "elsewhere")}
    jobs: list[Job] = [
        events_job(event("CONVERSION", "a@example.com"), key=RequestKey("elsewhere", "f")),
        events_job(event("CONVERSION", "b@example.com"), key=RequestKey("here", "f")),
        events_job(event("CONVERSION", "b@example.com"), key=RequestKey("here", "f")),
        events_job(event("CONVERSION", "c@example.com"), account_id=2,
                   key=RequestKey("here", "f"))]
    assert process_group(backend, jobs) == [KeyTaken(in_flight=True), ACCEPTED,
                                            KeyTaken(in_flight=True), ACCEPTED]
    assert backend.written[-1].keyed == [jobs[1], jobs[3]]


def test_a_refused_keyed_job_keeps_no_key() -> None:
    backend = MemoryBackend()
    key = RequestKey("k1", "f")
    refused = events_job(event("OPPORTUNITY", "nobody@example.com"), key=key)
    assert isinstance(process_group(backend, [refused])[0], Invalid)
    assert backend.kept == {}


def test_groups_without_keys_read_no_key() -> None:
    backend = MemoryBackend()
    process_group(backend, [events_job(event("CONVERSION", "a@example.com"))])
    assert "load_keys" not in backend.calls
