"""Schema versions, managed by Alembic for every backend."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database holds data under an older schema; `rdevents db upgrade` brings it up."""


def sqlalchemy_url(url: str) -> str:
    """The URL as SQLAlchemy wants it: PostgreSQL through psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations the database lacks, up to `revision`."""
    command.upgrade(_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Undo the migrations above `revision`."""
    command.downgrade(_config(url), revision)


def ensure_current(url: str) -> None:
    """Create the schema of an empty database; refuse a database whose schema is behind."""
    current = current_revision(url)
    if current == head_revision():
        return
    if current is None and not _has_tables(url):
        upgrade(url)
        return
    raise SchemaBehind(
        f"The database schema is at revision {current or 'none'}, this version needs "
        f"{head_revision()}. Run `rdevents db upgrade` (with the same --database) first."
    )


def _has_tables(url: str) -> bool:
    engine = create_engine(sqlalchemy_url(url))
    try:
        return bool(inspect(engine).get_table_names())
    finally:
        engine.dispose()
