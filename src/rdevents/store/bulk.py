"""The reads of the bulk commands (`rdevents export`, `rdevents import`): an account's events and
contacts page by page, each page starting after the last row of the one before (keyset
pagination: no page reads what earlier ones did, and memory holds two pages: one handled, the
next being read), and which events an import stored already.

Times are the stored text ("2026-12-02T14:03:05.123456Z"); `since` is included, `until` is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..contacts import Contact
from .queries import Queries, Row, Statement, placeholders

PAGE = 10_000

# The keys of an event's document, each with its column and what the column holds: JSON text,
# a text rdevents made (no character of it needs a JSON escape), or any text.
_EVENT_DOCUMENT = (("event_uuid", "e.uuid", "ours"), ("event_type", "e.event_type", "ours"),
                   ("event_family", "e.event_family", "ours"),
                   ("event_identifier", "e.event_identifier", "text"),
                   ("payload", "e.payload", "json"), ("received_at", "e.received_at", "ours"),
                   ("contact_uuid", "c.uuid", "ours"), ("event_batch_uuid", "e.batch_uuid", "ours"))


def _window(column: str, since: str | None, until: str | None) -> tuple[list[str], list[Any]]:
    where, params = [], []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        params.append(until)
    return where, params


class BulkQueries(Queries):
    # A text as a JSON string (null for NULL), written by the database: escaped as orjson
    # escapes it (PostgreSQL overrides it).
    JSON_TEXT = "json_quote({})"

    async def event_rows(self, account_id: int, since: str | None, until: str | None,
                         size: int = PAGE) -> AsyncIterator[list[Row]]:
        from .sql import EVENT_COLUMNS  # sql.py imports this module

        async for rows in self._event_pages(EVENT_COLUMNS, account_id, since, until, size):
            yield rows

    async def event_lines(self, account_id: int, since: str | None, until: str | None,
                          size: int = PAGE) -> AsyncIterator[list[str]]:
        """Made by the database, a line costs the export half what decoding the row and
        encoding its document in Python does."""
        async for rows in self._event_pages(self._event_document(), account_id, since, until,
                                            size):
            yield [row[0] for row in rows]

    def _event_document(self) -> str:
        """An expression of the JSON text of an event's document (http.events.event_document),
        its keys in that order: the payload is JSON text already; the texts rdevents makes (a
        uuid, a time, a catalogue's name) need no escapes, and are only quoted."""
        parts = []
        for n, (key, column, kind) in enumerate(_EVENT_DOCUMENT):
            value = {"json": column, "ours": f"""coalesce('"' || {column} || '"', 'null')""",
                     "text": self.JSON_TEXT.format(column)}[kind]
            parts.append(f"""'{',' if n else '{'}"{key}":' || {value}""")
        return " || ".join(parts) + " || '}'"

    async def _event_pages(self, columns: str, account_id: int, since: str | None,
                           until: str | None, size: int) -> AsyncIterator[list[Row]]:
        """Pages of `columns` of the account's events, in order of reception; each row ends
        with the event's reception time and id."""
        from .sql import EVENTS_WITH_CONTACT  # sql.py imports this module

        where, params = _window("e.received_at", since, until)
        where.insert(0, "e.account_id = ?")
        params.insert(0, account_id)

        def page(after: Row | None) -> Statement:
            # In the order of the account's time index: (received_at, id).
            return (f"SELECT {columns}, e.received_at, e.id FROM {EVENTS_WITH_CONTACT} "
                    f"WHERE {' AND '.join(where)} "
                    + ("AND e.received_at >= ? AND (e.received_at > ? OR e.id > ?) "
                       if after else "") + "ORDER BY e.received_at, e.id LIMIT ?",
                    (*params, *((after[-2], after[-2], after[-1]) if after else ()), size))

        async for rows in self._pages(page, size, self.fetch_in_index_order):
            yield rows

    async def contact_pages(self, account_id: int, since: str | None, until: str | None,
                            size: int = PAGE) -> AsyncIterator[list[Contact]]:
        """Contacts in the order they were created; `since` and `until` bound their last
        change (updated_at)."""
        from .sql import CONTACT_COLUMNS, contact_from_row  # sql.py imports this module

        where, params = _window("updated_at", since, until)

        def page(after: Row | None) -> Statement:
            return (f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE "
                    + " AND ".join(["account_id = ?", "id > ?", *where]) + " ORDER BY id LIMIT ?",
                    (account_id, after[0] if after else 0, *params, size))

        async for rows in self._pages(page, size, self.fetch_in_index_order):
            yield [contact_from_row(row) for row in rows]

    async def _pages(self, page: Callable[[Row | None], Statement], size: int,
                     fetch: Callable[..., Awaitable[list[Row]]]) -> AsyncIterator[list[Row]]:
        """The rows of `page(None)`, then of `page(last row so far)`, until a page is not full;
        the next page is read (by `fetch`) while the caller handles one."""
        reading = asyncio.ensure_future(fetch(*page(None)))
        while True:
            rows = await reading
            if len(rows) == size:
                reading = asyncio.ensure_future(fetch(*page(rows[-1])))
            if rows:
                yield rows
            if len(rows) < size:
                return

    async def count_events_between(self, account_id: int, since: str | None,
                                   until: str | None) -> int:
        return await self._count_between("events", "received_at", account_id, since, until)

    async def count_contacts_between(self, account_id: int, since: str | None,
                                     until: str | None) -> int:
        return await self._count_between("contacts", "updated_at", account_id, since, until)

    async def _count_between(self, table: str, column: str, account_id: int, since: str | None,
                             until: str | None) -> int:
        where, params = _window(column, since, until)
        rows = await self.fetch(f"SELECT count(*) FROM {table} WHERE "
                                + " AND ".join(["account_id = ?", *where]), (account_id, *params))
        return int(rows[0][0])

    async def stored_event_uuids(self, uuids: list[str]) -> set[str]:
        found: set[str] = set()
        for statement in self._stored_event_uuid_statements(uuids):
            found.update(row[0] for row in await self.fetch(*statement))
        return found

    async def has_events(self, account_id: int) -> bool:
        return bool(await self.fetch("SELECT 1 FROM events WHERE account_id = ? LIMIT 1",
                                     (account_id,)))

    @staticmethod
    def _stored_event_uuid_statements(uuids: list[str]) -> list[Statement]:
        from .sql import CHUNK  # sql.py imports this module

        return [(f"SELECT uuid FROM events WHERE uuid IN ({placeholders(len(chunk))})", chunk)
                for chunk in (uuids[start:start + CHUNK]
                              for start in range(0, len(uuids), CHUNK))]
