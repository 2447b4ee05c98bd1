"""A stand-in upstream for relay tests: a real HTTP server that speaks RD's events routes and its
/auth/token, records every request, and answers as told: scripted replies (RD's two 429s, its
HTML 504, refusals), a function of each request, or slowly."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from conftest import free_port
from waiting import wait_until

# RD's gateway page when it is down (RD's Ruby client, issue #47).
RD_DOWN_PAGE = (b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title> RD Station fora do '
                b"ar </title></head><body><h1>Estamos com problemas</h1></body></html>")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, document: Any, **headers: str) -> Reply:
    return Reply(status, orjson.dumps(document),
                 {"Content-Type": "application/json", **headers})


def gateway_429(seconds: int = 30) -> Reply:
    """RD's gateway refusing for the account's per-minute limit."""
    return json_reply(429, {"message": "API rate limit exceeded"}, **{
        "RateLimit-Limit-Quotas": "120", "Retry-After-Quotas": str(seconds),
        "Retry-After": str(seconds)})


def lead_429(email: str, seconds: int = 30) -> Reply:
    """RD's lead limiter refusing a contact past its events of the day."""
    return json_reply(429, {"error": "'lead_limiter' rate limit exceeded for 86400 second(s) "
                                     f"period for key '{email}'",
                            "max": 120, "usage": 121, "remaining_time": seconds})


def html_504() -> Reply:
    return Reply(504, RD_DOWN_PAGE, {"Content-Type": "text/html"})


UNAUTHORIZED = json_reply(401, {"errors": {"error_type": "UNAUTHORIZED",
                                           "error_message": "Invalid token."}})
INVALID_REFRESH = json_reply(401, {"errors": {
    "error_type": "INVALID_REFRESH_TOKEN",
    "error_message": "The provided refresh token is invalid or was revoked."}})


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def events(self) -> list[dict[str, Any]]:
        """The events the request carried, in order."""
        return self.body if isinstance(self.body, list) else [self.body]

    @property
    def emails(self) -> list[str]:
        return [event["payload"]["email"] for event in self.events]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


class UpstreamStub:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Request] = []  # events requests, in arrival order
        self.token_requests: list[Request] = []
        self.answered: list[tuple[Request, int]] = []  # each events request and its status
        self.arrivals = 0  # events requests arrived, answered or not yet
        self.replies: list[Reply] = []  # answers to the next events requests, in order
        self.token_replies: list[Reply] = []  # answers to the next /auth/token requests
        # Answers a request itself (None: the next scripted reply, or success).
        self.responder: Callable[[Request], Reply | None] | None = None
        self.accepted_tokens: set[str] | None = None  # None: any Bearer token is good
        self.delay = 0.0  # seconds before answering an events request (or until released)
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                  orjson.loads(raw) if raw else None)
                reply = stub._answer(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, request: Request) -> Reply:
        if request.path == "/auth/token":
            with self._lock:
                self.token_requests.append(request)
                if self.token_replies:
                    return self.token_replies.pop(0)
                token = f"access-{next(self._tokens)}"
                if self.accepted_tokens is not None:
                    self.accepted_tokens.add(token)
            return json_reply(200, {"access_token": token, "expires_in": 86400,
                                    "refresh_token": request.body["refresh_token"]})
        with self._lock:
            self.arrivals += 1
        if self.delay:
            self._released.wait(self.delay)
        with self._lock:
            self.requests.append(request)
            reply = self._reply(request)
            self.answered.append((request, reply.status))
        return reply

    def _reply(self, request: Request) -> Reply:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.accepted_tokens is not None and bearer not in self.accepted_tokens:
            return UNAUTHORIZED
        reply = self.responder(request) if self.responder else None
        if reply is None and self.replies:
            reply = self.replies.pop(0)
        if reply is not None:
            return reply
        if request.path == "/platform/events/batch":
            return json_reply(200, {"event_batch_uuid": "b", "events": [
                {"event_uuid": "e"} for _ in request.events]})
        return json_reply(200, {"event_uuid": "e"})

    @property
    def accepted(self) -> list[str]:
        """The e-mails of the events it answered 2xx, in the order they arrived."""
        with self._lock:
            return [email for request, status in self.answered if 200 <= status < 300
                    for email in request.emails]

    def wait_for_accepted(self, count: int, timeout: float = 15) -> list[str]:
        """The e-mails of the events it accepted, once there are `count`."""
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(
            self.accepted), timeout, 0.02)

    def start(self) -> UpstreamStub:
        self._thread.start()
        return self

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def wait_for_requests(self, count: int, timeout: float = 15) -> list[Request]:
        """The first `count` events requests, once they have arrived."""
        wait_until(lambda: len(self.requests) >= count, timeout, 0.02)
        return self.requests[:count]
