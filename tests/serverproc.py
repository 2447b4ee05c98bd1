"""`rdevents serve` as a real subprocess, for tests that kill, stop and restart it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from conftest import LOOPBACK, free_port
from waiting import wait_until

# `serve` options for a server whose webhooks go to the tests' receivers.
TO_LOOPBACK_RECEIVERS = ("--webhook-allowed-networks", ",".join(LOOPBACK))


def rdevents(*args: str, cwd: Path, env: dict | None = None) -> str:
    return subprocess.run([sys.executable, "-m", "rdevents", *args], cwd=cwd, check=True,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}).stdout.strip()


class ServerProcess:
    """A server under `workdir` on `database_url` (default: a SQLite file in workdir), with an
    account of its own; start() may be called again after a stop or a kill."""

    def __init__(self, workdir: Path, database_url: str | None = None,
                 headers: dict | None = None, serve_args: tuple[str, ...] = (),
                 stderr: Path | None = None) -> None:
        self.workdir = workdir
        self.serve_args = serve_args
        self.stderr = stderr  # where the server's log goes (default: nowhere)
        self.database = workdir / "data" / "rdevents.db"
        self.env = {"RDEVENTS_DATABASE_URL": database_url} if database_url else {}
        self.account = account = f"test-{uuid.uuid4().hex[:8]}"
        if headers is None:
            rdevents("accounts", "create", account, cwd=workdir, env=self.env)
            token = rdevents("tokens", "create", "--account", account, cwd=workdir, env=self.env)
            headers = {"Authorization": f"Bearer {token}"}
        self.headers = headers
        self.process: subprocess.Popen | None = None
        self.url = ""

    def sibling(self) -> ServerProcess:
        """Another server on the same database, acting for the same account."""
        other = ServerProcess(self.workdir, self.env.get("RDEVENTS_DATABASE_URL"), self.headers,
                              self.serve_args)
        other.account = self.account
        return other

    def start(self) -> ServerProcess:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(self.stderr, "ab") if self.stderr else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rdevents", "serve", "--port", str(port), "--log-level",
             "warning", *self.serve_args], cwd=self.workdir, env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True)  # a group of its own: its workers die with it (kill9, stop)
        if self.stderr:
            log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=30, verify=False)

    def wait_for_pending_requests(self, count: int, timeout: float = 30) -> None:
        """Wait until `count` write jobs are queued or being committed."""
        wait_until(lambda: httpx.get(f"{self.url}/healthz", timeout=5).json()["pending_writes"]
                   >= count, timeout, interval=0.02)

    def kill9(self) -> None:
        """Kill every process of the server at once (with --workers N, the workers too, which
        a SIGKILL of the supervisor alone would leave serving)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill9()

    def terminate(self) -> None:
        """Stop it as an operator does (SIGTERM), and wait until it has exited."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


@contextlib.contextmanager
def two_servers(workdir: Path, database_url: str | None = None
                ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two servers on one database (default: a SQLite file in workdir), for one account."""
    first = ServerProcess(workdir, database_url)
    second = first.sibling()
    first.start()
    second.start()
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
