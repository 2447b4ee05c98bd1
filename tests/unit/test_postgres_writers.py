"""The PostgreSQL writers' connections, on a connect function of the test's own."""

from __future__ import annotations

import threading

import psycopg
import pytest

from rdevents.store import postgres
from rdevents.store.postgres import PostgresStore


class FakeConnection:
    def __init__(self) -> None:
        self.closed = False
        self.broken = False

    def close(self) -> None:
        self.closed = True


def test_a_writer_whose_reconnect_failed_connects_again_once_the_database_is_back(monkeypatch):
    made: list[FakeConnection] = []
    down = threading.Event()

    def connect(*args, **kwargs):
        if down.is_set():
            raise psycopg.OperationalError("connection refused")
        made.append(FakeConnection())
        return made[-1]

    monkeypatch.setattr(postgres.psycopg, "connect", connect)
    store = PostgresStore("postgresql://nowhere/test")
    first = store._writer_connection()
    assert store._writer_connection() is first  # kept while it works

    first.broken = True  # the database went away
    down.set()
    for _ in range(2):  # each write tries to reconnect, and fails as unreachable
        with pytest.raises(psycopg.OperationalError):
            store._writer_connection()
    assert first.closed and store._writers == set()

    down.clear()  # back
    second = store._writer_connection()
    assert second is made[-1] and second is not first
    assert store._writers == {second}

    # Each writer thread has a connection of its own.
    other: list[FakeConnection] = []
    thread = threading.Thread(target=lambda: other.append(store._writer_connection()))
    thread.start()
    thread.join()
    assert other[0] is not second and store._writers == {second, other[0]}
