"""The NUL character (U+0000) in a request's path, query string or form fields is refused with
one 400, before any route sees it: PostgreSQL can neither store nor compare text holding it, and
no identifier, e-mail, token or filter value of the API holds one."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..validation import NUL
from .errors import ApiError

MESSAGE = "The NUL character (%00) is not allowed in the path, the query string or form fields."


def nul_error() -> ApiError:
    return ApiError(400, "BAD_REQUEST", MESSAGE)


def refuse_nul(fields: dict[str, Any]) -> None:
    """400 when a field's name or text value holds NUL."""
    if any(NUL in name or isinstance(value, str) and NUL in value
           for name, value in fields.items()):
        raise nul_error()


class RefuseNul:
    """Middleware: the 400 for a NUL in the (decoded) path or the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (NUL in scope["path"]
                                        or b"%00" in scope["query_string"]):
            await nul_error().response()(scope, receive, send)
            return
        await self.app(scope, receive, send)
