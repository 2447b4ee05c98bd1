"""Media types as http/media.py reads them from Content-Type and Accept headers."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from rdevents.http.media import (
    APPLICATION_JSON,
    media_type,
    media_type_and_parameters,
    request_media_type,
)


@pytest.mark.parametrize("value, expected", [
    ("application/json", "application/json"),
    ("application/json; charset=utf-8", "application/json"),
    ("application/json;charset=UTF-8;boundary=x", "application/json"),
    ("Application/JSON", "application/json"),
    ("  application/json  ; charset=utf-8", "application/json"),
    ("\tapplication/json\t", "application/json"),
    ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
    ("text/plain", "text/plain"),
    ("application/json, text/plain", "application/json, text/plain"),  # one type, not a list
    (";charset=utf-8", ""),
    ("", ""),
    ("   ", ""),
    (None, ""),
])
def test_media_type(value: str | None, expected: str) -> None:
    assert media_type(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("text/html", ("text/html", {})),
    ("text/html;q=0.5", ("text/html", {"q": "0.5"})),
    (" TEXT/HTML ; Q = 0.5 ; Level=1", ("text/html", {"q": "0.5", "level": "1"})),
    ("text/html;q=0.5;q=0.9", ("text/html", {"q": "0.9"})),  # the last of a repeated name
    ("text/html;q", ("text/html", {"q": ""})),
    ("text/html;q=", ("text/html", {"q": ""})),
    ('text/plain;charset="utf-8"', ("text/plain", {"charset": '"utf-8"'})),  # quotes kept
    ("*/*", ("*/*", {})),
    ("", ("", {})),
])
def test_media_type_and_parameters(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert media_type_and_parameters(value) == expected


def _request(*headers: tuple[bytes, bytes]) -> Request:
    """A request as a server gives it (ASGI: header names in lower case)."""
    return Request({"type": "http", "method": "POST", "path": "/", "headers": list(headers)})


def test_a_request_media_type_is_its_content_type_header() -> None:
    assert request_media_type(_request((b"content-type", b"Application/JSON; charset=utf-8"))) \
        == APPLICATION_JSON
    assert request_media_type(_request((b"content-type", b" text/plain "))) == "text/plain"


def test_a_request_without_content_type_has_no_media_type() -> None:
    assert request_media_type(_request()) == ""
    assert request_media_type(_request((b"content-type", b""))) == ""
