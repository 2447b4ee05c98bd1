"""RD's webhook subscriptions API (/integrations/webhooks), with the deliveries of each."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..clock import utc_now
from ..ids import new_uuid
from ..outbound.targets import ForbiddenTarget
from ..store import WebhookExists
from ..store.webhook_records import DeliveryRecord, Webhook
from ..validation import LIMIT_EXCEEDED, NUL, Error
from ..webhook_rules import (
    CONVERTED,
    RELATIONS,
    SECRET_LENGTHS,
    WEBHOOK_EVENT_TYPES,
    acceptable_secret,
)
from .auth import authenticate
from .body import bad_shape, read_json
from .errors import (
    JSON,
    ApiError,
    AttributeErrors,
    AttributeProblems,
    attribute_error,
    not_found,
    refuse_unknown,
)
from .paging import one_of, page_of
from .routing import by_method

_FIELDS = ("event_type", "entity_type", "event_identifiers", "url", "http_method",
           "include_relations", "secret")
# What a GET shows beyond RD's attributes: a PUT may send it back; it is not changed (a secret
# changes only through /rdevents/v1/webhooks/{uuid}/secret/rotate, an extension API, so that a
# client's stale copy cannot bring an old one back).
_SHOWN = ("uuid", "created_at", "updated_at", "platform_account_id", "source", "status",
          "secret")
_SECRET_RULE = (f"secret must be {SECRET_LENGTHS.start} to {SECRET_LENGTHS.stop - 1} printable "
                "ASCII characters, without spaces.")
DELIVERY_STATUSES = ("pending", "delivered", "failed", "erased")
DELIVERIES_PAGE_SIZE = 25


def webhook_document(webhook: Webhook, account_id: int) -> dict[str, Any]:
    return {"uuid": webhook.uuid, "event_type": webhook.event_type,
            "entity_type": webhook.entity_type, "url": webhook.url,
            "http_method": webhook.http_method,
            "include_relations": list(webhook.include_relations),
            "event_identifiers": list(webhook.event_identifiers),
            "created_at": webhook.created_at, "updated_at": webhook.updated_at,
            "platform_account_id": account_id, "source": "MKT", "status": "active",
            "secret": webhook.secret}


def _strings(problems: AttributeProblems, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and NUL not in v
                                              for v in value):
        problems.add(name, "MUST_BE_STRING_ARRAY", f"{name} must be an array of strings.")
        return ()
    return tuple(dict.fromkeys(value))


def subscription_from(body: Any, shown: tuple[str, ...] = ()) -> dict[str, Any]:
    """RD's subscription body: its attributes (with the secret, when a creation chooses one),
    or RD's attribute-keyed errors. `shown` names what a GET shows that a PUT may send back:
    it is ignored."""
    if not isinstance(body, dict):
        raise bad_shape("object")
    refuse_unknown(sorted(set(body) - {*_FIELDS, *shown}))
    problems = AttributeProblems()
    event_type = body.get("event_type")
    problems.require_option("event_type", event_type, WEBHOOK_EVENT_TYPES)
    problems.require_option("entity_type", body.get("entity_type", "CONTACT"), ("CONTACT",))
    problems.require_option("http_method", body.get("http_method", "POST"), ("POST",))
    url = body.get("url")
    if url is None:
        problems.add("url", "CANNOT_BE_NULL", "url cannot be null.")
    elif not _is_http_url(url):
        problems.add("url", "INVALID_FORMAT", "url must be an http or https URL.")
    relations = _strings(problems, "include_relations", body.get("include_relations", []))
    if any(r not in RELATIONS for r in relations):
        problems.add("include_relations", "INCLUSION",
                     f"invalid options, the valid options are: [{', '.join(RELATIONS)}]")
    identifiers = _strings(problems, "event_identifiers", body.get("event_identifiers", []))
    if identifiers and event_type != CONVERTED:
        problems.add("event_identifiers", "INVALID",
                     f"event_identifiers filter {CONVERTED} webhooks only.")
    attributes = {"event_type": event_type, "url": url, "include_relations": relations,
                  "event_identifiers": identifiers}
    if "secret" in body and "secret" not in shown:
        attributes["secret"] = _chosen_secret(problems, body["secret"])
    problems.raise_any()
    return attributes


def _chosen_secret(problems: AttributeProblems, secret: Any) -> str:
    if isinstance(secret, str) and acceptable_secret(secret):
        return secret
    problems.add("secret", "INVALID_FORMAT", _SECRET_RULE, "$.body.secret")
    return ""  # never stored: the problem refuses the request


def _is_http_url(url: Any) -> bool:
    if not isinstance(url, str) or NUL in url or len(url) > 2048:
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def _ensure_usable(request: Request, attributes: dict[str, Any],
                         others: list[Webhook]) -> None:
    """Refuse a URL one of the account's `others` has for this event type, or one webhooks may
    not be sent to; then check that the URL answers a 2xx, as RD does (and with RD's 401 when
    it does not)."""
    if any((other.event_type, other.url) == (attributes["event_type"], attributes["url"])
           for other in others):
        raise _taken(attributes["event_type"])
    try:
        problem = await request.app.state.webhook_sender.check_url(attributes["url"],
                                                                   attributes["event_type"])
    except ForbiddenTarget as exc:
        raise AttributeErrors({"url": [attribute_error("FORBIDDEN_TARGET", str(exc),
                                                       "$.body.url")]}) from None
    if problem is not None:
        raise ApiError(401, "UNAUTHORIZED", "The URL did not answer the validation request "
                                            f"with a 2xx status: {problem}.")


def _taken(event_type: str) -> AttributeErrors:
    return AttributeErrors({"url": [attribute_error(
        "TAKEN", f"url already in use for {event_type}")]})


def _too_many(limit: int) -> AttributeErrors:
    """An error of the subscription as a whole: keyed `base`, as Rails-style attribute errors
    such as RD's key them."""
    return AttributeErrors({"base": [attribute_error(
        LIMIT_EXCEEDED, f"This account has {limit} webhook subscriptions, the most this "
                         "server allows: delete one before adding another.")]})


async def create_webhook(request: Request) -> JSON:
    account_id = await authenticate(request)
    attributes = subscription_from(await read_json(request))
    limit = request.app.state.settings.max_webhooks_per_account
    store = request.app.state.store
    webhooks = await store.list_webhooks(account_id)
    if len(webhooks) >= limit:
        raise _too_many(limit)  # before the validation request: no use sending it
    await _ensure_usable(request, attributes, webhooks)
    now = utc_now()
    attributes.setdefault("secret", _new_secret())
    webhook = Webhook(uuid=new_uuid(), created_at=now, updated_at=now, **attributes)
    try:
        created = await store.create_webhook(account_id, webhook, limit)
    except WebhookExists:
        raise _taken(webhook.event_type) from None
    if not created:  # others were created meanwhile
        raise _too_many(limit)
    return JSON(webhook_document(webhook, account_id), 201)


def _new_secret() -> str:
    return secrets.token_hex(32)


async def list_webhooks(request: Request) -> JSON:
    account_id = await authenticate(request)
    webhooks = await request.app.state.store.list_webhooks(account_id)
    return JSON({"webhooks": [webhook_document(w, account_id) for w in webhooks]})


async def _find_webhook(request: Request) -> tuple[int, Webhook]:
    account_id = await authenticate(request)
    webhook = await request.app.state.store.get_webhook(account_id,
                                                        request.path_params["uuid"].lower())
    if webhook is None:
        raise not_found("Webhook not found.")
    return account_id, webhook


async def get_webhook(request: Request) -> JSON:
    account_id, webhook = await _find_webhook(request)
    return JSON(webhook_document(webhook, account_id))


async def update_webhook(request: Request) -> JSON:
    """RD's PUT: the whole subscription again (what a GET shows may be sent back)."""
    account_id, current = await _find_webhook(request)
    attributes = subscription_from(await read_json(request), _SHOWN)
    if attributes["url"] != current.url or attributes["event_type"] != current.event_type:
        others = [w for w in await request.app.state.store.list_webhooks(account_id)
                  if w.uuid != current.uuid]
        await _ensure_usable(request, attributes, others)
    updated = replace(current, **attributes, updated_at=utc_now())
    try:
        found = await request.app.state.store.update_webhook(account_id, updated)
    except WebhookExists:
        raise _taken(updated.event_type) from None
    if not found:
        raise not_found("Webhook not found.")
    return JSON(webhook_document(updated, account_id))


async def rotate_secret(request: Request) -> JSON:
    """Give a subscription a new secret: one chosen in the body (`{"secret": "..."}`), or a
    new random one without a body. Deliveries sent from then on, retries included, are signed
    with it."""
    account_id, webhook = await _find_webhook(request)
    secret = _new_secret()
    if request.headers.get("content-type") is not None:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_shape("object")
        refuse_unknown(sorted(set(body) - {"secret"}))
        if "secret" in body:
            problems = AttributeProblems()
            secret = _chosen_secret(problems, body["secret"])
            problems.raise_any()
    rotated = replace(webhook, secret=secret, updated_at=utc_now())
    if not await request.app.state.store.set_webhook_secret(account_id, webhook.uuid, secret,
                                                            rotated.updated_at):
        raise not_found("Webhook not found.")
    return JSON(webhook_document(rotated, account_id))


async def delete_webhook(request: Request) -> Response:
    """The subscription goes with its deliveries: those still pending are not sent."""
    account_id, webhook = await _find_webhook(request)
    if not await request.app.state.store.delete_webhook(account_id, webhook.uuid):
        raise not_found("Webhook not found.")
    return Response(status_code=204)


def delivery_document(d: DeliveryRecord) -> dict[str, Any]:
    return {"uuid": d.uuid, "event_uuid": d.event_uuid, "status": d.status,
            "attempts": d.attempts, "created_at": d.created_at, "updated_at": d.updated_at,
            "history": [{"attempted_at": a.attempted_at, "status_code": a.status_code,
                         "error": a.error, "duration_ms": a.duration_ms} for a in d.history]}


async def list_deliveries(request: Request) -> JSON:
    """A webhook's deliveries, newest first, each with every attempt made (beyond RD)."""
    account_id, webhook = await _find_webhook(request)
    query = request.query_params
    errors: list[Error] = []
    status = one_of(query, "status", DELIVERY_STATUSES, errors)
    page = page_of(query, DELIVERIES_PAGE_SIZE, errors)
    if errors:
        return JSON({"errors": errors}, 400)
    deliveries = await request.app.state.store.list_deliveries(
        account_id, webhook.uuid, status, page.offset, page.size)
    return JSON({"deliveries": [delivery_document(d) for d in deliveries], "page": page.number,
                 "page_size": page.size})


async def resend_delivery(request: Request) -> JSON:
    """Send a delivered or failed delivery again, with its retries afresh."""
    account_id, webhook = await _find_webhook(request)
    store = request.app.state.store
    outcome = await store.resend_delivery(account_id, webhook.uuid,
                                          request.path_params["delivery"].lower())
    if outcome is None:
        raise not_found("Delivery not found.")
    if outcome == "pending":
        raise ApiError(400, "INVALID", "The delivery is pending: it will be sent.")
    if outcome == "erased":
        raise ApiError(400, "INVALID", "The delivery was erased with its contact.")
    return JSON({"uuid": request.path_params["delivery"].lower(), "status": "pending"}, 202)


routes = [
    by_method("/integrations/webhooks", GET=list_webhooks, POST=create_webhook),
    by_method("/integrations/webhooks/{uuid}", GET=get_webhook, PUT=update_webhook,
              DELETE=delete_webhook),
    by_method("/rdevents/v1/webhooks/{uuid}/secret/rotate", POST=rotate_secret),
    by_method("/integrations/webhooks/{uuid}/deliveries", GET=list_deliveries),
    by_method("/integrations/webhooks/{uuid}/deliveries/{delivery}/resend",
              POST=resend_delivery),
]
