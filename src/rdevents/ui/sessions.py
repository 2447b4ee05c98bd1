"""Who is signed in to the dashboard, and the tokens that keep forms from being sent by other
sites.

Signing in gives the browser a session cookie holding 32 random bytes: HttpOnly (no script
reads it), SameSite=Lax (no other site's request carries it, except a plain link followed), on
the path /ui only, Secure when the request came over https, and expiring with the session. The
database keeps its SHA-256 only, with the administrator, the account and when it expires: the
value cannot be forged or guessed, and signing out, a new password or the administrator's
deletion ends it at once, in every process.

Every form of a signed-in page carries a CSRF token derived from the session's secret (an HMAC
of it): another site can neither read it nor make it, and a POST without it is refused. The
sign-in form, before any session, uses the double-submitted cookie of http/forms.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..clock import utc_now
from ..store import Store

COOKIE = "rdevents_session"
PATH = "/ui"
_LONGEST = 64  # characters of a cookie value worth looking up (ours have 43)


@dataclass(frozen=True)
class Visitor:
    """A signed-in administrator, the account whose data they see, and the token their forms
    carry."""

    account_id: int
    account_name: str
    username: str
    csrf_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"rdevents dashboard form", hashlib.sha256).hexdigest()


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def visitor(request: Request) -> Visitor | None:
    """The administrator the request's session cookie signs in, if it is live."""
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > _LONGEST:
        return None
    session = await _store(request).find_admin_session(_hash(token), utc_now())
    if session is None:
        return None
    return Visitor(session.account_id, session.account_name, session.username, _csrf_for(token))


async def begin(request: Request, response: Response, username: str) -> bool:
    """Start a session of the administrator and give `response` its cookie; False when the
    administrator is gone."""
    lifetime = request.app.state.settings.ui_session_seconds
    store = _store(request)
    await store.prune_admin_sessions(utc_now())
    token = secrets.token_urlsafe(32)
    if not await store.create_admin_session(_hash(token), username, utc_now(lifetime)):
        return False
    response.set_cookie(COOKIE, token, max_age=int(lifetime), path=PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return True


async def end(request: Request, response: Response) -> None:
    """End the request's session, and have the browser drop its cookie."""
    token = request.cookies.get(COOKIE, "")
    if token and len(token) <= _LONGEST:
        await _store(request).end_admin_session(_hash(token))
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")


def form_is_ours(visitor: Visitor, form: dict[str, str]) -> bool:
    """Whether a form came back with the token of the visitor's session."""
    return hmac.compare_digest(visitor.csrf_token.encode(),
                               form.get("csrf_token", "").encode())
