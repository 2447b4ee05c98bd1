"""The access log (`serve --access-log`): a line for every request with its request id, in the text
and JSON formats; off by default. And the request id in the JSON log lines written while a
request is answered."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest

from conftest import conversion
from rdevents.logs import REQUEST_ID, JsonFormatter, RequestIdFilter
from receiver import wait_until
from serverproc import ServerProcess


def serve_with_log(tmp_path, *serve_args: str) -> ServerProcess:
    return ServerProcess(tmp_path, serve_args=serve_args, stderr=tmp_path / "server.log").start()


def log_lines(tmp_path, wanted: str) -> list[str]:
    """The server's log lines, once one holds `wanted`."""
    def found() -> list[str] | None:
        lines = (tmp_path / "server.log").read_text().splitlines()
        return lines if any(wanted in line for line in lines) else None

    return wait_until(found, timeout=10)


def test_json_access_lines(tmp_path):
    server = serve_with_log(tmp_path, "--access-log", "--log-format", "json")
    try:
        with server.client() as api:
            accepted = api.post("/platform/events", json=conversion("ana@example.com"),
                                headers={"X-Request-Id": "access-json-1"})
            rejected = api.post("/platform/conversions?api_key=rdk_hidden&x=1", json={})
        assert (accepted.status_code, rejected.status_code) == (200, 401)
        generated = rejected.headers["x-request-id"]
        lines = [json.loads(line) for line in log_lines(tmp_path, generated)
                 if line.startswith("{")]
    finally:
        server.stop()
    access = {line["request_id"]: line for line in lines if line["logger"] == "rdevents.access"}
    first, second = access["access-json-1"], access[generated]
    assert first["level"] == "info"
    assert (first["method"], first["path"], first["query"], first["status"]) == (
        "POST", "/platform/events", "", 200)
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] > 0
    assert first["client"].startswith("127.0.0.1:")
    assert first["message"] == (f'{first["client"]} - "POST /platform/events HTTP/1.1" 200 '
                                f'{first["duration_ms"]:.1f}ms request_id=access-json-1')
    assert (second["path"], second["query"], second["status"]) == (
        "/platform/conversions", "api_key=[redacted]&x=1", 401)
    assert "rdk_hidden" not in (tmp_path / "server.log").read_text()


def test_text_access_lines(tmp_path):
    server = serve_with_log(tmp_path, "--access-log")
    try:
        with server.client() as api:
            api.get(f"/platform/events/{uuid.uuid4()}", headers={"X-Request-Id": "access-txt"})
        (line,) = [line for line in log_lines(tmp_path, "request_id=access-txt")
                   if "request_id=access-txt" in line]
    finally:
        server.stop()
    assert line.startswith("INFO:")
    assert '"GET /platform/events/' in line and ' HTTP/1.1" 404 ' in line
    assert line.endswith("ms request_id=access-txt")


def test_no_access_lines_by_default(tmp_path):
    server = serve_with_log(tmp_path, "--log-format", "json")
    try:
        with server.client() as api:
            assert api.post("/platform/events", json={}).status_code == 400
        with httpx.Client() as http:  # a last request, then the log is read
            http.get(f"{server.url}/healthz")
    finally:
        server.stop()
    lines = (tmp_path / "server.log").read_text().splitlines()
    assert not any("rdevents.access" in line for line in lines)


@pytest.mark.parametrize("request_id", [None, "req-42"])
def test_json_log_lines_carry_the_request_id_of_the_request_being_answered(request_id):
    record = logging.LogRecord("rdevents.store", logging.WARNING, __file__, 1,
                               "store unavailable: %s", ("gone",), None)
    token = REQUEST_ID.set(request_id)
    try:
        assert RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "store unavailable: gone"
    assert line.get("request_id") == request_id
