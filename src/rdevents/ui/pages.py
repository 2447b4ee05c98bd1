"""Rendering the dashboard's pages: the templates, their filters, and the headers every page
carries (nothing loads from another origin, no other site may frame a page, nothing is cached),
and the guard that sends visitors who are not signed in to the sign-in page.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..store import Store
from . import charts, faults, sessions, times
from .sessions import Visitor

HERE = Path(__file__).parent
STATIC = HERE / "static"

# Scripts, styles and requests of the page's own origin only; no inline script or style at all
# (the charts' colours are SVG attributes).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

View = Callable[[Request, Visitor], Awaitable[Response]]


@functools.cache
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


def static(name: str) -> str:
    """A static file's address, which changes with its content (browsers may cache it)."""
    return f"/ui/static/{name}?v={_static_version(name)}"


def query(**parameters: Any) -> str:
    """A query string of the parameters that have a value ("" when none has)."""
    given = {name: value for name, value in parameters.items() if value not in (None, "")}
    return f"?{urlencode(given)}" if given else ""


def shown(value: Any) -> str:
    """A contact attribute's or custom field's value as a page shows it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


ENVIRONMENT = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters.update(utc=times.shown, number=charts.number, duration=times.duration,
                           shown=shown)
ENVIRONMENT.globals.update(static=static, query=query, swatch=charts.swatch,
                           json=faults.marked_json)


def render(request: Request, template: str, visitor: Visitor | None, status: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page of the dashboard, signed in as `visitor` (None on the sign-in page)."""
    content = ENVIRONMENT.get_template(template).render(
        request=request, visitor=visitor, path=request.url.path, **context)
    return HTMLResponse(content, status, headers={**HEADERS, **(headers or {})})


def not_found(request: Request, visitor: Visitor | None, what: str) -> HTMLResponse:
    return render(request, "not_found.html", visitor, 404, what=what)


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def now() -> datetime:
    return datetime.now(UTC)


def sign_in_address(request: Request) -> str:
    """Where the sign-in page sends a visitor back to once signed in: this page."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/ui/sign-in" + query(next=target if target != "/ui/" else None)


def signed_in(view: View) -> Callable[[Request], Awaitable[Response]]:
    """The view, for signed-in administrators; others are sent to sign in (a page) or told
    401 (a request of a script, which asks for JSON)."""

    @functools.wraps(view)
    async def guarded(request: Request) -> Response:
        visitor = await sessions.visitor(request)
        if visitor is not None:
            return await view(request, visitor)
        if "application/json" in request.headers.get("accept", ""):
            return Response('{"error":"signed_out"}', 401, media_type="application/json",
                            headers={"Cache-Control": "no-store"})
        if request.method != "GET":
            return RedirectResponse("/ui/sign-in", 303)
        return RedirectResponse(sign_in_address(request), 303)

    return guarded
