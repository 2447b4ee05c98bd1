"""What the store keeps of webhooks, as the API and the senders see it: subscriptions, deliveries
and their attempts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Webhook:
    """A webhook subscription as RD's API shows it, with the secret its deliveries are signed
    with."""

    uuid: str
    event_type: str
    url: str
    include_relations: tuple[str, ...]
    event_identifiers: tuple[str, ...]
    secret: str
    created_at: str
    updated_at: str
    entity_type: str = "CONTACT"
    http_method: str = "POST"


@dataclass(frozen=True)
class Attempt:
    attempted_at: str
    status_code: int | None  # None when no answer came
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery as `GET .../deliveries` shows it."""

    uuid: str
    event_uuid: str | None
    status: str  # pending, delivered, failed, or erased (its contact was deleted before)
    attempts: int
    created_at: str
    updated_at: str
    history: tuple[Attempt, ...]


@dataclass(frozen=True)
class DueDelivery:
    """A delivery a sender has taken: what to send, where, and how to sign it."""

    id: int
    uuid: str
    body: str
    attempts: int
    url: str
    secret: str
    account_id: int
    lease: int  # when the sender's hold on it ends (the database's clock, in microseconds)
