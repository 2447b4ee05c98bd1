"""The webhooks' queries of the SQL store: subscriptions, and the outbox the senders work from.

Deliveries are written by the processing stage (`process/`), in the transaction of the events that
trigger them. A sender takes due deliveries by moving their next attempt past the attempt's
timeout (a lease): if the sender's process dies, the delivery is taken again once the lease ends.
Accounts take turns, and one with as many attempts under way as it may have waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ..clock import utc_now
from . import WebhookExists
from .queries import Queries, Row, Statement, from_json, placeholders, to_json
from .webhook_records import Attempt, DeliveryRecord, DueDelivery, Webhook

# An attempt made, and what it leaves its delivery in: (delivery, attempt, status, seconds until
# the next attempt).
AttemptOutcome = tuple[DueDelivery, Attempt, str, float]

_WEBHOOK_COLUMNS = ("uuid, event_type, url, include_relations, event_identifiers, secret, "
                    "created_at, updated_at, entity_type, http_method")


def _webhook_from_row(row: Row) -> Webhook:
    return Webhook(row[0], row[1], row[2], tuple(from_json(row[3])), tuple(from_json(row[4])),
                   *row[5:])


class WebhookQueries(Queries):
    # Set when deliveries are queued by this process (see outbound/sender.py).
    deliveries_queued: asyncio.Event

    # Which of the deliveries chosen to take are taken. PostgreSQL: the senders of other
    # processes skip those one has locked to take them, and take those still due once locked.
    # SQLite's write transactions take turns: the chosen ones are all taken.
    TAKEN_OF = "{chosen}"
    # PostgreSQL: lock a row until the transaction ends (SQLite's write transactions take turns).
    FOR_UPDATE = ""
    # Joins each webhook `w` to its first due deliveries `d`, given the subquery that selects
    # their ids: SQLite runs the correlated subquery once a webhook; PostgreSQL needs LATERAL
    # to do the same rather than test every delivery.
    FIRST_DUE_OF_EACH_WEBHOOK = "JOIN webhook_deliveries d ON d.id IN ({})"
    # The database's time in microseconds since 1970 (SQLite counts in Julian days).
    NOW_MICROS = "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"

    async def create_webhook(self, account_id: int, webhook: Webhook, limit: int) -> bool:
        """False (and nothing stored) when the account has `limit` webhooks already; raises
        WebhookExists when it has a webhook of that type to that URL. The account's row is
        locked first, so that concurrent creations cannot pass the limit together."""
        try:
            results = await self.change_all([
                (f"SELECT id FROM accounts WHERE id = ?{self.FOR_UPDATE}", (account_id,)),
                (f"INSERT INTO webhooks ({_WEBHOOK_COLUMNS}, account_id) "
                 f"SELECT {placeholders(11)} WHERE "
                 "(SELECT count(*) FROM webhooks WHERE account_id = ?) < ?",
                 (*self._values(webhook), account_id, account_id, limit))])
        except self.integrity_errors:
            raise WebhookExists(webhook.url) from None
        return results[-1][0] > 0

    async def update_webhook(self, account_id: int, webhook: Webhook) -> bool:
        """Raises WebhookExists when another webhook has that type and URL."""
        values = self._values(webhook)
        try:
            changed, _ = await self.change(
                "UPDATE webhooks SET event_type = ?, url = ?, include_relations = ?, "
                "event_identifiers = ?, updated_at = ? WHERE account_id = ? AND uuid = ?",
                (*values[1:5], webhook.updated_at, account_id, webhook.uuid))
        except self.integrity_errors:
            raise WebhookExists(webhook.url) from None
        return changed > 0

    async def set_webhook_secret(self, account_id: int, uuid: str, secret: str,
                                 updated_at: str) -> bool:
        changed, _ = await self.change(
            "UPDATE webhooks SET secret = ?, updated_at = ? WHERE account_id = ? AND uuid = ?",
            (secret, updated_at, account_id, uuid))
        return changed > 0

    @staticmethod
    def _values(w: Webhook) -> Row:
        return (w.uuid, w.event_type, w.url, to_json(list(w.include_relations)),
                to_json(list(w.event_identifiers)), w.secret, w.created_at, w.updated_at,
                w.entity_type, w.http_method)

    async def list_webhooks(self, account_id: int) -> list[Webhook]:
        rows = await self.fetch(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = ? "
                                "ORDER BY id", (account_id,))
        return [_webhook_from_row(row) for row in rows]

    async def get_webhook(self, account_id: int, uuid: str) -> Webhook | None:
        rows = await self.fetch(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE account_id = ? "
                                "AND uuid = ?", (account_id, uuid))
        return _webhook_from_row(rows[0]) if rows else None

    async def delete_webhook(self, account_id: int, uuid: str) -> bool:
        """Delete a subscription with its deliveries and their attempts."""
        mine = "SELECT id FROM webhooks WHERE account_id = ? AND uuid = ?"
        results = await self.change_all([
            ("DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM "
             f"webhook_deliveries WHERE webhook_id IN ({mine}))", (account_id, uuid)),
            (f"DELETE FROM webhook_deliveries WHERE webhook_id IN ({mine})", (account_id, uuid)),
            ("DELETE FROM webhooks WHERE account_id = ? AND uuid = ?", (account_id, uuid))])
        return results[-1][0] > 0

    async def list_deliveries(self, account_id: int, webhook_uuid: str, status: str | None,
                              offset: int, limit: int) -> list[DeliveryRecord]:
        """A webhook's deliveries, newest first, each with its attempts (oldest first)."""
        where, params = "w.account_id = ? AND w.uuid = ?", [account_id, webhook_uuid]
        if status is not None:
            where += " AND d.status = ?"
            params.append(status)
        rows = await self.fetch(
            "SELECT d.id, d.uuid, d.event_uuid, d.status, d.attempts, d.created_at, "
            "d.updated_at FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            f"WHERE {where} ORDER BY d.id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        history: dict[int, list[Attempt]] = {row[0]: [] for row in rows}
        if rows:
            for delivery_id, *attempt in await self.fetch(
                    "SELECT delivery_id, attempted_at, status_code, error, duration_ms FROM "
                    f"webhook_attempts WHERE delivery_id IN ({placeholders(len(rows))}) "
                    "ORDER BY id", [row[0] for row in rows]):
                history[delivery_id].append(Attempt(*attempt))
        return [DeliveryRecord(uuid, event_uuid, status, attempts, created_at, updated_at,
                               tuple(history[delivery_id]))
                for delivery_id, uuid, event_uuid, status, attempts, created_at, updated_at
                in rows]

    async def resend_delivery(self, account_id: int, webhook_uuid: str,
                              delivery_uuid: str) -> str | None:
        """Queue a delivery that is over (delivered or failed) again, with its retries afresh.
        Returns "queued", or the status that kept it from being queued (None: no such
        delivery)."""
        owned = "webhook_id IN (SELECT id FROM webhooks WHERE account_id = ? AND uuid = ?)"
        changed, _ = await self.change(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = 0, "
            f"updated_at = ? WHERE uuid = ? AND status IN ('delivered', 'failed') AND {owned}",
            (utc_now(), delivery_uuid, account_id, webhook_uuid))
        if changed:
            self.deliveries_queued.set()
            return "queued"
        rows = await self.fetch(f"SELECT status FROM webhook_deliveries WHERE uuid = ? AND {owned}",
                                (delivery_uuid, account_id, webhook_uuid))
        return rows[0][0] if rows else None

    # --- senders ----------------------------------------------------------------------------------
    # Times of attempts and leases are the database's clock, so that the hosts' clocks need not
    # agree; they are whole microseconds, so that a lease read back is the lease stored.

    async def take_due_deliveries(self, lease_seconds: float, limit: int, per_account: int,
                                  busy: Mapping[int, int]) -> list[DueDelivery]:
        """Take up to `limit` pending deliveries whose time has come, for `lease_seconds`, and
        at most `per_account` minus what `busy` says it has under way of each account. Each
        account's oldest go first, and the accounts take turns: every account's first due
        delivery is taken before any account's second."""
        due = f"status = 'pending' AND next_attempt_at <= {self.NOW_MICROS}"
        if not await self.fetch(f"SELECT 1 FROM webhook_deliveries WHERE {due} LIMIT 1"):
            return []  # the usual case: a read, no write lock
        first_due = ("SELECT x.id FROM webhook_deliveries x WHERE x.webhook_id = w.id "
                     f"AND x.status = 'pending' AND x.next_attempt_at <= {self.NOW_MICROS} "
                     "ORDER BY x.next_attempt_at, x.id LIMIT ?")
        ranked = ("SELECT d.id, d.next_attempt_at, w.account_id, ROW_NUMBER() OVER "
                  "(PARTITION BY w.account_id ORDER BY d.next_attempt_at, d.id) AS turn "
                  f"FROM webhooks w {self.FIRST_DUE_OF_EACH_WEBHOOK.format(first_due)}")
        under_way = " ".join("WHEN ? THEN ?" for _ in busy)
        room = f"? - CASE account_id {under_way} ELSE 0 END" if busy else "?"
        fair = (f"SELECT id FROM ({ranked}) ranked WHERE turn <= {room} "
                "ORDER BY turn, next_attempt_at, id LIMIT ?")
        (_, taken), = await self.change_all([(
            f"UPDATE webhook_deliveries SET next_attempt_at = {self.NOW_MICROS} + ? "
            f"WHERE id IN ({self.TAKEN_OF.format(chosen=fair, due=due)}) "
            "RETURNING id, uuid, body, attempts, webhook_id, next_attempt_at",
            (_micros(lease_seconds), per_account, per_account,
             *(value for pair in busy.items() for value in pair), limit))])
        if not taken:
            return []
        webhook_ids = sorted({row[4] for row in taken})
        rows = await self.fetch("SELECT id, url, secret, account_id FROM webhooks "
                                f"WHERE id IN ({placeholders(len(webhook_ids))})", webhook_ids)
        targets = {id_: (url, secret, account_id) for id_, url, secret, account_id in rows}
        return [DueDelivery(delivery_id, uuid, body, attempts, *targets[webhook_id], lease)
                for delivery_id, uuid, body, attempts, webhook_id, lease in sorted(taken)
                if webhook_id in targets]

    async def record_attempts(self, outcomes: list[AttemptOutcome]) -> None:
        """Keep attempts and what each leaves its delivery in (delivered, failed, or pending
        for `delay` more seconds), in one transaction. A delivery changes only while its
        sender's lease holds: not once it was erased, re-sent or taken by another sender."""
        statements: list[Statement] = []
        now = utc_now()
        for delivery, attempt, status, delay in outcomes:
            statements += [
                ("INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, "
                 "duration_ms) SELECT ?, ?, ?, ?, ? WHERE EXISTS "
                 "(SELECT 1 FROM webhook_deliveries WHERE id = ?)",
                 (delivery.id, attempt.attempted_at, attempt.status_code, attempt.error,
                  attempt.duration_ms, delivery.id)),
                (f"UPDATE webhook_deliveries SET status = ?, attempts = ?, "
                 f"next_attempt_at = {self.NOW_MICROS} + ?, updated_at = ? "
                 "WHERE id = ? AND status = 'pending' AND next_attempt_at = ?",
                 (status, delivery.attempts + 1, _micros(delay), now, delivery.id,
                  delivery.lease))]
        await self.change_all(statements)

    async def prune_deliveries(self, finished_before: str, limit: int) -> int:
        """Delete up to `limit` deliveries that are over (delivered, failed or erased) and last
        changed before `finished_before`, with their attempts; returns how many went."""
        oldest = ("SELECT id FROM webhook_deliveries WHERE status <> 'pending' "
                  "AND updated_at < ? ORDER BY id LIMIT ?")
        results = await self.change_all([
            (f"DELETE FROM webhook_attempts WHERE delivery_id IN ({oldest})",
             (finished_before, limit)),
            (f"DELETE FROM webhook_deliveries WHERE id IN ({oldest})", (finished_before, limit))])
        return results[-1][0]


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)
