"""What the processing stage needs of a backend, inside the group's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..contacts import Contact
from ..limits import CounterKey, Quota
from ..webhook_rules import Subscription
from .rows import ContactKey, FieldKey, GroupRows, KeptRequest, KeyRef


@dataclass(frozen=True)
class GroupContext:
    """What a group reads before it decides: its stored contacts (absent keys are left out),
    the webhook subscriptions of its accounts (by id), the data types of the defined
    custom fields among those it writes, and the relays of its accounts (their ids, by
    account: each accepted event is queued for each of them, paused or not)."""

    contacts: dict[ContactKey, Contact]
    subscriptions: dict[int, list[Subscription]]
    field_types: dict[FieldKey, str]
    relays: dict[int, tuple[int, ...]] = field(default_factory=dict)


class ProcessBackend(Protocol):
    """Reads and writes of one transaction. Locks are taken in one order by every writer:
    its accounts' (held from its first statement), rate counters, then contacts, then custom
    fields."""

    def load_keys(self, keys: set[KeyRef]) -> tuple[dict[KeyRef, KeptRequest], set[KeyRef]]:
        """What these idempotency keys keep (absent keys are left out), and those another
        transaction is committing now, which it holds until it ends (never waited for)."""
        ...

    def lock_rate_counters(self, account_ids: set[int]) -> None:
        """Keep other writers off these accounts' rate counters until the transaction ends."""
        ...

    def load_rate_state(self, account_ids: set[int], keys: set[CounterKey]
                        ) -> tuple[dict[CounterKey, int], dict[int, Quota]]:
        """The current values of the counters `keys` (absent ones are left out) and each
        account's quota."""
        ...

    def load_context(self, contacts: set[ContactKey], account_ids: set[int],
                     fields: set[FieldKey]) -> GroupContext:
        """Lock `contacts` (whether stored or not) until the transaction ends, and read them,
        the accounts' subscriptions, the types of the defined fields among `fields` and the
        accounts' relays (which no relay may join or leave until the transaction ends)."""
        ...

    def lock_fields(self, fields: set[FieldKey]) -> dict[FieldKey, str]:
        """Lock these custom fields, which were not defined when the group read them, and read
        their types again: of two writers defining a field, the second sees the first's."""
        ...

    def count_fields(self, account_ids: set[int]) -> dict[int, int]:
        """How many custom fields each account has defined."""
        ...

    def erase_contact(self, key: ContactKey, contact_id: int) -> None:
        """Delete the contact, its funnel and its tags' index entries; keep its events and
        webhook deliveries without personal data."""
        ...

    def write(self, rows: GroupRows) -> None:
        """Insert the new contacts (giving them ids), update the others, insert events,
        transitions, custom fields, deliveries, relay rows and idempotency keys, save the rate
        counters and the tag index."""
        ...
