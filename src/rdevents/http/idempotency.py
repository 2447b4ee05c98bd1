"""The `Idempotency-Key` header of the write routes: a request sent again with the same key
(per account) and the same body is answered what the first one was, and stores nothing again.

What a key keeps, when, and for how long is told in docs/api.md#idempotency-keys; the writer
keeps a key in the transaction that stores the request's events (process/stage.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request

from ..process import RequestKey
from .errors import ApiError

HEADER = "idempotency-key"
MAX_LENGTH = 255


def request_key(request: Request, body: Any) -> RequestKey | None:
    """The request's key, if it sent one, with the fingerprint of its route and body (as a JSON
    value: the order of an object's keys and the whitespace do not count)."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(400, "INVALID_FORMAT", f"The Idempotency-Key header must be 1 to "
                                              f"{MAX_LENGTH} visible ASCII characters.")
    digest = hashlib.sha256(request.scope["path"].encode())
    digest.update(b"\n")
    digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return RequestKey(key, digest.hexdigest())
