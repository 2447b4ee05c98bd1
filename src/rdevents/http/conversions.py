"""POST /platform/conversions?api_key=KEY: CONVERSION events authenticated by an API key.

The one route callable from a browser, so the only one that answers CORS (preflight included),
on every response, errors too.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ingest import InvalidEvents, ingest_event
from ..validation import option_error
from .auth import authenticate_api_key
from .body import bad_shape, read_json
from .events import accepted
from .idempotency import request_key

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Idempotency-Key",
    "Access-Control-Expose-Headers": "Idempotent-Replayed",
    "Access-Control-Max-Age": "86400",
}
_RAW_CORS_HEADERS = [(k.lower().encode(), v.encode()) for k, v in CORS_HEADERS.items()]


class CorsOnConversions:
    """Middleware: the CORS headers on every response of /platform/conversions (405s and
    errors included), and on no other route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_RAW_CORS_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def post_conversion(request: Request) -> Response:
    if request.method == "OPTIONS":  # the browser's preflight
        return Response(status_code=204)
    account_id = await authenticate_api_key(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_shape("object with event_type, event_family and payload")
    key = request_key(request, body)
    event_type = body.get("event_type")
    if isinstance(event_type, str) and event_type != "CONVERSION":
        raise InvalidEvents([option_error(("CONVERSION",), "$.body.event_type")])
    event_uuid = await ingest_event(request.app.state.store, account_id, body,
                                    rate_limited=request.app.state.settings.rate_limits,
                                    key=key)
    return accepted((event_uuid,), None)


PATH = "/platform/conversions"
routes = [Route(PATH, post_conversion, methods=["POST", "OPTIONS"])]
