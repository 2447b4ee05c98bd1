"""The web dashboard at /ui/: server-rendered pages (Jinja2 templates, inline SVG charts, a small
script for the live events list) for an account's administrators.

Every page reads the data of the signed-in administrator's account only (sessions.py says how
they sign in); the routes are mounted by http/app.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..http.routing import by_method
from . import pages, sessions
from .views import contacts, events, funnel, overview, relays, requests, sign_in, webhooks


async def unknown(request: Request) -> Response:
    """Any other address under /ui/: a page that says so (signed in or not)."""
    return pages.not_found(request, await sessions.visitor(request), "page")


def mount() -> BaseRoute:
    """Everything under /ui."""
    return Mount("/ui", routes=[
        Route("/", overview.overview, methods=["GET"]),
        by_method("/sign-in", GET=sign_in.sign_in_page, POST=sign_in.sign_in),
        Route("/sign-out", sign_in.sign_out, methods=["POST"]),
        Route("/events", events.events_page, methods=["GET"]),
        Route("/events/live", events.events_live, methods=["GET"]),
        Route("/events/{uuid}", events.event_page, methods=["GET"]),
        Route("/contacts", contacts.contacts_page, methods=["GET"]),
        Route("/contacts/{uuid}", contacts.contact_page, methods=["GET"]),
        Route("/funnel", funnel.funnel_page, methods=["GET"]),
        Route("/webhooks", webhooks.webhooks_page, methods=["GET"]),
        Route("/webhooks/{uuid}", webhooks.webhook_page, methods=["GET"]),
        Route("/webhooks/{uuid}/deliveries/{delivery}/resend", webhooks.resend,
              methods=["POST"]),
        Route("/relays", relays.relays_page, methods=["GET"]),
        Route("/relays/{uuid}", relays.relay_page, methods=["GET"]),
        Route("/relays/{uuid}/dead-letters/replay", relays.replay_dead_letters,
              methods=["POST"]),
        Route("/requests", requests.requests_page, methods=["GET"]),
        Route("/requests/{uuid}", requests.request_page, methods=["GET"]),
        Route("/requests/{uuid}/replay", requests.replay_request, methods=["POST"]),
        Mount("/static", StaticFiles(directory=pages.STATIC), name="ui-static"),
        Route("/{rest:path}", unknown, methods=["GET"]),
    ])
