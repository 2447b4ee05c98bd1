"""Copying a whole database to another (e.g. SQLite to PostgreSQL), keeping every id and uuid,
so that tokens, API keys, OAuth apps, contact and event uuids, custom fields, webhooks (with
their pending deliveries) and relays (with what they have not sent, and their dead letters) stay
valid."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import JSON, MetaData, Table, create_engine, func, select, text

from . import tag_index
from .problems import explained
from .schema import ensure_current, sqlalchemy_url, upgrade
from .sqlite import database_path, make_directory

# Parents before children, as the foreign keys require. Rate counters are left behind: they
# only count the current minute and day, sign-in failures their window, relays' spends their
# budget's, a sandbox's faults the tests under way; the tag index is made anew from the contacts.
# Idempotency keys go along, so that a client's retry across the move is still answered.
TABLES = ("accounts", "apps", "admins", "auth_codes", "refresh_tokens", "tokens", "api_keys",
          "contacts", "events", "funnel_transitions", "custom_fields", "webhooks",
          "webhook_deliveries", "webhook_attempts", "relays", "relay_outbox", "idempotency_keys")
CHUNK = 5_000


class TargetNotEmpty(Exception):
    pass


def _adapt(row: dict[str, Any], table: Table) -> dict[str, Any]:
    """JSON is text on SQLite and JSONB on PostgreSQL: convert between the two. An event's
    place in the feed names a transaction of the source's server, which means nothing to the
    target's (a later one there would hide it from the feed): copied events come first, in id
    order."""
    adapted = dict(row)
    if table.name == "events":
        adapted["xid"] = 0
    for name, value in row.items():
        is_json = isinstance(table.c[name].type, JSON)
        if is_json and isinstance(value, str):
            adapted[name] = orjson.loads(value)
        elif not is_json and isinstance(value, (dict, list)):
            adapted[name] = orjson.dumps(value).decode()
    return adapted


# Told of each table as its copy begins (its name and rows); returns what is told of the rows
# copied, a chunk at a time.
Progress = Callable[[str, int], Callable[[int], None]]


def copy_database(source_url: str, target_url: str,
                  progress: Progress = lambda table, rows: lambda copied: None) -> None:
    """DatabaseProblem when either database cannot be used (a SQLite source must exist)."""
    with explained(source_url):
        if source_url.startswith("sqlite:") and not Path(database_path(source_url)).is_file():
            raise FileNotFoundError(errno.ENOENT, "no such file")
        ensure_current(source_url)
    with explained(target_url):
        if target_url.startswith("sqlite:"):
            make_directory(target_url)
        upgrade(target_url)
    source = create_engine(sqlalchemy_url(source_url))
    target = create_engine(sqlalchemy_url(target_url))
    try:
        metadata, target_metadata = MetaData(), MetaData()
        metadata.reflect(source, only=TABLES)
        target_metadata.reflect(target, only=TABLES)
        with source.connect() as reader, target.begin() as writer:
            if writer.execute(text("SELECT count(*) FROM accounts")).scalar():
                raise TargetNotEmpty("The target database already holds accounts.")
            for name in TABLES:
                table = metadata.tables[name]
                copied = progress(name, reader.execute(select(func.count()).select_from(table))
                                  .scalar_one())
                last_id = None
                while True:
                    query = select(table).order_by(table.c.id).limit(CHUNK)
                    if last_id is not None:
                        query = query.where(table.c.id > last_id)
                    rows = [dict(row._mapping) for row in reader.execute(query)]
                    if not rows:
                        break
                    target_table = target_metadata.tables[name]
                    writer.execute(target_table.insert(), [_adapt(row, target_table)
                                                           for row in rows])
                    copied(len(rows))
                    last_id = rows[-1]["id"]
                if target.dialect.name == "postgresql":
                    # Ids were copied as they were: move the sequence past them.
                    highest = writer.execute(select(func.max(table.c.id))).scalar()
                    if highest is not None:
                        writer.execute(text(f"SELECT setval('{name}_id_seq', :value)"),
                                       {"value": highest})
            tag_index.rebuild(writer)
    finally:
        source.dispose()
        target.dispose()
