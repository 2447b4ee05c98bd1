"""The relays' queries of the SQL store: relays, their outbox and their budget.

The processing stage queues each accepted event of a relayed account in the relay's outbox, in
the transaction that stores the event (`relay_outbox_rows`), so an event is relayed if and only if
it was accepted. Senders (outbound/relay.py) then take events in transactions of their own:

- **Leases.** A sender takes events by moving their `next_attempt_at` past the time its
  requests may take (a lease that also identifies its hold, as webhook deliveries do); what it
  records later changes only rows whose lease it still holds. If its process dies, the events
  are taken again once the lease ends.
- **Budget.** A relay's row is locked while events are taken, and every take writes what it
  took to `relay_spends`: the events sent in the last BUDGET_WINDOW seconds are read from there,
  so the budget holds across processes and hosts sharing the database.
- **Per-contact order.** Only a contact's earliest waiting events can be taken: an event whose
  contact has an earlier one not yet due (held by a sender, waiting for a retry or for the
  contact's limit) waits too. Events are taken in outbox order, which is the order they were
  accepted in, and a batch keeps that order. Dead letters hold nothing back.

Times of leases, retries and the budget are the database's clock, in microseconds, so that the
hosts' clocks need not agree.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ..clock import utc_now
from ..ids import new_uuid
from ..process import GroupRows
from ..relay_rules import (
    BUDGET_WINDOW,
    RetryPolicy,
    event_body,
    fitting,
    gives_up,
    retry_delay,
)
from .queries import Queries, Row, Statement, TableRows, placeholders
from .relay_records import (
    DeadLetter,
    Recorded,
    RelayBatch,
    RelayCredentials,
    RelayItem,
    RelayOutcome,
    RelaySummary,
    Taken,
)

T = TypeVar("T")
CHUNK = 500  # ids in one statement, well below every backend's limit of parameters
# The most events a take passes over because an earlier event of their contact is not due.
SCAN_ROWS = 5_000

_CREDENTIAL_COLUMNS = ("token, client_id, client_secret, refresh_token, access_token, "
                       "access_expires_at")
_OUTBOX_COLUMNS = ("relay_id", "event_id", "contact_id", "status", "attempts", "next_attempt_at")
# How many of a relay's (r) outbox rows have a status.
_OUTBOX_COUNT = ("(SELECT count(*) FROM relay_outbox o WHERE o.relay_id = r.id "
                 "AND o.status = '{status}')")


class Tx(Protocol):
    """A statement of a transaction: (rows changed, rows returned)."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> tuple[int, list[Row]]: ...


# --- in the writer's transaction ------------------------------------------------------------------

def relays_read(account_ids: set[int]) -> Statement:
    """The statement reading the ids of the accounts' relays."""
    ids = sorted(account_ids)
    return (f"SELECT account_id, id FROM relays WHERE account_id IN ({placeholders(len(ids))}) "
            "ORDER BY id", ids)


def relays_by_account(rows: list[Row]) -> dict[int, tuple[int, ...]]:
    found: dict[int, list[int]] = {}
    for account_id, relay_id in rows:
        found.setdefault(account_id, []).append(relay_id)
    return {account_id: tuple(ids) for account_id, ids in found.items()}


def relay_outbox_rows(rows: GroupRows, event_ids: list[int]) -> TableRows:
    """The outbox rows of the group's relayed events (rows.relay_rows), given the ids its events
    got."""
    ids = {row.event_uuid: event_id for row, event_id in zip(rows.events, event_ids, strict=True)}
    return TableRows("relay_outbox", _OUTBOX_COLUMNS, [
        (row.relay_id, ids[row.event_uuid], rows.contacts[row.contact].id, "pending", 0, 0)
        for row in rows.relay_rows])


# --- for the CLI, the API and the senders ---------------------------------------------------------

def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _age(received_at: str) -> float:
    moment = datetime.strptime(received_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC)
    return round(max((datetime.now(UTC) - moment).total_seconds(), 0.0), 3)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


class RelayQueries(Queries):
    # The database's time in microseconds since 1970 (SQLite counts in Julian days).
    NOW_MICROS = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
    # Locks a relay's row until the transaction ends (SQLite's write transactions take turns).
    # PostgreSQL: without its key, so that the writers' reads of relays never wait for it.
    ROW_LOCK = ""

    @abc.abstractmethod
    async def transact(self, work: Callable[[Tx], T], durable: bool = True) -> T:
        """Run `work` in a write transaction of its own, on a thread; what it returns. A
        transaction that is not `durable` is committed without waiting for the disk: a crash of
        the process loses none of it, a power loss (or, on PostgreSQL, a crash of the
        database's server) may lose its last moments. The senders' bookkeeping is such: what it
        loses is sent again, and at least once is what relays promise."""

    def relay_membership_lock(self, account_id: int) -> list[Statement]:
        """Statements that wait for the account's writes under way, and keep new ones waiting,
        until the transaction ends: a relay created or deleted meanwhile would miss their
        events, or see them queued for it (PostgreSQL: SQLite's writes take turns)."""
        return []

    def _now(self, tx: Tx) -> int:
        return int(tx.run(f"SELECT {self.NOW_MICROS}")[1][0][0])

    # --- administration -------------------------------------------------------------------------

    async def create_relay(self, account_id: int, url: str, credentials: RelayCredentials,
                           events_per_minute: int, from_start: bool) -> str:
        """A new relay's uuid. With `from_start`, every event the account holds is queued for it
        (but those of erased contacts), oldest first."""
        uuid, now = new_uuid(), utc_now()
        c = credentials
        statements: list[Statement] = [
            *self.relay_membership_lock(account_id),
            (f"INSERT INTO relays (uuid, account_id, url, {_CREDENTIAL_COLUMNS}, "
             "events_per_minute, state, hold_until, sent, retried, created_at, updated_at) "
             f"VALUES ({placeholders(16)})",
             (uuid, account_id, url, c.token, c.client_id, c.client_secret, c.refresh_token,
              c.access_token, c.access_expires_at, events_per_minute, "active", 0, 0, 0, now,
              now))]
        if from_start:
            statements.append((
                f"INSERT INTO relay_outbox ({', '.join(_OUTBOX_COLUMNS)}) "
                "SELECT r.id, e.id, e.contact_id, 'pending', 0, 0 FROM events e "
                "JOIN relays r ON r.uuid = ? WHERE e.account_id = ? "
                "AND e.contact_id IS NOT NULL ORDER BY e.id", (uuid, account_id)))
        await self.change_all(statements)
        return uuid

    async def delete_relay(self, uuid: str) -> bool:
        """Delete a relay with what it has queued and its dead letters."""
        rows = await self.fetch("SELECT id, account_id FROM relays WHERE uuid = ?", (uuid,))
        if not rows:
            return False
        relay_id, account_id = rows[0]
        results = await self.change_all([
            *self.relay_membership_lock(account_id),
            ("DELETE FROM relay_outbox WHERE relay_id = ?", (relay_id,)),
            ("DELETE FROM relay_spends WHERE relay_id = ?", (relay_id,)),
            ("DELETE FROM relays WHERE id = ?", (relay_id,))])
        return results[-1][0] > 0

    async def update_relay(self, uuid: str, change: Callable[[RelayCredentials],
                                                             RelayCredentials],
                           url: str | None = None,
                           events_per_minute: int | None = None) -> RelayCredentials | None:
        """Give a relay new credentials (`change` makes them from its current ones), URL or
        budget; its new credentials, or None when there is no such relay. ValueError (from
        `change`) leaves it as it was."""

        def work(tx: Tx) -> RelayCredentials | None:
            rows = tx.run(f"SELECT {_CREDENTIAL_COLUMNS} FROM relays WHERE uuid = ?"
                          f"{self.ROW_LOCK}", (uuid,))[1]
            if not rows:
                return None
            new = change(RelayCredentials(*rows[0]))
            tx.run("UPDATE relays SET token = ?, client_id = ?, client_secret = ?, "
                   "refresh_token = ?, access_token = ?, access_expires_at = ?, "
                   "url = coalesce(?, url), "
                   "events_per_minute = coalesce(?, events_per_minute), updated_at = ? "
                   "WHERE uuid = ?",
                   (new.token, new.client_id, new.client_secret, new.refresh_token,
                    new.access_token, new.access_expires_at, url, events_per_minute,
                    utc_now(), uuid))
            return new

        return await self.transact(work)

    async def set_relay_paused(self, uuid: str, paused: bool, reason: str | None = None) -> bool:
        """Pause a relay (until resumed), or resume it: a resume also ends a hold of the
        upstream's account limit. Events keep being queued while it is paused."""
        if paused:
            changed, _ = await self.change(
                "UPDATE relays SET state = 'paused', paused_reason = ?, updated_at = ? "
                "WHERE uuid = ?", (reason, utc_now(), uuid))
        else:
            changed, _ = await self.change(
                "UPDATE relays SET state = 'active', paused_reason = NULL, hold_until = 0, "
                "updated_at = ? WHERE uuid = ?", (utc_now(), uuid))
        return changed > 0

    async def relay_account(self, uuid: str) -> int | None:
        rows = await self.fetch("SELECT account_id FROM relays WHERE uuid = ?", (uuid,))
        return int(rows[0][0]) if rows else None

    async def list_relays(self, account_id: int | None = None,
                          uuid: str | None = None) -> list[RelaySummary]:
        """Relays (of one account, or one relay), oldest first, with their backlog."""
        where: list[str] = []
        params: list[Any] = []
        if account_id is not None:
            where.append("r.account_id = ?")
            params.append(account_id)
        if uuid is not None:
            where.append("r.uuid = ?")
            params.append(uuid)
        # One statement, so that the counters, the outbox's counts and the oldest waiting
        # event are of one moment (a send recorded between two reads would show its events
        # neither waiting nor sent).
        rows = await self.fetch(
            "SELECT r.uuid, a.name, r.url, r.state, r.hold_until, r.sent, r.retried, "
            "r.last_error, r.last_error_at, r.last_success_at, r.paused_reason, "
            f"r.events_per_minute, r.client_id, r.created_at, {self.NOW_MICROS}, "
            f"{_OUTBOX_COUNT.format(status='pending')}, {_OUTBOX_COUNT.format(status='dead')}, "
            "(SELECT e.received_at FROM relay_outbox o JOIN events e ON e.id = o.event_id "
            "WHERE o.relay_id = r.id AND o.status = 'pending' ORDER BY o.id LIMIT 1) "
            "FROM relays r JOIN accounts a ON a.id = r.account_id "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY r.id", params)
        summaries = []
        for (relay_uuid, account, url, state, hold_until, sent, retried, last_error,
             last_error_at, last_success_at, paused_reason, per_minute, client_id, created_at,
             now, backlog, dead, oldest) in rows:
            lag = _age(oldest) if oldest is not None else None
            held = state == "active" and hold_until > now
            summaries.append(RelaySummary(
                relay_uuid, account, url, "paused" if held else state, backlog, sent,
                dead, last_error, retried, lag, last_success_at,
                last_error_at, paused_reason, _iso(hold_until) if held else None, per_minute,
                "oauth" if client_id is not None else "token", created_at))
        return summaries

    async def dead_letters(self, uuid: str, offset: int = 0,
                           limit: int | None = None) -> list[DeadLetter]:
        """A relay's dead letters, in the order their events were accepted."""
        rows = await self.fetch(
            "SELECT e.uuid, o.status_code, o.error, o.failed_at FROM relay_outbox o "
            "JOIN relays r ON r.id = o.relay_id JOIN events e ON e.id = o.event_id "
            "WHERE r.uuid = ? AND o.status = 'dead' ORDER BY o.id LIMIT ? OFFSET ?",
            (uuid, 2**62 if limit is None else limit, offset))
        return [DeadLetter(*row) for row in rows]

    async def replay_dead_letters(self, uuid: str, event_uuids: list[str] | None) -> int:
        """Queue dead letters again (every one: None), each in its place in the relay's order,
        with its retries afresh; how many."""
        relay = "relay_id = (SELECT id FROM relays WHERE uuid = ?)"
        update = ("UPDATE relay_outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, "
                  f"first_failed_at = NULL WHERE {relay} AND status = 'dead'")
        if event_uuids is None:
            statements: list[Statement] = [(update, (uuid,))]
        else:
            wanted = sorted(set(event_uuids))
            statements = [
                (f"{update} AND event_id IN (SELECT id FROM events "
                 f"WHERE uuid IN ({placeholders(len(chunk))}))", (uuid, *chunk))
                for chunk in (wanted[start:start + CHUNK]
                              for start in range(0, len(wanted), CHUNK))]
            if not statements:
                return 0
        return sum(changed for changed, _ in await self.change_all(statements))

    # --- senders ----------------------------------------------------------------------------------

    async def relays_due(self) -> list[int]:
        """The relays that are active, not held, and have events due: the ones to take from."""
        rows = await self.fetch(
            f"SELECT r.id FROM relays r WHERE r.state = 'active' AND r.hold_until <= "
            f"{self.NOW_MICROS} AND EXISTS (SELECT 1 FROM relay_outbox o WHERE "
            "o.relay_id = r.id AND o.status = 'pending' AND o.next_attempt_at <= "
            f"{self.NOW_MICROS}) ORDER BY r.id")
        return [row[0] for row in rows]

    async def take_relay_batch(self, relay_id: int, max_events: int, max_bytes: int,
                               lease_seconds: float) -> Taken:
        """Take the relay's next events, as many as its budget, `max_events` and `max_bytes`
        allow, for `lease_seconds`; or say how long until it is worth asking again."""
        return await self.transact(
            lambda tx: self._take(tx, relay_id, max_events, max_bytes, lease_seconds),
            durable=False)

    def _take(self, tx: Tx, relay_id: int, max_events: int, max_bytes: int,
              lease_seconds: float) -> Taken:
        now = self._now(tx)
        rows = tx.run(f"SELECT uuid, url, {_CREDENTIAL_COLUMNS}, events_per_minute, state, "
                      f"hold_until FROM relays WHERE id = ?{self.ROW_LOCK}", (relay_id,))[1]
        if not rows or rows[0][9] != "active":
            return Taken(None, 0.0)
        uuid, url, *credentials, per_minute, _, hold_until = rows[0]
        if hold_until > now:
            return Taken(None, (hold_until - now) / 1e6)
        room = max_events
        if per_minute:
            left, wait = self._budget(tx, relay_id, per_minute, now)
            if left <= 0:
                return Taken(None, wait)
            room = min(room, left)
        candidates = self._candidates(tx, relay_id, now, room)
        if not candidates:  # those due wait behind their contacts' earlier events
            return Taken(None, 0.0)
        bodies = [event_body(event_type, family, payload if isinstance(payload, str)
                             else payload.decode())
                  for *_, event_type, family, payload in candidates]
        kept = fitting([len(body) for body in bodies], max_bytes)
        items = [RelayItem(row[0], row[3], body, row[4], row[1], row[2])
                 for row, body in zip(candidates[:kept], bodies[:kept], strict=True)]
        lease = now + round(lease_seconds * 1e6)
        for chunk in _chunks([item.id for item in items]):
            tx.run(f"UPDATE relay_outbox SET next_attempt_at = ? WHERE id IN "
                   f"({placeholders(len(chunk))})", (lease, *chunk))
        if per_minute:
            self._spend(tx, relay_id, len(items), now)
        return Taken(RelayBatch(relay_id, uuid, url, RelayCredentials(*credentials),
                                per_minute, lease, lease_seconds, items), 0.0)

    @staticmethod
    def _candidates(tx: Tx, relay_id: int, now: int, room: int) -> list[Row]:
        """Up to `room` events due, oldest first, none of them after an event of its contact
        that is not due (held by a sender, waiting for a retry or for its contact's limit): the
        rows to send, with their events' uuid, type, family and payload.

        A contact's earliest event not due is read first, in one pass over those not due (few:
        what is under way, and what waits); the events due are then read in order, and those
        behind one of their contact's are passed over, up to SCAN_ROWS of them a take."""
        waiting: dict[int, int] = {contact_id: first for contact_id, first in tx.run(
            "SELECT contact_id, min(id) FROM relay_outbox WHERE relay_id = ? "
            "AND status = 'pending' AND next_attempt_at > ? GROUP BY contact_id",
            (relay_id, now))[1]}
        chosen: list[int] = []
        after, scanned = 0, 0
        while len(chosen) < room and scanned < SCAN_ROWS:
            rows = tx.run("SELECT id, contact_id FROM relay_outbox WHERE relay_id = ? "
                          "AND status = 'pending' AND id > ? AND next_attempt_at <= ? "
                          "ORDER BY id LIMIT ?", (relay_id, after, now, room))[1]
            for outbox_id, contact_id in rows:
                first = waiting.get(contact_id)
                if (first is None or outbox_id < first) and len(chosen) < room:
                    chosen.append(outbox_id)
            if len(rows) < room:
                break
            scanned += len(rows)
            after = rows[-1][0]
        found: list[Row] = []
        for chunk in _chunks(chosen):
            found += tx.run(
                "SELECT o.id, o.attempts, o.first_failed_at, e.uuid, o.contact_id, e.event_type, "
                "e.event_family, e.payload FROM relay_outbox o JOIN events e ON e.id = o.event_id "
                f"WHERE o.id IN ({placeholders(len(chunk))})", chunk)[1]
        return sorted(found)

    @staticmethod
    def _budget(tx: Tx, relay_id: int, per_minute: int, now: int) -> tuple[int, float]:
        """How many events the relay may send now, and when it may send again if none (its row
        is locked: no other sender spends meanwhile)."""
        window = round(BUDGET_WINDOW * 1e6)
        used, oldest = tx.run("SELECT coalesce(sum(events), 0), min(at) FROM relay_spends "
                              "WHERE relay_id = ? AND at > ?", (relay_id, now - window))[1][0]
        left = per_minute - int(used)
        # None left: until the oldest spend leaves the window.
        return left, 0.0 if left > 0 else max((oldest + window - now) / 1e6, 0.01)

    @staticmethod
    def _spend(tx: Tx, relay_id: int, events: int, now: int) -> None:
        tx.run("INSERT INTO relay_spends (relay_id, at, events) VALUES (?, ?, ?)",
               (relay_id, now, events))
        tx.run("DELETE FROM relay_spends WHERE relay_id = ? AND at <= ?",
               (relay_id, now - round(BUDGET_WINDOW * 1e6)))

    async def spend_relay_budget(self, relay_id: int, events: int) -> bool:
        """Spend the budget of events sent again (a refused batch's others, a request after a
        refresh): False, and nothing spent, when it has not that many left."""

        def work(tx: Tx) -> bool:
            now = self._now(tx)
            rows = tx.run(f"SELECT events_per_minute FROM relays WHERE id = ?{self.ROW_LOCK}",
                          (relay_id,))[1]
            per_minute = rows[0][0] if rows else 0
            if per_minute:
                if self._budget(tx, relay_id, per_minute, now)[0] < events:
                    return False
                self._spend(tx, relay_id, events, now)
            return True

        return await self.transact(work, durable=False)

    async def renew_relay_lease(self, batch: RelayBatch) -> RelayBatch | None:
        """Hold a batch's events for another lease (its sending takes longer than one: a
        refused batch split and sent again); None if its lease had ended (another sender may
        hold them now)."""
        ids = [item.id for item in batch.items]

        def work(tx: Tx) -> RelayBatch | None:
            lease = self._now(tx) + round(batch.lease_seconds * 1e6)
            changed = sum(tx.run(
                f"UPDATE relay_outbox SET next_attempt_at = ? WHERE id IN "
                f"({placeholders(len(chunk))}) AND next_attempt_at = ? AND status = 'pending'",
                (lease, *chunk, batch.lease))[0] for chunk in _chunks(ids))
            if changed != len(ids):
                raise _LeaseLost()
            return replace(batch, lease=lease)

        try:
            return await self.transact(work, durable=False)
        except _LeaseLost:
            return None

    async def record_relay_outcome(self, batch: RelayBatch, outcome: RelayOutcome,
                                   policy: RetryPolicy, rng: random.Random) -> Recorded:
        """Keep what sending a batch decided, in one transaction: sent events leave the outbox,
        failed ones wait for their retry (or become dead letters once retried long enough),
        refused ones become dead letters; the relay's counters, errors and state follow. Only
        events whose lease the batch still holds change."""
        return await self.transact(lambda tx: self._record(tx, batch, outcome, policy, rng),
                                   durable=False)

    def _record(self, tx: Tx, batch: RelayBatch, outcome: RelayOutcome, policy: RetryPolicy,
                rng: random.Random) -> Recorded:
        now, lease, at = self._now(tx), batch.lease, utc_now()
        tx.run(f"SELECT id FROM relays WHERE id = ?{self.ROW_LOCK}", (batch.relay_id,))
        mine = "next_attempt_at = ? AND status = 'pending'"
        sent = sum(tx.run(f"DELETE FROM relay_outbox WHERE id IN ({placeholders(len(chunk))}) "
                          f"AND {mine}", (*chunk, lease))[0]
                   for chunk in _chunks(outcome.sent))
        retried = dead = released = 0
        dead_rows = list(outcome.dead)
        for item, status, error in outcome.retry:
            if gives_up(item.first_failed_at, now, policy):
                dead_rows.append((item.id, status, f"Retried for "
                                                   f"{policy.give_up_after / 3600:g} h to no "
                                                   f"avail; the last error: {error}"))
                continue
            due = now + round(retry_delay(item.attempts + 1, policy, rng) * 1e6)
            retried += tx.run(
                "UPDATE relay_outbox SET attempts = attempts + 1, next_attempt_at = ?, "
                "first_failed_at = coalesce(first_failed_at, ?), status_code = ?, error = ? "
                f"WHERE id = ? AND {mine}", (due, now, status, error, item.id, lease))[0]
        for outbox_id, status, error in dead_rows:
            dead += tx.run("UPDATE relay_outbox SET status = 'dead', status_code = ?, "
                           f"error = ?, failed_at = ? WHERE id = ? AND {mine}",
                           (status, error, at, outbox_id, lease))[0]
        for chunk in _chunks(outcome.release):
            released += tx.run(f"UPDATE relay_outbox SET next_attempt_at = ? WHERE id IN "
                               f"({placeholders(len(chunk))}) AND {mine}",
                               (now, *chunk, lease))[0]
        for outbox_id, seconds in outcome.hold_contacts:
            retried += tx.run(f"UPDATE relay_outbox SET next_attempt_at = ? WHERE id = ? "
                              f"AND {mine}", (now + round(seconds * 1e6), outbox_id, lease))[0]
        hold_until = 0 if outcome.hold_relay is None else now + round(outcome.hold_relay * 1e6)
        paused = int(outcome.pause is not None)
        tx.run("UPDATE relays SET sent = sent + ?, retried = retried + ?, "
               "last_success_at = coalesce(?, last_success_at), "
               "last_error = coalesce(?, last_error), last_error_at = coalesce(?, last_error_at), "
               "hold_until = CASE WHEN ? > hold_until THEN ? ELSE hold_until END, "
               "state = CASE WHEN ? = 1 THEN 'paused' ELSE state END, "
               "paused_reason = CASE WHEN ? = 1 THEN ? ELSE paused_reason END "
               "WHERE id = ?",
               (sent, retried + released, at if sent else None, outcome.last_error,
                at if outcome.last_error else None, hold_until, hold_until, paused, paused,
                outcome.pause, batch.relay_id))
        changed = sent + retried + dead + released
        return Recorded(sent, retried + released, dead, max(outcome.count() - changed, 0))

    async def relay_credentials(self, relay_id: int) -> RelayCredentials | None:
        rows = await self.fetch(f"SELECT {_CREDENTIAL_COLUMNS} FROM relays WHERE id = ?",
                                (relay_id,))
        return RelayCredentials(*rows[0]) if rows else None

    async def save_relay_tokens(self, relay_id: int, replaced: str | None, access_token: str,
                                expires_in: float | None,
                                refresh_token: str | None) -> RelayCredentials | None:
        """Keep the tokens a refresh gave, unless the access token is no longer `replaced`
        (another sender refreshed first, or a person changed the credentials): the relay's
        credentials as they are then."""

        def work(tx: Tx) -> RelayCredentials | None:
            now = self._now(tx)
            rows = tx.run(f"SELECT {_CREDENTIAL_COLUMNS} FROM relays WHERE id = ?"
                          f"{self.ROW_LOCK}", (relay_id,))[1]
            if not rows:
                return None
            current = RelayCredentials(*rows[0])
            if current.access_token != replaced or not current.oauth:
                return current
            expires = None if expires_in is None else now + round(expires_in * 1e6)
            tx.run("UPDATE relays SET access_token = ?, access_expires_at = ?, "
                   "refresh_token = coalesce(?, refresh_token) WHERE id = ?",
                   (access_token, expires, refresh_token, relay_id))
            return RelayCredentials(
                current.token, current.client_id, current.client_secret,
                refresh_token or current.refresh_token, access_token, expires)

        return await self.transact(work)

    async def database_micros(self) -> int:
        return int((await self.fetch(f"SELECT {self.NOW_MICROS}"))[0][0])


class _LeaseLost(Exception):
    pass
