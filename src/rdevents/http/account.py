"""GET /marketing/account_info: the name of the token's account, as RD answers it
(`{"name": "..."}`); some RD clients ask for it when they start."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from .auth import authenticate
from .errors import JSON


async def account_info(request: Request) -> JSON:
    account_id = await authenticate(request)
    return JSON({"name": await request.app.state.store.account_name(account_id)})


routes = [Route("/marketing/account_info", account_info, methods=["GET"])]
