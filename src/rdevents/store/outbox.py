"""What the outboxes hold still to send, for the metrics: webhook deliveries (a relay's outbox
adds its own kind here)."""

from __future__ import annotations

from .queries import Queries
from .request_records import OutboxBacklog


class OutboxQueries(Queries):
    async def outbox_backlog(self) -> list[OutboxBacklog]:
        """Each outbox's pending items, and when the oldest of them was queued."""
        rows = await self.fetch("SELECT count(*), min(created_at) FROM webhook_deliveries "
                                "WHERE status = 'pending'")
        count, oldest = rows[0] if rows else (0, None)
        return [OutboxBacklog("webhook", int(count), oldest)]
