"""The request log's queries of the SQL store: batches of records in, an account's records out,
and what is past the caps or the retention dropped.

Records are written by the request log's writer (rdevents/request_log.py) in batches, off the
requests' path. Each batch's transaction also drops, for every account it touched (and for the
unauthenticated records), the oldest records past that account's cap, so that no flood of bad
requests grows the table without bound.
"""

from __future__ import annotations

from typing import Any

from .queries import Queries, Statement, from_json, placeholders, to_json
from .request_records import LoggedRequest, RequestSummary

_COLUMNS = ("uuid", "account_id", "received_at", "method", "path", "query", "status",
            "duration_ms", "request_id", "client_address", "user_agent", "headers",
            "request_body", "request_body_size", "response_body", "response_body_size",
            "body_redacted", "error_types")
_SELECT = ", ".join(_COLUMNS)
_SUMMARY = "uuid, received_at, method, path, status, duration_ms, error_types"
# Rows an INSERT statement carries: well below every backend's limit of parameters.
_ROWS_A_STATEMENT = 50
# What `outcome` selects: requests answered 4xx or 5xx, or the others.
OUTCOMES = {"rejected": "status >= 400", "accepted": "status < 400"}


def _values(record: LoggedRequest) -> tuple[Any, ...]:
    return (record.uuid, record.account_id, record.received_at, record.method, record.path,
            record.query, record.status, record.duration_ms, record.request_id,
            record.client_address, record.user_agent, to_json(record.headers),
            record.request_body, record.request_body_size, record.response_body,
            record.response_body_size, record.body_redacted, to_json(list(record.error_types)))


def _record(row: tuple[Any, ...]) -> LoggedRequest:
    return LoggedRequest(
        uuid=row[0], account_id=row[1], received_at=row[2], method=row[3], path=row[4],
        query=row[5], status=row[6], duration_ms=row[7], request_id=row[8],
        client_address=row[9], user_agent=row[10], headers=from_json(row[11]),
        request_body=bytes(row[12]), request_body_size=row[13], response_body=bytes(row[14]),
        response_body_size=row[15], body_redacted=bool(row[16]),
        error_types=tuple(from_json(row[17])))


def _owner(account_id: int | None) -> tuple[str, tuple[Any, ...]]:
    """The condition selecting an account's records (None: the unauthenticated ones)."""
    if account_id is None:
        return "account_id IS NULL", ()
    return "account_id = ?", (account_id,)


def _selection(account_id: int | None, outcome: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition selecting an account's records of an outcome (None: of any)."""
    where, params = _owner(account_id)
    return (where if outcome is None else f"{where} AND {OUTCOMES[outcome]}"), params


class RequestLogQueries(Queries):
    async def add_requests(self, records: list[LoggedRequest], per_account: int,
                           anonymous: int) -> None:
        """Store `records` in one transaction, then drop the oldest records of each account
        they belong to past `per_account` (past `anonymous` for those without an account)."""
        if not records:
            return
        statements: list[Statement] = []
        for start in range(0, len(records), _ROWS_A_STATEMENT):
            chunk = records[start:start + _ROWS_A_STATEMENT]
            row = f"({placeholders(len(_COLUMNS))})"
            statements.append((
                f"INSERT INTO request_log ({_SELECT}) VALUES {', '.join([row] * len(chunk))}",
                [value for record in chunk for value in _values(record)]))
        owners = {record.account_id for record in records}
        for account_id in sorted(owners, key=lambda owner: -1 if owner is None else owner):
            where, params = _owner(account_id)
            cap = anonymous if account_id is None else per_account
            # The newest `cap` stay: the (cap + 1)th newest and all before it go.
            statements.append((
                f"DELETE FROM request_log WHERE {where} AND id <= (SELECT id FROM request_log "
                f"WHERE {where} ORDER BY id DESC LIMIT 1 OFFSET ?)", (*params, *params, cap)))
        await self.change_all(statements)

    async def list_requests(self, account_id: int | None, outcome: str | None, offset: int,
                            limit: int) -> list[RequestSummary]:
        """An account's records (None: the unauthenticated ones), newest first; `outcome`
        "rejected" (4xx, 5xx) or "accepted" (the others) keeps only those."""
        where, params = _selection(account_id, outcome)
        rows = await self.fetch(f"SELECT {_SUMMARY} FROM request_log WHERE {where} "
                                "ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset))
        return [RequestSummary(row[0], row[1], row[2], row[3], row[4], row[5],
                               tuple(from_json(row[6]))) for row in rows]

    async def count_requests(self, account_id: int | None, outcome: str | None,
                             since: str) -> int:
        """How many of an account's records (None: the unauthenticated ones) were received at
        `since` or later; `outcome` as in list_requests."""
        where, params = _selection(account_id, outcome)
        rows = await self.fetch(f"SELECT count(*) FROM request_log WHERE {where} "
                                "AND received_at >= ?", (*params, since))
        return int(rows[0][0])

    async def get_request(self, account_id: int | None, uuid: str) -> LoggedRequest | None:
        """A record of the account (None: an unauthenticated one), whole."""
        where, params = _owner(account_id)
        rows = await self.fetch(f"SELECT {_SELECT} FROM request_log WHERE uuid = ? AND {where}",
                                (uuid, *params))
        return _record(rows[0]) if rows else None

    async def prune_requests(self, received_before: str, limit: int) -> int:
        """Drop up to `limit` records received before `received_before`; how many went."""
        return await self.prune_oldest("request_log", "received_at", received_before, limit)
