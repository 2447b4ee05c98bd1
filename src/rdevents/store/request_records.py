"""The request log's records, as the store keeps and returns them (see request_log.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoggedRequest:
    """One request and its answer, with credentials redacted (see rdevents/request_log.py)."""

    uuid: str
    account_id: int | None  # None: the request was not authenticated
    received_at: str
    method: str
    path: str
    query: str  # the query string, credentials redacted
    status: int
    duration_ms: float
    request_id: str
    client_address: str | None
    user_agent: str | None
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    request_body: bytes  # cut at the configured size
    request_body_size: int  # the whole body's
    response_body: bytes
    response_body_size: int
    body_redacted: bool  # credentials were taken out of a body (OAuth, webhook secrets)
    error_types: tuple[str, ...]  # of the answer's errors, in order, each once

    @property
    def request_body_truncated(self) -> bool:
        return len(self.request_body) < self.request_body_size

    @property
    def response_body_truncated(self) -> bool:
        return len(self.response_body) < self.response_body_size

    @property
    def replayable(self) -> bool:
        """Whether the request can be sent again as it was: its whole body was kept as it came."""
        return not self.request_body_truncated and not self.body_redacted


@dataclass(frozen=True)
class RequestSummary:
    """A request of the log, as a list shows it."""

    uuid: str
    received_at: str
    method: str
    path: str
    status: int
    duration_ms: float
    error_types: tuple[str, ...]


@dataclass(frozen=True)
class OutboxBacklog:
    """What an outbox (webhook deliveries; later relays) holds still to send."""

    kind: str
    pending: int
    oldest_created_at: str | None  # of the oldest pending item; None when there is none
