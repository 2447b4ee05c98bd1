"""Webhooks: the account's subscriptions with their deliveries by status (/ui/webhooks), one
subscription's deliveries with every attempt (/ui/webhooks/{uuid}), and sending a delivery
again (a POST form, as the API's resend does)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ...http.body import read_form
from ...http.webhooks import DELIVERY_STATUSES
from .. import pages, sessions, times
from ..sessions import Visitor
from .events import page_number

PAGE_SIZE = 20
# What the webhook's page says after a resend, by the outcome the address carries.
RESENT = {
    "queued": "The delivery is queued: it will be sent again shortly, with its retries afresh.",
    "pending": "The delivery is still pending: it will be sent, there is no need to resend it.",
    "erased": "The delivery was erased with its contact: it cannot be sent again.",
}


@pages.signed_in
async def webhooks_page(request: Request, visitor: Visitor) -> Response:
    store = pages.store_of(request)
    webhooks = await store.list_webhooks(visitor.account_id)
    counts = await store.delivery_counts(visitor.account_id)
    backlog = await store.webhook_backlog(visitor.account_id)
    now = pages.now()
    lags = {uuid: times.age(c.oldest_pending_since, now)
            for uuid, c in counts.items() if c.oldest_pending_since}
    lag = times.age(backlog.oldest_since, now) if backlog.oldest_since else None
    return pages.render(request, "webhooks.html", visitor, webhooks=webhooks, counts=counts,
                        lags=lags, backlog=backlog, lag=lag)


@pages.signed_in
async def webhook_page(request: Request, visitor: Visitor) -> Response:
    store = pages.store_of(request)
    webhook = await store.get_webhook(visitor.account_id,
                                      str(request.path_params["uuid"]).lower())
    if webhook is None:
        return pages.not_found(request, visitor, "webhook")
    status = request.query_params.get("status")
    status = status if status in DELIVERY_STATUSES else None
    page = page_number(request)
    found = await store.list_deliveries(visitor.account_id, webhook.uuid, status,
                                        (page - 1) * PAGE_SIZE, PAGE_SIZE + 1)
    counts = (await store.delivery_counts(visitor.account_id)).get(webhook.uuid)
    outcome = request.query_params.get("resent", "")
    return pages.render(request, "webhook.html", visitor, webhook=webhook,
                        deliveries=found[:PAGE_SIZE], more=len(found) > PAGE_SIZE, page=page,
                        chosen=status, statuses=DELIVERY_STATUSES,
                        by_status=counts.by_status if counts else {},
                        notice=RESENT.get(outcome, ""),
                        resent=request.query_params.get("delivery", ""))


@pages.signed_in
async def resend(request: Request, visitor: Visitor) -> Response:
    form = await read_form(request)
    if not sessions.form_is_ours(visitor, form):
        return pages.render(request, "expired.html", visitor, 403)
    webhook_uuid = str(request.path_params["uuid"]).lower()
    delivery_uuid = str(request.path_params["delivery"]).lower()
    outcome = await pages.store_of(request).resend_delivery(visitor.account_id, webhook_uuid,
                                                            delivery_uuid)
    if outcome is None:
        return pages.not_found(request, visitor, "delivery")
    back = f"/ui/webhooks/{webhook_uuid}" + pages.query(
        resent=outcome if outcome in RESENT else "pending", delivery=delivery_uuid)
    return RedirectResponse(back, 303, headers={"Cache-Control": "no-store"})
