"""RD's OAuth endpoints: /auth/dialog (consent), /auth/token (and /oauth2/token), /auth/revoke."""

from __future__ import annotations

import asyncio
import html
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import oauth
from ..store import App
from .body import read_body, read_form
from .errors import JSON, ApiError
from .nul import refuse_nul
from .routing import by_method

_BAD_REDIRECT = "O parâmetro redirect_uri não contém um valor válido."


def _denied(message: str = "Wrong credentials provided.") -> ApiError:
    return ApiError(401, "ACCESS_DENIED", message)


async def _form_or_json(request: Request) -> dict[str, Any]:
    """The body's fields, JSON or form-encoded (RD clients send both); query fields too. A JSON
    field that is not a string counts as absent."""
    fields: dict[str, Any] = dict(request.query_params)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
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


async def _app_for(request: Request, client_id: Any, redirect_uri: Any) -> App:
    app = await request.app.state.store.find_app(client_id) if isinstance(client_id, str) \
        else None
    if app is None or redirect_uri != app.redirect_uri:
        raise ApiError(400, "ACCESS_DENIED", _BAD_REDIRECT)
    return app


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {client}</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto}}label{{display:block;
margin:.8rem 0}}input{{width:100%;padding:.4rem}}.error{{color:#b00}}</style></head>
<body><h1>Authorize an app</h1>
<p>The app <code>{client}</code> asks to send and read events of your rdevents account.
It will be sent back to <code>{redirect}</code>.</p>{error}
<form method="post" action="/auth/dialog">
<input type="hidden" name="client_id" value="{client}">
<input type="hidden" name="redirect_uri" value="{redirect}">
<input type="hidden" name="state" value="{state}">
<label>Administrator <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label>
<button type="submit">Authorize</button></form></body></html>"""


def _consent_page(app: App, state: str, error: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(
        client=html.escape(app.client_id), redirect=html.escape(app.redirect_uri),
        state=html.escape(state),
        error=f'<p class="error">{html.escape(error)}</p>' if error else ""), status)


async def dialog(request: Request) -> Response:
    query = request.query_params
    redirect_uri = query.get("redirect_uri", query.get("redirect_url"))
    app = await _app_for(request, query.get("client_id"), redirect_uri)
    return _consent_page(app, query.get("state", ""))


async def consent(request: Request) -> Response:
    form = await read_form(request)
    app = await _app_for(request, form.get("client_id"), form.get("redirect_uri"))
    state = form.get("state", "")
    admin = await request.app.state.store.find_admin(form.get("username", ""))
    # scrypt runs on a thread, and for unknown administrators too: the answer takes as long
    # whether the name exists or not, and the event loop never waits for it.
    stored = admin[1] if admin is not None else oauth.UNKNOWN_ADMIN_HASH
    valid = await asyncio.to_thread(oauth.verify_password, form.get("password", ""), stored)
    if admin is None or admin[0] != app.account_id or not valid:
        return _consent_page(app, state, "Wrong administrator or password.", 401)
    code = await oauth.issue_code(request.app.state.store, app)
    query = urlencode({"code": code, **({"state": state} if state else {})})
    separator = "&" if "?" in app.redirect_uri else "?"
    return RedirectResponse(f"{app.redirect_uri}{separator}{query}", status_code=302)


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
    if fields.get("code"):
        grant = await oauth.exchange_code(store, app, str(fields["code"]))
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
    await oauth.revoke(request.app.state.store, str(fields["token"]),
                       fields.get("token_type_hint"))
    # The access tokens of a revoked refresh token are unknown here: forget them all.
    request.app.state.tokens.clear()
    return JSON({})


routes = [
    by_method("/auth/dialog", GET=dialog, POST=consent),
    Route("/auth/token", token, methods=["POST"]),
    Route("/oauth2/token", token, methods=["POST"]),
    Route("/auth/revoke", revoke, methods=["POST"]),
]
