"""One route for a path that several handlers serve, one per method, so that a wrong method
gets a 405 whose Allow header lists them all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


def by_method(path: str, **handlers: Handler) -> Route:
    table = dict(handlers)
    if "GET" in table:  # Starlette lets HEAD through wherever GET is; uvicorn drops the body
        table["HEAD"] = table["GET"]

    async def dispatch(request: Request) -> Response:
        return await table[request.method](request)

    dispatch.__name__ = "_".join(h.__name__ for h in handlers.values())
    return Route(path, dispatch, methods=list(handlers))
