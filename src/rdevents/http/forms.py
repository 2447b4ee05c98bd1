"""HTML pages with a form that people fill in (the consent page of OAuth; any page that signs
administrators in): kept out of frames and caches, and protected from cross-site requests by a
double-submitted token.

Each page carries a fresh random token twice: in a cookie (HttpOnly, SameSite=Strict, on the
page's path) and in a hidden field of its form. A POST is taken only if both came back equal:
another site can neither read the token nor make the browser send the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets

from starlette.requests import Request
from starlette.responses import HTMLResponse

CSRF_COOKIE = "rdevents_csrf"
CSRF_FIELD = "csrf_token"

STYLE = ("body{font-family:sans-serif;max-width:28rem;margin:4rem auto}label{display:block;"
         "margin:.8rem 0}input{width:100%;padding:.4rem}.error{color:#b00}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

# Nothing but the page's own style may load, and no other site may frame it. No form-action:
# browsers apply it to the redirect that follows a submission, and the consent form's goes
# to the app's redirect URI, wherever that is.
SECURITY_HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def document(title: str, body: str) -> str:
    """A whole page; `title` is escaped here, `body` must be escaped HTML already."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>{body}</body></html>")


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{html.escape(token)}">'


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def page(request: Request, content: str, status: int = 200,
         csrf_token: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    """The page with the security headers; with `csrf_token`, the cookie that goes with the
    form's field."""
    response = HTMLResponse(content, status, headers={**SECURITY_HEADERS, **(headers or {})})
    if csrf_token is not None:
        response.set_cookie(CSRF_COOKIE, csrf_token, path=request.url.path, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
    return response


def csrf_matches(request: Request, form: dict[str, str]) -> bool:
    """Whether the form's token is the one in the cookie of the page it came from."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = form.get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), field.encode())
