"""How `rdevents serve` sets up its process before it serves: the real app on a stand-in for the
server, which only notes what it is run with."""

from __future__ import annotations

import sys

import pytest

from rdevents.config import Settings
from rdevents.http import server
from rdevents.store.postgres import PostgresStore
from rdevents.store.sqlite import SQLiteStore


@pytest.fixture
def served(monkeypatch) -> list[float]:
    """The GIL's switch interval each server started with (its app is made, not opened)."""
    seen: list[float] = []
    monkeypatch.setattr(server, "settle_garbage_collector", lambda: None)  # not this process's
    monkeypatch.setattr(server.GracefulServer, "__init__", lambda self, config: None)
    monkeypatch.setattr(server.GracefulServer, "run",
                        lambda self: seen.append(sys.getswitchinterval()))
    previous = sys.getswitchinterval()
    yield seen
    sys.setswitchinterval(previous)


def test_a_server_on_sqlite_hands_the_gil_over_promptly(served, tmp_path):
    server.run_server(Settings(database_url=f"sqlite:///{tmp_path}/rdevents.db"))
    assert served == [pytest.approx(SQLiteStore.GIL_SWITCH_INTERVAL)]
    assert SQLiteStore.GIL_SWITCH_INTERVAL < 0.005  # Python's default


def test_a_server_on_postgresql_keeps_pythons_switch_interval(served):
    before = sys.getswitchinterval()
    server.run_server(Settings(database_url="postgresql://postgres@127.0.0.1:1/unreached"))
    assert PostgresStore.GIL_SWITCH_INTERVAL is None
    assert served == [before]
