"""A real HTTP server that receives webhooks, for tests: it records each request and answers
as told (fail the next N, answer slowly or hang until released, refuse validation requests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from conftest import free_port
from waiting import wait_until


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return orjson.loads(self.body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a sender opens many connections at once
    daemon_threads = True


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.deliveries: list[Received] = []  # webhook deliveries, in arrival order
        self.validations: list[Received] = []  # the checks made when subscribing
        self.fail_next = 0  # answer 500 to this many deliveries
        self.failing = False  # answer 500 to every delivery
        self.delay = 0.0  # seconds to wait before answering a delivery (or until released)
        self.validation_status = 200
        self.most_at_once = 0  # the most deliveries it was answering at the same time
        self._at_once = 0
        self._released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                    body)
                status = receiver._answer(received)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, received: Received) -> int:
        if received.headers.get("x-rdevents-validation"):
            self.validations.append(received)
            return self.validation_status
        with self._lock:
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
        if self.delay:
            self._released.wait(self.delay)
        with self._lock:
            self._at_once -= 1
            self.deliveries.append(received)
            if self.failing:
                return 500
            if self.fail_next:
                self.fail_next -= 1
                return 500
        return 200

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def release(self) -> None:
        """Answer the deliveries it is holding back now, and the next ones at once."""
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        """The first `count` deliveries, once they have arrived."""
        try:
            wait_until(lambda: len(self.deliveries) >= count, timeout, interval=0.02)
        except TimeoutError:
            raise TimeoutError(f"{len(self.deliveries)} of {count} deliveries arrived") from None
        return self.deliveries[:count]
