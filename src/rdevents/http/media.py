"""Media types, as a Content-Type header names a body's or an Accept header names what a client
takes: `type/subtype; name=value; ...` (RFC 9110 §8.3.1). The one place they are read."""

from __future__ import annotations

from starlette.requests import Request

APPLICATION_JSON = "application/json"


def media_type(value: str | None) -> str:
    """The media type of a Content-Type value: lower-cased, without its parameters and the
    whitespace around it; "" for no header (or an empty one)."""
    if value is None:
        return ""
    return value.split(";", 1)[0].strip().lower()


def media_type_and_parameters(value: str) -> tuple[str, dict[str, str]]:
    """The media type of `value` (as `media_type`) and its parameters: names lower-cased, names
    and values without the whitespace around them; of a name given twice, the last value."""
    head, *parameters = value.split(";")
    named = {}
    for parameter in parameters:
        name, _, parameter_value = parameter.partition("=")
        named[name.strip().lower()] = parameter_value.strip()
    return media_type(head), named


def request_media_type(request: Request) -> str:
    """The media type of a request's body, as its Content-Type header says."""
    return media_type(request.headers.get("content-type"))
