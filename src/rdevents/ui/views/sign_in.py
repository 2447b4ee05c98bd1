"""Signing in to the dashboard and out of it.

The form is checked by the same throttled sign-in as the OAuth consent page (sign_in.py):
failures count per username and per client address, and past the limits attempts are refused
before any password is hashed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...http import forms
from ...http.body import read_form
from ...sign_in import Refused
from .. import pages, sessions
from ..sessions import Visitor

HOME = "/ui/"


def safe_next(target: str | None) -> str:
    """Where to go once signed in: a page of the dashboard, never another site."""
    if (not target or not target.startswith("/ui/") or "//" in target or "\\" in target
            or any(ord(c) < 32 for c in target)):
        return HOME
    return target


def _form(request: Request, target: str, status: int = 200, error: str = "",
          notice: str = "", username: str = "",
          headers: dict[str, str] | None = None) -> Response:
    """The sign-in page, with a fresh CSRF token in its form and in a cookie of its path."""
    token = forms.new_csrf_token()
    page = pages.ENVIRONMENT.get_template("sign_in.html").render(
        request=request, visitor=None, path=request.url.path, csrf_token=token,
        next=target, error=error, notice=notice, username=username)
    return forms.page(request, page, status, token, {**pages.HEADERS, **(headers or {})})


async def sign_in_page(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await sessions.visitor(request) is not None:
        return RedirectResponse(target, 303)
    notice = "You have signed out." if request.query_params.get("signed_out") else ""
    return _form(request, target, notice=notice)


async def sign_in(request: Request) -> Response:
    form = await read_form(request)
    target = safe_next(form.get("next"))
    username = form.get("username", "")
    if not forms.csrf_matches(request, form):
        return _form(request, target, 403, "This form expired, or was sent from another page. "
                                           "Please sign in again.", username=username)
    signed_in = await request.app.state.sign_in.attempt(
        username, form.get("password", ""), request.client.host if request.client else "")
    if isinstance(signed_in, Refused):
        return _form(request, target, 429, signed_in.message, username=username,
                     headers={"Retry-After": str(signed_in.retry_after)})
    response = RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})
    if signed_in is None or not await sessions.begin(request, response, username):
        return _form(request, target, 401, "Wrong username or password.", username=username)
    return response


@pages.signed_in
async def sign_out(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request)
    if not sessions.form_is_ours(visitor, form):
        return pages.render(request, "expired.html", visitor, 403)
    response = RedirectResponse("/ui/sign-in?signed_out=1", 303,
                                headers={"Cache-Control": "no-store"})
    await sessions.end(request, response)
    return response
