"""Reading a JSON request body: media type, size limit, syntax."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from .errors import ApiError


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json(request: Request) -> Any:
    """The decoded body, or the RD error for a wrong media type, an oversized or bad body."""
    if _media_type(request) != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       "The payload is in a format not supported by this method on the target "
                       "resource.")
    limit = request.app.state.settings.max_body_bytes
    too_large = ApiError(413, "REQUEST_ENTITY_TOO_LARGE",
                         f"The request body must not exceed {limit} bytes.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise ApiError(400, "BAD_REQUEST",
                       "Could not parse the body of the request according to the provided "
                       "Content-Type.") from None


def bad_shape(expected: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", f"The body of the request must be a JSON {expected}.")
