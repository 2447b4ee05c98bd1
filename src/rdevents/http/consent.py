"""RD's consent page, /auth/dialog: an administrator of the app's account signs in, and the
browser goes back to the app with a code."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import oauth
from ..sign_in import Refused
from ..store import App
from . import forms
from .body import read_form
from .errors import ApiError
from .routing import by_method

_BAD_REDIRECT = "O parâmetro redirect_uri não contém um valor válido."

_FORM = """<h1>Authorize an app</h1>
<p>The app <code>{client}</code> asks to send and read events of your rdevents account.
It will be sent back to <code>{redirect}</code>.</p>{error}
<form method="post" action="/auth/dialog">{csrf}
<input type="hidden" name="client_id" value="{client}">
<input type="hidden" name="redirect_uri" value="{redirect}">
<input type="hidden" name="state" value="{state}">
<label>Administrator <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password"
required></label>
<button type="submit">Authorize</button></form>"""

_EXPIRED = """<h1>This page has expired</h1>
<p>The form came back without the security token of the page that showed it: the page may be
old, or open in another tab too, or the form may have been sent by another site.</p>
<p><a href="{again}">Reload the page</a> and sign in again.</p>"""


async def _app_for(request: Request, client_id: str | None, redirect_uri: str | None) -> App:
    app: App | None = await request.app.state.store.find_app(client_id) if client_id else None
    if app is None or redirect_uri != app.redirect_uri:
        raise ApiError(400, "ACCESS_DENIED", _BAD_REDIRECT)
    return app


def _consent_page(request: Request, app: App, state: str, error: str = "", status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    token = forms.new_csrf_token()
    body = _FORM.format(
        client=html.escape(app.client_id), redirect=html.escape(app.redirect_uri),
        state=html.escape(state), csrf=forms.csrf_field(token),
        error=f'<p class="error">{html.escape(error)}</p>' if error else "")
    return forms.page(request, forms.document(f"Authorize {app.client_id}", body), status,
                      token, headers)


def _expired_page(request: Request, form: dict[str, str]) -> Response:
    query = urlencode({name: form[name] for name in ("client_id", "redirect_uri", "state")
                       if form.get(name)})
    body = _EXPIRED.format(again=html.escape(f"/auth/dialog?{query}"))
    return forms.page(request, forms.document("This page has expired", body), 403)


async def dialog(request: Request) -> Response:
    query = request.query_params
    redirect_uri = query.get("redirect_uri", query.get("redirect_url"))
    app = await _app_for(request, query.get("client_id"), redirect_uri)
    return _consent_page(request, app, query.get("state", ""))


async def consent(request: Request) -> Response:
    form = await read_form(request)
    if not forms.csrf_matches(request, form):
        return _expired_page(request, form)
    app = await _app_for(request, form.get("client_id"), form.get("redirect_uri"))
    state = form.get("state", "")
    signed_in = await request.app.state.sign_in.attempt(
        form.get("username", ""), form.get("password", ""),
        request.client.host if request.client else "", app.account_id)
    if isinstance(signed_in, Refused):
        return _consent_page(request, app, state, signed_in.message, 429,
                             {"Retry-After": str(signed_in.retry_after)})
    if signed_in is None:
        return _consent_page(request, app, state, "Wrong administrator or password.", 401)
    code = await oauth.issue_code(request.app.state.store, app)
    query = urlencode({"code": code, **({"state": state} if state else {})})
    separator = "&" if "?" in app.redirect_uri else "?"
    return RedirectResponse(f"{app.redirect_uri}{separator}{query}", status_code=302,
                            headers={"Cache-Control": "no-store"})


routes = [by_method("/auth/dialog", GET=dialog, POST=consent)]
