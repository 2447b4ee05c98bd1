"""RD's OAuth endpoints: /auth/token (and /oauth2/token), /auth/revoke. The consent page,
/auth/dialog, is consent.py."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import oauth
from ..tokens import hash_secret
from .body import read_body, read_form
from .errors import JSON, ApiError
from .faults import answer_fault
from .media import APPLICATION_JSON, request_media_type
from .nul import refuse_nul

# RFC 6749 §5.1: an answer that may hold tokens is never kept by a cache, errors included.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _denied(message: str = "Wrong credentials provided.") -> ApiError:
    return ApiError(401, "ACCESS_DENIED", message)


async def _form_or_json(request: Request) -> dict[str, Any]:
    """The body's fields, JSON or form-encoded (RD clients send both); query fields too. A JSON
    field that is not a string counts as absent."""
    fields: dict[str, Any] = dict(request.query_params)
    if request_media_type(request) == APPLICATION_JSON:
        raw = await read_body(request)
        try:
            parsed = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ApiError(400, "BAD_REQUEST", "Could not parse the body of the request "
                                               "according to the provided Content-Type.")
        texts = {name: value for name, value in parsed.items() if isinstance(value, str)}
        refuse_nul(texts)
        fields.update(texts)
    else:
        fields.update(await read_form(request))
    return fields


def _missing(*names: str) -> JSON:
    return JSON({"errors": [{"error_type": "CANNOT_BE_NULL", "error_message": "Cannot be null.",
                             "path": f"body.{name}"} for name in names]}, 400)


def _uncached(endpoint: Callable[[Request], Awaitable[Response]]
              ) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(endpoint)
    async def uncached(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except ApiError as error:
            response = error.response()
        response.headers.update(NO_STORE)
        return response

    return uncached


@_uncached
async def token(request: Request) -> JSON:
    fields = await _form_or_json(request)
    missing = [name for name in ("client_id", "client_secret") if not fields.get(name)]
    if not fields.get("code") and not fields.get("refresh_token"):
        missing.append("code")
    if missing:
        return _missing(*missing)
    store = request.app.state.store
    app = await store.find_app(str(fields["client_id"]))
    if app is None or not oauth.secret_matches(str(fields["client_secret"]), app):
        raise _denied()
    await answer_fault(request, app.account_id)
    if fields.get("code"):
        try:
            grant = await oauth.exchange_code(store, app, str(fields["code"]))
        except oauth.CodeReused as reused:
            _forget_made_from(request, reused.refresh_token_id)
            grant = None
        if grant is None:
            raise ApiError(401, "EXPIRED_CODE_GRANT", "The authorization code grant has expired.")
    else:
        grant = await oauth.refresh(store, app, str(fields["refresh_token"]))
        if grant is None:
            raise ApiError(401, "INVALID_REFRESH_TOKEN",
                           "The provided refresh token is invalid or was revoked.")
    return JSON(grant.body())


async def revoke(request: Request) -> JSON:
    fields = await _form_or_json(request)
    if not fields.get("token"):
        return _missing("token")
    token = str(fields["token"])
    refresh_id = await oauth.revoke(request.app.state.store, token,
                                    fields.get("token_type_hint"))
    # This process forgets at once what it revoked, and nothing else: a token it does not know
    # is in no cache.
    request.app.state.tokens.discard(hash_secret(token))
    if refresh_id is not None:
        _forget_made_from(request, refresh_id)
    return JSON({})


def _forget_made_from(request: Request, refresh_token_id: int) -> None:
    """This process stops at once trusting the access tokens of a refresh token it revoked."""
    request.app.state.tokens.discard_where(
        lambda record: record.refresh_token_id == refresh_token_id)


routes = [
    Route("/auth/token", token, methods=["POST"]),
    Route("/oauth2/token", token, methods=["POST"]),
    Route("/auth/revoke", revoke, methods=["POST"]),
]
