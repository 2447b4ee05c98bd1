"""SQLite only: processes writing one database file take turns, and a turn ends with its
process."""

from __future__ import annotations

import asyncio
import fcntl
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import conversion
from rdevents.store import StoreUnavailable
from rdevents.store.sqlite import _WriteTurn, database_path
from serverproc import ServerProcess, two_servers
from sqlite_store import made_database, opened
from together import fire_together
from waiting import wait_until


@pytest.fixture(name="two_servers")
def two_servers_fixture(tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with two_servers(tmp_path) as servers:
        yield servers


def test_two_processes_on_one_file_store_every_event_once(two_servers):
    email = f"same-{uuid.uuid4().hex[:8]}@example.com"
    with two_servers[0].client() as a, two_servers[1].client() as b:
        calls = [lambda c=c, i=i: c.post("/platform/events/batch", json=[
                     conversion(email, conversion_identifier=f"c{i}"),
                     conversion(f"other-{i}@example.com", conversion_identifier=f"o{i}")])
                 for i, c in enumerate([a, b] * 12)]
        assert [r.status_code for r in fire_together(calls)] == [200] * 24
        contact = b.get(f"/platform/contacts/email:{email}").json()
        history = a.get(f"/platform/contacts/{contact['uuid']}/events",
                        params={"page_size": 100}).json()
        assert sorted(e["event_identifier"] for e in history) == sorted(f"c{i}" for i in range(24))
        for i in (0, 23):
            assert a.get(f"/platform/contacts/email:other-{i}@example.com").status_code == 200


def blocked_on(lock_file: Path) -> bool:
    """Whether some process waits for the flock of `lock_file` (a `->` line of /proc/locks)."""
    inode = f":{lock_file.stat().st_ino} "
    return any("->" in line and "FLOCK" in line and inode in line
               for line in Path("/proc/locks").read_text().splitlines())


class Holder:
    """Another process holding the turn (the lock file's flock) until killed."""

    def __init__(self, lock_file: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, os, time\n"
             f"fd = os.open({str(lock_file)!r}, os.O_RDONLY)\n"
             "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)"],
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline() == "held\n"

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()


def test_a_write_waits_for_the_turn_and_a_dead_holder_gives_it_up(tmp_path):
    server = ServerProcess(tmp_path).start()
    lock_file = Path(f"{server.database}-lock")
    holder = Holder(lock_file)
    try:
        with server.client() as client, ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.post, "/platform/events",
                                 json=conversion("waits@example.com"))
            server.wait_for_pending_requests(1)
            wait_until(lambda: blocked_on(lock_file))
            assert not answer.done()  # waiting for its turn, neither failed nor written
            holder.kill()  # the kernel ends the dead process's turn
            assert answer.result(timeout=30).status_code == 200
            assert client.get("/platform/contacts/email:waits@example.com").status_code == 200
    finally:
        holder.kill()
        server.stop()


def free(lock_file: Path) -> bool:
    """Whether nobody holds the turn: it can be taken without waiting (and is given back)."""
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # gives it back


@pytest.fixture
def database(tmp_path) -> str:
    return made_database(tmp_path)


@pytest.fixture
def contested(database) -> Iterator[tuple[_WriteTurn, Holder, Path]]:
    """A turn of the database's, the turn held by another process, and the lock file."""
    path = database_path(database)
    lock_file = Path(f"{path}-lock")
    holder = Holder(lock_file)
    turn = _WriteTurn(path)
    try:
        yield turn, holder, lock_file
    finally:
        holder.kill()
        turn.close()


def test_a_turn_not_given_in_time_is_unavailable_and_given_back_when_it_comes(contested):
    turn, holder, lock_file = contested

    async def scenario() -> None:
        with pytest.raises(StoreUnavailable, match="for over 0.2 s"):
            await turn.take(0.2)
        holder.kill()  # the wait given up goes on, gets the turn, and gives it back
        await asyncio.to_thread(wait_until, lambda: free(lock_file))
        await turn.take(1)  # a new wait: taken at once
        assert not free(lock_file)
        turn.end()
        assert free(lock_file)

    asyncio.run(scenario())


def test_the_next_take_gets_what_a_wait_given_up_gets(contested):
    turn, holder, lock_file = contested

    async def scenario() -> None:
        with pytest.raises(StoreUnavailable):
            await turn.take(0.1)
        taking = asyncio.ensure_future(turn.take(30))  # awaits the same wait, no second one
        await asyncio.sleep(0)
        holder.kill()
        await taking
        assert not free(lock_file)
        turn.end()

    asyncio.run(scenario())


def test_a_write_cancelled_while_it_waits_for_the_turn_leaves_nothing_held_or_open(database,
                                                                                  contested):
    _, holder, lock_file = contested

    async def scenario() -> None:
        async with opened(database) as store:
            writing = asyncio.ensure_future(store.commit_group([]))
            await asyncio.to_thread(wait_until, lambda: blocked_on(lock_file))
            writing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await writing
            holder.kill()
            await asyncio.to_thread(wait_until, lambda: free(lock_file))
            assert await store.commit_group([]) == []  # the next write takes its turn
            assert free(lock_file)
            assert await store.write_problem() is None  # and nothing was left open

    asyncio.run(scenario())


def test_the_lock_file_has_the_database_permissions_whatever_the_umask(database):
    path = database_path(database)
    os.chmod(path, 0o664)
    os.unlink(f"{path}-lock")
    previous = os.umask(0o077)
    try:
        _WriteTurn(path).close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(f"{path}-lock").st_mode) == 0o664
