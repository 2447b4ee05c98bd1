"""Bearer-token authentication with RD's 401 bodies."""

from __future__ import annotations

from starlette.requests import Request

from ..clock import utc_now
from ..tokens import hash_token
from .errors import JSON, ApiError

REALM = "rdevents"


def _invalid() -> ApiError:
    return ApiError(401, "UNAUTHORIZED", "Invalid token.")


class MissingToken(ApiError):
    """RD answers a request without a token with an OAuth-style body of its own."""

    def __init__(self) -> None:
        super().__init__(401, "UNAUTHORIZED", "The access token is missing")

    def response(self) -> JSON:
        return JSON({"error": "invalid_request", "error_description": self.message}, 401,
                    headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})


async def authenticate(request: Request) -> int:
    """The account id the request's Bearer token belongs to, or a 401."""
    header = request.headers.get("authorization")
    if not header:
        raise MissingToken()
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid()
    record = await request.app.state.store.find_token(hash_token(token))
    if record is None or record.revoked:
        raise _invalid()
    if record.expires_at is not None and record.expires_at <= utc_now():
        raise ApiError(401, "UNAUTHORIZED", "Invalid token.", {
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="expired_token", '
                                'error_description="The access token expired"'})
    return record.account_id
