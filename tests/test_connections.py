"""Connections are bounded: silent connections never keep a new client out, a request head or
body that arrives too slowly loses its connection, and none of it fills the log. Each test runs
`rdevents serve` in a process whose open files are limited, so that the limit is reached cheaply;
every client connects to loopback only."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import BACKENDS, free_port
from serverproc import rdevents

SERVER_OPEN_FILES = 256  # with the reserve for its own files, about 190 client connections
SILENT_CONNECTIONS = 2_000
HEAD_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_OPEN_FILES, SERVER_OPEN_FILES))


class LimitedServer:
    def __init__(self, workdir: Path, env: dict[str, str], head_timeout: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        account = f"limited-{uuid.uuid4().hex[:8]}"
        rdevents("accounts", "create", account, cwd=workdir, env=env)
        self.token = rdevents("tokens", "create", "--account", account, cwd=workdir, env=env)
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rdevents", "serve", "--port", str(self.port),
                 "--log-level", "warning", "--head-timeout", str(head_timeout),
                 "--body-timeout", str(BODY_TIMEOUT)],
                cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=limit_open_files)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def stop(self) -> str:
        """Stop the server; return what it logged (at warning level and above)."""
        self.process.terminate()
        self.process.wait(30)
        return self.log.read_text()


@pytest.fixture(params=BACKENDS)
def start_limited(request, tmp_path) -> Iterator[Callable[..., LimitedServer]]:
    """Starts `rdevents serve` with few open files, on each backend."""
    env = dict(os.environ)
    if request.param == "postgresql":
        env["RDEVENTS_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    started: list[LimitedServer] = []

    def start(head_timeout: float = HEAD_TIMEOUT) -> LimitedServer:
        started.append(LimitedServer(tmp_path, env, head_timeout))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(30)


def assert_quiet(log: str) -> None:
    for word in ("Traceback", "ERROR", "WARNING", "Exception"):
        assert word not in log, log[-2_000:]


def closed_by_peer(sock: socket.socket, deadline: float, send: bytes = b"") -> float | None:
    """Seconds until the server closes `sock`, sending `send` every second meanwhile; None if
    it is still open at `deadline` (a monotonic time)."""
    started = time.monotonic()
    sock.settimeout(1.0)
    while time.monotonic() < deadline:
        try:
            if send:
                sock.sendall(send)
            if sock.recv(65_536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset, or a send after the close
            return time.monotonic() - started
    return None


def test_silent_connections_do_not_keep_a_new_client_out(start_limited):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = SILENT_CONNECTIONS + 200
    if hard < needed:
        pytest.skip(f"this process may open {hard} files, the test needs {needed}")
    # A head timeout far longer than the test: only the cap on connections can make room.
    limited = start_limited(head_timeout=60)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    silent: list[socket.socket] = []
    try:
        for _ in range(SILENT_CONNECTIONS):
            silent.append(limited.connect())
        started = time.monotonic()
        response = httpx.get(f"{limited.url}/healthz", timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 5
        # Those idle longest were closed to make room.
        assert closed_by_peer(silent[0], time.monotonic() + 5) is not None
    finally:
        for sock in silent:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert_quiet(limited.stop())


def test_a_slowloris_head_is_cut_off_after_the_head_timeout(start_limited):
    limited = start_limited()
    with limited.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        waited = closed_by_peer(sock, time.monotonic() + HEAD_TIMEOUT + 5, send=b"a")
    assert waited is not None and HEAD_TIMEOUT - 0.5 < waited < HEAD_TIMEOUT + 1.5, waited
    assert httpx.get(f"{limited.url}/healthz", timeout=5).status_code == 200
    assert_quiet(limited.stop())


def test_an_idle_connection_is_closed_after_the_head_timeout(start_limited):
    limited = start_limited()
    with limited.connect() as sock:
        waited = closed_by_peer(sock, time.monotonic() + HEAD_TIMEOUT + 5)
    assert waited is not None and HEAD_TIMEOUT - 0.5 < waited < HEAD_TIMEOUT + 1.5, waited
    assert_quiet(limited.stop())


def test_a_slow_body_is_cut_off_after_the_body_timeout_and_nothing_is_stored(start_limited):
    limited = start_limited()
    head = (f"POST /platform/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {limited.token}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{").encode()
    with limited.connect() as sock:
        sock.sendall(head)
        waited = closed_by_peer(sock, time.monotonic() + BODY_TIMEOUT + 5, send=b" ")
    assert waited is not None and BODY_TIMEOUT - 0.5 < waited < BODY_TIMEOUT + 1.5, waited
    with httpx.Client(base_url=limited.url, timeout=10,
                      headers={"Authorization": f"Bearer {limited.token}"}) as api:
        # A connection used well is kept between requests.
        assert api.get("/platform/contacts").json()["contacts"] == []
        assert api.get("/platform/contacts").status_code == 200
    assert_quiet(limited.stop())


def test_a_request_head_past_64_kib_is_refused_with_431(start_limited):
    limited = start_limited()
    header = b"X-Big: " + b"a" * 60_000 + b"\r\n"
    with limited.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header + b"\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200 OK")
    with limited.connect() as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * 2)
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large"), head
    assert orjson.loads(body) == {"errors": {
        "error_type": "REQUEST_HEADER_FIELDS_TOO_LARGE",
        "error_message": "The request line and headers must not exceed 65536 bytes."}}
    assert_quiet(limited.stop())
