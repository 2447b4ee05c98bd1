"""Reading a request body: media type, size limit, JSON syntax, form fields."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from .errors import ApiError
from .media import APPLICATION_JSON, request_media_type
from .nul import refuse_nul
from .observe import BODY


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "REQUEST_ENTITY_TOO_LARGE",
                    f"The request body must not exceed {limit} bytes.")


async def read_body(request: Request) -> bytes:
    """The raw body, or 413 past the configured limit (read no further than the limit)."""
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    request.scope[BODY] = b""  # begun: the request log must not read what is left of it
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = request.scope[BODY] = b"".join(chunks)  # for the request log
    return body


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a form-encoded body (the last of a repeated name), or 400 for a NUL."""
    raw = await read_body(request)
    fields = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    refuse_nul(fields)
    return fields


async def read_json(request: Request) -> Any:
    """The decoded body, or the RD error for a wrong media type, an oversized or bad body."""
    if request_media_type(request) != APPLICATION_JSON:
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       "The payload is in a format not supported by this method on the target "
                       "resource: send it as JSON, with the header Content-Type: "
                       "application/json.")
    body = await read_body(request)
    try:
        return decode_json(body)
    except NOT_JSON:
        raise ApiError(400, "BAD_REQUEST",
                       "Could not parse the body of the request according to the provided "
                       "Content-Type.") from None


# What decode_json raises for text that is not JSON (orjson's errors subclass these).
NOT_JSON = (ValueError, TypeError, RecursionError)


def decode_json(body: bytes) -> Any:
    """JSON text decoded as every route reads it: one of NOT_JSON when it is not JSON, ApiError
    for a number it would have to change."""
    if _LONG_NUMBER in body.translate(_DIGITS_AS_ZERO):
        return _parse_exactly(body)
    return orjson.loads(body)


# orjson turns integers beyond 64 bits into floats, silently changing them. A body with a long
# run of digits (rare) is parsed by the standard library instead, and refused if it really holds
# such a number, rather than stored altered.
_DIGITS_AS_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19  # 19 digits in a row, after the translation above
_INT64 = range(-(2**63), 2**64)


def _parse_exactly(body: bytes) -> Any:
    def parse_int(text: str) -> int:
        value = int(text)
        if value not in _INT64:
            raise ApiError(400, "BAD_REQUEST",
                           f"The number {text} is too large: integers must fit in 64 bits.")
        return value

    def parse_float(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ApiError(400, "BAD_REQUEST", f"The number {text} is too large.")
        return value

    parsed = json.loads(body.decode("utf-8"), parse_int=parse_int, parse_float=parse_float,
                        parse_constant=_reject_constant)
    orjson.dumps(parsed)  # what orjson could not store (e.g. lone surrogates) fails here
    return parsed


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def bad_shape(expected: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", f"The body of the request must be a JSON {expected}.")
