"""The dashboard's reads (ui/): an account's events by time and type, contacts found by part of
their e-mail, funnel movements, and the webhook backlog. Each query reads one account's rows
only: the account is a condition of every statement.

Times are the stored text ("2026-12-02T14:03:05.123456Z"), whose prefixes are the minute
("2026-12-02T14:03"), the ten minutes ("2026-12-02T14:0") and the day ("2026-12-02"): counting
by a prefix counts by that period, on every backend, with the account's time index.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from ..contacts import Contact
from .queries import Queries

MINUTE, TEN_MINUTES, HOUR, DAY = 16, 15, 13, 10  # lengths of a stored time's prefix


@dataclass(frozen=True)
class EventSummary:
    """An event as a list shows it, with the e-mail of its contact (None once erased)."""

    uuid: str
    event_type: str
    identifier: str
    received_at: str
    contact_uuid: str | None
    contact_email: str | None


@dataclass(frozen=True)
class Backlog:
    """Webhook deliveries waiting to be sent, and since when the oldest has waited."""

    pending: int
    oldest_since: str | None


@dataclass(frozen=True)
class DeliveryCounts:
    """A subscription's deliveries by status."""

    by_status: dict[str, int]
    oldest_pending_since: str | None


@dataclass(frozen=True)
class TransitionRecord:
    """A change of a contact's funnel, with the event that made it (None: the contacts API)."""

    from_stage: str | None
    to_stage: str
    from_opportunity: bool | None
    to_opportunity: bool
    value: float | None
    reason: str | None
    cause: str
    created_at: str
    event_uuid: str | None
    event_type: str | None


@dataclass(frozen=True)
class Movement:
    """How many funnel transitions of one kind a period saw."""

    period: str  # a prefix of the stored times
    from_stage: str | None
    to_stage: str
    from_opportunity: bool | None
    to_opportunity: bool
    count: int


@dataclass(frozen=True)
class StageCount:
    stage: str
    contacts: int
    opportunities: int


# Waiting since it was queued: created, or sent again (which sets attempts to 0 and stamps
# updated_at); a delivery retried since then counts from its creation.
_PENDING_SINCE = "CASE WHEN d.attempts = 0 THEN d.updated_at ELSE d.created_at END"


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching values that contain `text` as it is."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DashboardQueries(Queries):
    # How a backend asks "the contact has this tag", as in list_contacts (see sql.py).
    TAG_CONDITION: str

    @abc.abstractmethod
    def tag_parameter(self, tag: str) -> Any: ...

    @abc.abstractmethod
    def contact_conditions(self, account_id: int, stage: str | None,
                           tag: str | None) -> tuple[list[str], list[Any]]:
        """As in list_contacts (see sql.py)."""

    async def list_events(self, account_id: int, event_type: str | None,
                          contact_id: int | None, since: str | None, offset: int,
                          limit: int) -> list[EventSummary]:
        """The account's events, newest first: of a type, of a contact, received at `since`
        or later, as given."""
        where = ["e.account_id = ?"]
        params: list[Any] = [account_id]
        for condition, value in (("e.event_type = ?", event_type),
                                 ("e.contact_id = ?", contact_id),
                                 ("e.received_at >= ?", since)):
            if value is not None:
                where.append(condition)
                params.append(value)
        rows = await self.fetch(
            "SELECT e.uuid, e.event_type, e.event_identifier, e.received_at, c.uuid, c.email "
            "FROM events e LEFT JOIN contacts c ON c.id = e.contact_id "
            f"WHERE {' AND '.join(where)} ORDER BY e.received_at DESC, e.id DESC "
            "LIMIT ? OFFSET ?", (*params, limit, offset))
        return [EventSummary(*row) for row in rows]

    async def count_events(self, account_id: int, since: str,
                           period: int) -> list[tuple[str, str, int]]:
        """(period, event type, events) of the account since `since`, each period a prefix of
        `period` characters of the stored times (MINUTE, TEN_MINUTES, HOUR, DAY)."""
        bucket = f"substr(received_at, 1, {int(period)})"
        rows = await self.fetch(
            f"SELECT {bucket}, event_type, count(*) FROM events "
            f"WHERE account_id = ? AND received_at >= ? GROUP BY {bucket}, event_type",
            (account_id, since))
        return [(row[0], row[1], int(row[2])) for row in rows]

    async def count_contacts(self, account_id: int) -> int:
        rows = await self.fetch("SELECT count(*) FROM contacts WHERE account_id = ?",
                                (account_id,))
        return int(rows[0][0])

    async def search_contacts(self, account_id: int, email_part: str | None, tag: str | None,
                              stage: str | None, offset: int, limit: int) -> list[Contact]:
        """The account's contacts whose e-mail contains `email_part`, that have `tag`, at
        `stage`, as given; newest first."""
        from .sql import CONTACT_COLUMNS, contact_from_row  # sql.py imports this module

        where, params = self.contact_conditions(account_id, stage, tag)
        if email_part:
            where.append("email LIKE ? ESCAPE '\\'")
            params.append(like_pattern(email_part))
        rows = await self.fetch(f"SELECT {CONTACT_COLUMNS} FROM contacts "
                                f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ? OFFSET ?",
                                (*params, limit, offset))
        return [contact_from_row(row) for row in rows]

    async def contacts_by_stage(self, account_id: int) -> list[StageCount]:
        rows = await self.fetch(
            "SELECT lifecycle_stage, count(*), "
            "sum(CASE WHEN opportunity THEN 1 ELSE 0 END) FROM contacts "
            "WHERE account_id = ? GROUP BY lifecycle_stage", (account_id,))
        return [StageCount(row[0], int(row[1]), int(row[2] or 0)) for row in rows]

    async def contact_transitions(self, account_id: int, contact_id: int,
                                  limit: int) -> list[TransitionRecord]:
        """The contact's funnel transitions, newest first."""
        rows = await self.fetch(
            "SELECT t.from_stage, t.to_stage, t.from_opportunity, t.to_opportunity, t.value, "
            "t.reason, t.cause, t.created_at, e.uuid, e.event_type FROM funnel_transitions t "
            "LEFT JOIN events e ON e.id = t.event_id "
            "WHERE t.account_id = ? AND t.contact_id = ? ORDER BY t.id DESC LIMIT ?",
            (account_id, contact_id, limit))
        return [TransitionRecord(row[0], row[1], _boolean(row[2]), bool(row[3]), *row[4:])
                for row in rows]

    async def funnel_movements(self, account_id: int, since: str,
                               period: int) -> list[Movement]:
        """The account's funnel transitions since `since`, counted by kind and period."""
        bucket = f"substr(created_at, 1, {int(period)})"
        rows = await self.fetch(
            f"SELECT {bucket}, from_stage, to_stage, from_opportunity, to_opportunity, count(*) "
            "FROM funnel_transitions WHERE account_id = ? AND created_at >= ? "
            f"GROUP BY {bucket}, from_stage, to_stage, from_opportunity, to_opportunity",
            (account_id, since))
        return [Movement(row[0], row[1], row[2], _boolean(row[3]), bool(row[4]), int(row[5]))
                for row in rows]

    async def webhook_backlog(self, account_id: int) -> Backlog:
        rows = await self.fetch(
            f"SELECT count(*), min({_PENDING_SINCE}) FROM webhook_deliveries d "
            "JOIN webhooks w ON w.id = d.webhook_id "
            "WHERE w.account_id = ? AND d.status = 'pending'", (account_id,))
        return Backlog(int(rows[0][0]), rows[0][1])

    async def delivery_counts(self, account_id: int) -> dict[str, DeliveryCounts]:
        """Each of the account's subscriptions that has deliveries, by its uuid."""
        rows = await self.fetch(
            f"SELECT w.uuid, d.status, count(*), min({_PENDING_SINCE}) FROM webhooks w "
            "JOIN webhook_deliveries d ON d.webhook_id = w.id WHERE w.account_id = ? "
            "GROUP BY w.uuid, d.status", (account_id,))
        by_status: dict[str, dict[str, int]] = {}
        pending_since: dict[str, str] = {}
        for uuid, status, count, since in rows:
            by_status.setdefault(uuid, {})[status] = int(count)
            if status == "pending":
                pending_since[uuid] = since
        return {uuid: DeliveryCounts(counts, pending_since.get(uuid))
                for uuid, counts in by_status.items()}


def _boolean(value: Any) -> bool | None:
    """A nullable boolean column's value (SQLite gives 0 and 1)."""
    return None if value is None else bool(value)
