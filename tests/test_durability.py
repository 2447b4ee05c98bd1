"""Backpressure and graceful shutdown: what happens to writes when the writer cannot keep up or
the server is asked to stop."""

from __future__ import annotations

import signal
import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

import httpx

from conftest import Server, conversion, sqlite_settings
from serverproc import ServerProcess


def hold_write_lock(database_path: str) -> sqlite3.Connection:
    """Take SQLite's write lock from outside, so that the server's writer waits."""
    blocker = sqlite3.connect(database_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


def test_a_full_write_queue_answers_503_and_stores_nothing_of_what_it_refused(tmp_path):
    server = Server(sqlite_settings(tmp_path, max_pending_writes=2)).start()
    try:
        _, token = server.new_account()
        blocker = hold_write_lock(str(tmp_path / "rdevents.db"))
        emails = [f"q{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(12)]
        with ThreadPoolExecutor(len(emails)) as pool, server.client(token) as client:
            futures = {pool.submit(client.send_event, conversion(e)): e for e in emails}
            # The writer waits for the lock with its first group, two more jobs wait in the
            # queue, and every other request is refused at once.
            refused, waiting = wait(futures, timeout=2)
            assert refused and waiting
            for future in refused:
                response = future.result()
                assert response.status_code == 503, response.text
                assert response.json() == {"errors": {
                    "error_type": "SERVICE_UNAVAILABLE",
                    "error_message": "Service temporarily unavailable: too many writes are "
                                     "waiting."}}
                assert response.headers["retry-after"] == "1"
            blocker.execute("ROLLBACK")
            blocker.close()
            for future in waiting:
                assert future.result(timeout=30).status_code == 200
            for future, email in futures.items():
                expected = 200 if future in waiting else 404
                assert client.contact(email).status_code == expected, email
    finally:
        server.stop()


def test_sigterm_commits_what_is_in_flight_then_exits_0(tmp_path):
    process = ServerProcess(tmp_path).start()
    try:
        blocker = hold_write_lock(str(process.database))
        emails = [f"t{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(20)]
        results: dict[str, int] = {}

        def send(email: str) -> None:
            response = httpx.post(f"{process.url}/platform/events", json=conversion(email),
                                  headers=process.headers, timeout=60)
            results[email] = response.status_code

        threads = [threading.Thread(target=send, args=(e,)) for e in emails]
        for thread in threads:
            thread.start()
        process.wait_for_pending_requests(len(emails))
        process.process.send_signal(signal.SIGTERM)
        blocker.execute("ROLLBACK")
        blocker.close()
        for thread in threads:
            thread.join(60)
        assert process.process.wait(60) == 0
        assert results == {e: 200 for e in emails}
    finally:
        process.stop()
    process.start()
    try:
        with httpx.Client(base_url=process.url, headers=process.headers) as client:
            for email in emails:
                assert client.get(f"/platform/contacts/email:{email}").status_code == 200
    finally:
        process.stop()
