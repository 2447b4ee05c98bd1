"""Fresh PostgreSQL databases for the benchmarks, on the server of RDEVENTS_BENCH_POSTGRES_URL
(its maintenance database; by default the local server's `postgres`)."""

from __future__ import annotations

import os
import time

import psycopg

POSTGRES_ADMIN_URL = os.environ.get("RDEVENTS_BENCH_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")


def fresh_postgres_database() -> str:
    """The URL of a new, empty database."""
    name = f"rdevents_bench_{int(time.time())}_{os.getpid()}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
