"""The sandbox's queries of the SQL store (`serve --sandbox`, rdevents/sandbox.py): an account's
faults, added, listed, cleared and taken one request at a time; an account's reset; the
bootstrap token a CI job knows in advance.
"""

from __future__ import annotations

import abc

from ..clock import utc_now
from ..ids import new_uuid
from ..sandbox import Fault, FaultRequest
from .queries import Queries, Row, Statement

_FAULT_COLUMNS = "uuid, fault, count, remaining, path, latency_ms, created_at"
# The live faults of an account (the first parameter) that answer a path (the second).
_ANSWERING = ("account_id = ? AND remaining > 0 AND substr(?, 1, length(path)) = path")

_OF_WEBHOOKS = "webhook_id IN (SELECT id FROM webhooks WHERE account_id = ?)"
_OF_RELAYS = "relay_id IN (SELECT id FROM relays WHERE account_id = ?)"
# What a reset erases: each table holding an account's data, children before their parents,
# with the condition that selects the account's rows (its one parameter, the account's id).
# What is not here stays: the account, its tokens, API keys, OAuth apps (their codes and
# refresh tokens), administrators and their dashboard sessions. tests/test_sandbox.py fails for a
# table in neither list.
ACCOUNT_DATA: tuple[tuple[str, str], ...] = (
    ("webhook_attempts",
     f"delivery_id IN (SELECT id FROM webhook_deliveries WHERE {_OF_WEBHOOKS})"),
    ("webhook_deliveries", _OF_WEBHOOKS),
    ("webhooks", "account_id = ?"),
    ("relay_outbox", _OF_RELAYS),
    ("relay_spends", _OF_RELAYS),
    ("relays", "account_id = ?"),
    ("funnel_transitions", "account_id = ?"),
    ("contact_tags", "account_id = ?"),
    ("events", "account_id = ?"),
    ("contacts", "account_id = ?"),
    ("custom_fields", "account_id = ?"),
    ("rate_counters", "account_id = ?"),
    ("request_log", "account_id = ?"),
    ("idempotency_keys", "account_id = ?"),
    ("sandbox_faults", "account_id = ?"),
)


def _fault(row: Row) -> Fault:
    return Fault(*row)


class SandboxQueries(Queries):
    @abc.abstractmethod
    def relay_membership_lock(self, account_id: int) -> list[Statement]:
        """(store/relays.py)"""

    async def add_fault(self, account_id: int, asked: FaultRequest) -> Fault:
        """Store a fault after the account's others; those spent are forgotten."""
        fault = Fault(new_uuid(), asked.fault, asked.count, asked.count, asked.path,
                      asked.latency_ms, utc_now())
        await self.change_all([
            ("DELETE FROM sandbox_faults WHERE account_id = ? AND remaining = 0", (account_id,)),
            (f"INSERT INTO sandbox_faults (account_id, {_FAULT_COLUMNS}) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (account_id, fault.uuid, fault.fault, fault.count, fault.remaining, fault.path,
              fault.latency_ms, fault.created_at))])
        return fault

    async def list_faults(self, account_id: int) -> list[Fault]:
        """The account's faults not yet spent, in the order they answer."""
        rows = await self.fetch(f"SELECT {_FAULT_COLUMNS} FROM sandbox_faults "
                                "WHERE account_id = ? AND remaining > 0 ORDER BY id",
                                (account_id,))
        return [_fault(row) for row in rows]

    async def clear_faults(self, account_id: int) -> None:
        await self.change("DELETE FROM sandbox_faults WHERE account_id = ?", (account_id,))

    async def take_fault(self, account_id: int, path: str) -> Fault | None:
        """The account's first live fault that answers `path`, counted once (whichever process
        takes it); None when there is none. A read first: most requests find none."""
        if not await self.fetch(f"SELECT 1 FROM sandbox_faults WHERE {_ANSWERING} LIMIT 1",
                                (account_id, path)):
            return None
        # `remaining > 0` again: another process may have spent it since the subquery read it.
        _, rows = await self.change(
            "UPDATE sandbox_faults SET remaining = remaining - 1 WHERE remaining > 0 AND id = "
            f"(SELECT id FROM sandbox_faults WHERE {_ANSWERING} ORDER BY id LIMIT 1) "
            f"RETURNING {_FAULT_COLUMNS}", (account_id, path))
        return _fault(rows[0]) if rows else None

    async def reset_account(self, account_id: int) -> None:
        """Erase the account's data (ACCOUNT_DATA) in one transaction."""
        await self.change_all([
            *self.relay_membership_lock(account_id),
            *((f"DELETE FROM {table} WHERE {condition}", (account_id,))
              for table, condition in ACCOUNT_DATA)])

    async def ensure_token(self, account_name: str, token_hash: str, prefix: str) -> bool:
        """Make the account (unless it exists) and the token one of its own that never expires
        (again live, if it was revoked); False, changing nothing of the token, when it belongs
        to another account."""
        now = utc_now()
        results = await self.change_all([
            ("INSERT INTO accounts (name, created_at) VALUES (?, ?) ON CONFLICT (name) "
             "DO NOTHING", (account_name, now)),
            ("INSERT INTO tokens (account_id, token_hash, prefix, created_at) "
             "SELECT id, ?, ?, ? FROM accounts WHERE name = ? ON CONFLICT (token_hash) "
             "DO UPDATE SET expires_at = NULL, revoked_at = NULL, refresh_token_id = NULL "
             "WHERE tokens.account_id = excluded.account_id",
             (token_hash, prefix, now, account_name)),
            ("SELECT a.name FROM tokens t JOIN accounts a ON a.id = t.account_id "
             "WHERE t.token_hash = ?", (token_hash,))])
        return results[-1][1] == [(account_name,)]
