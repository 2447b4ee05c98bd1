"""RD's error bodies and the JSON response every route answers with.

Request-level errors carry `errors` as an object (`{"error_type", "error_message"}`); event
validation errors carry `errors` as an array of `{error_type, error_message, validation_rules,
path}`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ..ingest import InvalidEvents, KeyInFlight, KeyReused, RateLimited
from ..limits import Limited
from ..store import Overloaded, StoreUnavailable

log = logging.getLogger(__name__)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    """A request-level error: status, RD error type and message, optional headers."""

    def __init__(self, status: int, error_type: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers

    def response(self) -> JSON:
        return request_error(self.status, self.error_type, self.message, self.headers)


def request_error(status: int, error_type: str, message: str,
                  headers: Mapping[str, str] | None = None) -> JSON:
    return JSON({"errors": {"error_type": error_type, "error_message": message}}, status,
                headers=headers)


REALM = "rdevents"  # of the Bearer challenges in WWW-Authenticate


def invalid_token() -> ApiError:
    return ApiError(401, "UNAUTHORIZED", "Invalid token.")


def expired_token() -> ApiError:
    """RD's 401 for an expired token: its clients refresh the token on `expired_token`."""
    return ApiError(401, "UNAUTHORIZED", "Invalid token.", {
        "WWW-Authenticate": f'Bearer realm="{REALM}", error="expired_token", '
                            'error_description="The access token expired"'})


def server_error() -> ApiError:
    return ApiError(500, "SERVICE_UNAVAILABLE", "Service temporarily unavailable")


def rate_limited(limited: Limited) -> JSON:
    """RD's two 429s: its lead limiter's body for a contact, its gateway's for an account."""
    wait = str(limited.remaining_time)
    if limited.scope == "contact":
        return JSON({"error": f"'lead_limiter' rate limit exceeded for {limited.period} "
                              f"second(s) period for key '{limited.key}'",
                     "max": limited.max, "usage": limited.usage,
                     "remaining_time": limited.remaining_time}, 429,
                    headers={"Retry-After": wait})
    return JSON({"message": "API rate limit exceeded"}, 429, headers={
        "Retry-After": wait, "RateLimit-Limit-Quotas": str(limited.max),
        "Retry-After-Quotas": wait})


class Answered(Exception):
    """A request answered with a response made in advance (the sandbox's faults)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"answered {response.status_code}")
        self.response = response


class AttributeErrors(ApiError):
    """RD's validation errors of the contacts, fields and webhooks APIs: an object keyed by
    attribute, each an array of errors."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__(400, "INVALID", "invalid attributes")
        self.errors = errors

    def response(self) -> JSON:
        return JSON({"errors": self.errors}, 400)


def attribute_error(error_type: str, message: str, path: str | None = None) -> dict[str, str]:
    """One of RD's attribute errors; `path` (beyond RD) locates what it is about."""
    error = {"error_type": error_type, "error_message": message}
    return error if path is None else {**error, "path": path}


class AttributeProblems:
    """The attribute-keyed errors of one body, as they are found."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, name: str, error_type: str, message: str, path: str | None = None) -> None:
        self.errors[name] = [attribute_error(error_type, message, path)]

    def require_option(self, name: str, value: Any, options: tuple[str, ...]) -> None:
        """RD's errors for an attribute that must hold one of `options`."""
        if value is None:
            self.add(name, "CANNOT_BE_NULL", f"{name} cannot be null.")
        elif value not in options:
            self.add(name, "INCLUSION",
                     f"invalid options, the valid options are: [{', '.join(options)}]")

    def raise_any(self) -> None:
        if self.errors:
            raise AttributeErrors(self.errors)


def refuse_unknown(names: list[str]) -> None:
    """RD's INVALID_FIELDS for body keys the resource does not have."""
    if names:
        raise ApiError(400, "INVALID_FIELDS", "Payload contains fields that do not exist: "
                                              f"({', '.join(names)})")


def not_found(message: str = "The resource couldn't be found.") -> ApiError:
    return ApiError(404, "RESOURCE_NOT_FOUND", message)


async def _api_error(request: Request, exc: ApiError) -> JSON:
    return exc.response()


async def _invalid_events(request: Request, exc: InvalidEvents) -> JSON:
    return JSON({"errors": exc.errors}, 400)


async def _http_exception(request: Request, exc: HTTPException) -> JSON:
    if exc.status_code == 404:
        return not_found().response()
    if exc.status_code == 405:
        return request_error(405, "METHOD_NOT_ALLOWED",
                             f"{request.method} is not allowed on {request.url.path}.",
                             exc.headers)
    return request_error(exc.status_code, "BAD_REQUEST", str(exc.detail), exc.headers)


async def _rate_limited(request: Request, exc: RateLimited) -> JSON:
    return rate_limited(exc.limited)


async def _answered(request: Request, exc: Answered) -> Response:
    return exc.response


async def _key_reused(request: Request, exc: KeyReused) -> JSON:
    return request_error(422, "IDEMPOTENCY_KEY_REUSED",
                         "This Idempotency-Key was used with another request (another route or "
                         "body): use a new key for a new request.")


async def _key_in_flight(request: Request, exc: KeyInFlight) -> JSON:
    return request_error(409, "IDEMPOTENCY_KEY_IN_USE",
                         "A request with this Idempotency-Key is being stored: retry once it "
                         "has been answered.", {"Retry-After": "1"})


async def _store_unavailable(request: Request, exc: StoreUnavailable) -> JSON:
    log.warning("store unavailable: %s", exc)
    return request_error(503, "SERVICE_UNAVAILABLE", "Service temporarily unavailable",
                         {"Retry-After": "1"})


async def _overloaded(request: Request, exc: Overloaded) -> JSON:
    return request_error(503, "SERVICE_UNAVAILABLE",
                         "Service temporarily unavailable: too many writes are waiting.",
                         {"Retry-After": "1"})


async def _client_gone(request: Request, exc: ClientDisconnect) -> JSON:
    """The client closed the connection (or it was closed for its slowness) before its body
    arrived: an answer no one receives, and nothing worth a traceback."""
    return request_error(400, "BAD_REQUEST", "The connection closed before the body arrived.")


async def _unexpected(request: Request, exc: Exception) -> JSON:
    return server_error().response()


# Each handler takes the exception class it is registered for, which a mapping's type cannot
# say: Callable[..., ...] lets Starlette take them.
EXCEPTION_HANDLERS: dict[type[Exception], Callable[..., Awaitable[Response]]] = {
    ApiError: _api_error,
    Answered: _answered,
    InvalidEvents: _invalid_events,
    RateLimited: _rate_limited,
    KeyReused: _key_reused,
    KeyInFlight: _key_in_flight,
    HTTPException: _http_exception,
    ClientDisconnect: _client_gone,
    StoreUnavailable: _store_unavailable,
    Overloaded: _overloaded,
    Exception: _unexpected,
}
