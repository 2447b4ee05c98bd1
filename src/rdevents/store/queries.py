"""What the SQL store's query groups stand on: running a statement, and its small helpers."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

Row = tuple[Any, ...]
Statement = tuple[str, Iterable[Any]]


class TableRows(NamedTuple):
    """Rows to insert into a table: a value for each column, in order."""

    table: str
    columns: tuple[str, ...]
    rows: list[Row]


def from_json(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already decoded from JSONB on PostgreSQL."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


class Queries(abc.ABC):
    """Statements are written with `?` placeholders; a backend that uses another style converts
    them."""

    # The driver's exceptions for a violated constraint.
    integrity_errors: tuple[type[Exception], ...] = ()

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Run a read and return its rows; StoreUnavailable when the database is out of reach."""

    async def fetch_in_index_order(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """A read whose ORDER BY an index gives, taken from that index whatever the table's
        statistics (see postgres.py)."""
        return await self.fetch(sql, params)

    @abc.abstractmethod
    async def change_all(self, statements: list[Statement]) -> list[tuple[int, list[Row]]]:
        """Run statements in one transaction: for each, (rows changed, rows returned)."""

    async def change(self, sql: str, params: Iterable[Any] = ()) -> tuple[int, list[Row]]:
        """Run one statement in a transaction of its own: (rows changed, rows returned)."""
        return (await self.change_all([(sql, params)]))[0]

    async def prune_oldest(self, table: str, column: str, before: str, limit: int) -> int:
        """Delete up to `limit` of the table's rows whose `column` (a stored time) is before
        `before`, oldest first; how many went."""
        (dropped, _), = await self.change_all([(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "
            f"WHERE {column} < ? ORDER BY {column} LIMIT ?)", (before, limit))])
        return dropped
