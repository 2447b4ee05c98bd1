"""SQLite only: processes writing one database file take turns, and a turn ends with its
process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import conversion
from serverproc import ServerProcess
from together import fire_together
from waiting import wait_until


@pytest.fixture
def two_servers(tmp_path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    first = ServerProcess(tmp_path)
    second = first.sibling()
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


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


def test_a_write_waits_for_the_turn_and_a_dead_holder_gives_it_up(tmp_path):
    server = ServerProcess(tmp_path).start()
    lock_file = Path(f"{server.database}-lock")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(lock_file)!r}, os.O_RDONLY)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with server.client() as client, ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.post, "/platform/events",
                                 json=conversion("waits@example.com"))
            wait_until(lambda: blocked_on(lock_file))
            assert not answer.done()  # waiting for its turn, neither failed nor written
            holder.kill()  # the kernel ends the dead process's turn
            assert answer.result(timeout=30).status_code == 200
            assert client.get("/platform/contacts/email:waits@example.com").status_code == 200
    finally:
        holder.kill()
        holder.wait()
        server.stop()
