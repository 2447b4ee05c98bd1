"""How `rdevents serve` sets up its process before it serves: the real app on a stand-in for the
server, which only notes what it is run with."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from rdevents.config import Settings
from rdevents.http import server
from rdevents.store.postgres import PostgresStore
from rdevents.store.sqlite import SQLiteStore


@pytest.fixture
def served(monkeypatch) -> Iterator[list[float]]:
    """The GIL's switch interval each server started with (its app is made, not opened)."""
    seen: list[float] = []
    monkeypatch.setattr(server, "settle_garbage_collector", lambda: None)  # not this process's
    monkeypatch.setattr(server.GracefulServer, "__init__", lambda self, config: None)
    monkeypatch.setattr(server.GracefulServer, "run",
                        lambda self: seen.append(sys.getswitchinterval()))
    previous = sys.getswitchinterval()
    yield seen
    sys.setswitchinterval(previous)


@pytest.mark.parametrize("url, store", [
    ("sqlite:///{tmp}/rdevents.db", SQLiteStore),
    ("postgresql://postgres@127.0.0.1:1/unreached", PostgresStore),
])
def test_a_server_hands_the_gil_over_sooner_than_python_would(served, tmp_path, url, store):
    server.run_server(Settings(database_url=url.format(tmp=tmp_path)))
    assert served == [pytest.approx(store.GIL_SWITCH_INTERVAL)]
    assert store.GIL_SWITCH_INTERVAL < 0.005  # Python's default
