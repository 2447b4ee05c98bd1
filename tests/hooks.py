"""The webhook tests' use of the subscriptions and deliveries APIs."""

from __future__ import annotations

import uuid

from conftest import Api
from waiting import wait_until


def new_email() -> str:
    return f"hook-{uuid.uuid4().hex[:10]}@example.com"


def subscribe(api: Api, url: str, **attributes) -> dict:
    response = api.post("/integrations/webhooks", json={
        "event_type": "WEBHOOK.CONVERTED", "entity_type": "CONTACT", "url": url,
        "http_method": "POST", **attributes})
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(api: Api, webhook: dict, **query) -> list[dict]:
    response = api.get(f"/integrations/webhooks/{webhook['uuid']}/deliveries", params=query)
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def settled(api: Api, webhook: dict, count: int) -> list[dict]:
    """The webhook's `count` deliveries, once none is pending."""
    return wait_until(lambda: (lambda found: found if len(found) == count and all(
        d["status"] != "pending" for d in found) else None)(
        deliveries(api, webhook, page_size=100)))


def attribute_error(name: str, error_type: str, message: str) -> dict:
    return {name: [{"error_type": error_type, "error_message": message}]}
