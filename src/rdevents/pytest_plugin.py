"""The pytest plugin of rdevents (entry point `pytest11`, name `rdevents`: installing rdevents is
all it takes): a real rdevents sandbox for the tests of an RD Station integration.

    def test_signup_reaches_rd_station(rdevents):
        signup("ana@example.com", rd_url=rdevents.url, rd_token=rdevents.token)
        assert rdevents.contact("ana@example.com")["tags"] == ["newsletter"]

- `rdevents_server` (session): `rdevents serve --sandbox` in a process of its own, on a free
  port of 127.0.0.1, with a temporary SQLite database and a token of the account `default`.
- `rdevents` (each test): the same server, with the account reset before the test.

Both are a `Sandbox`: `.url`, `.token`, `.reset()`, `.fault(kind, **options)`, and what a test
asserts on (`.contact(email)`, `.events(email)`). docs/testing.md tells more.

Only the standard library is used here: the plugin is loaded by every pytest run of an
environment holding rdevents.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

START_SECONDS = 30.0
STOP_SECONDS = 30.0
EVENTS_PAGE_SIZE = 100  # the most a page of a contact's events holds
# Straight to the server, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SandboxError(Exception):
    """The sandbox refused what a test asked, or did not start."""


class Sandbox:
    """An rdevents sandbox at `url`, for the account that `token` belongs to."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    def call(self, method: str, path: str, document: Any = None) -> tuple[int, Any]:
        """Send a request as the account; the answer's status and JSON body (None if empty)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if document is not None:
            data = json.dumps(document).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with _OPENER.open(request, timeout=30) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as answer:
            status, body = answer.code, answer.read()
        return status, json.loads(body) if body else None

    def _expect(self, status: int, method: str, path: str, document: Any = None) -> Any:
        found, body = self.call(method, path, document)
        if found != status:
            raise SandboxError(f"{method} {path} answered {found}: {body}")
        return body

    def reset(self) -> None:
        """Erase the account's contacts, events, fields, webhooks, request log, rate counters
        and faults; its token stays."""
        self._expect(204, "POST", "/rdevents/v1/sandbox/reset")

    def fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Have the next requests fail as RD Station does: `kind` is one of rate_limit,
        lead_rate_limit, expired_token, invalid_token, server_error, gateway_timeout_html,
        latency; options are `count` (1), `path` (a prefix; every RD route by default) and
        `latency_ms` (0). Returns the fault as stored."""
        fault: dict[str, Any] = self._expect(201, "POST", "/rdevents/v1/sandbox/faults",
                                             {"fault": kind, **options})
        return fault

    def faults(self) -> list[dict[str, Any]]:
        """The faults not yet spent, in the order they answer, with what `remaining` of each."""
        listed: list[dict[str, Any]] = self._expect(200, "GET",
                                                    "/rdevents/v1/sandbox/faults")["faults"]
        return listed

    def clear_faults(self) -> None:
        self._expect(204, "DELETE", "/rdevents/v1/sandbox/faults")

    def contact(self, email: str) -> dict[str, Any] | None:
        """The contact stored for an e-mail, as RD's contacts API shows it; None if none."""
        status, body = self.call("GET", f"/platform/contacts/email:{quote(email)}")
        if status == 404:
            return None
        if status != 200:
            raise SandboxError(f"reading the contact {email} answered {status}: {body}")
        contact: dict[str, Any] = body
        return contact

    def events(self, email: str) -> list[dict[str, Any]]:
        """The events stored for an e-mail's contact, oldest first (none without a contact)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            status, body = self.call(
                "GET", f"/platform/contacts/email:{quote(email)}/events?order=created_at:asc"
                f"&page={page}&page_size={EVENTS_PAGE_SIZE}")
            if status == 404:
                return found
            if status != 200:
                raise SandboxError(f"reading the events of {email} answered {status}: {body}")
            found += body
            if len(body) < EVENTS_PAGE_SIZE:
                return found
            page += 1


class SandboxServer(Sandbox):
    """`rdevents serve --sandbox` in a process of its own, storing under `directory`."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        super().__init__(f"http://127.0.0.1:{port}", "rdv_" + secrets.token_urlsafe(32))
        self.log = directory / "rdevents.log"
        # Not the environment's settings: a sandbox never uses another database, say.
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith("RDEVENTS_")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rdevents", "serve", "--sandbox",
                 "--bootstrap-token", self.token, "--port", str(port),
                 "--database", f"sqlite:///{directory / 'rdevents.db'}",
                 "--log-level", "warning"],
                cwd=directory, env=environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                with _OPENER.open(self.url + "/healthz", timeout=1):
                    return
            except OSError:  # URLError included: not listening yet
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SandboxError("rdevents did not start: "
                                       + self.log.read_text(errors="replace")[-2000:]) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server as an operator does (SIGTERM), or kill it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def rdevents_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """An rdevents sandbox for the whole session (for each xdist worker)."""
    server = SandboxServer(tmp_path_factory.mktemp("rdevents"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rdevents(rdevents_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, its account reset: each test starts with no contact, no event,
    no fault."""
    rdevents_server.reset()
    return rdevents_server
