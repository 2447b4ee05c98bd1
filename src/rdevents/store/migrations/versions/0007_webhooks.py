"""Webhooks: subscriptions, the outbox of deliveries written with the events, and each attempt.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("http_method", sa.String(8), nullable=False),
        sa.Column("include_relations", sa.Text, nullable=False),  # JSON array
        sa.Column("event_identifiers", sa.Text, nullable=False),  # JSON array
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("account_id", "event_type", "url", name="uq_webhooks_url"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("webhook_id", BigId, sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("contact_id", BigId),  # for erasure; NULL once erased
        sa.Column("event_uuid", sa.String(36)),  # NULL for a change made through the API
        sa.Column("body", sa.Text, nullable=False),  # JSON; "timestamp" is set when sent
        sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed, erased
        sa.Column("attempts", sa.Integer, nullable=False),  # since created or last re-sent
        # When the next attempt is due, in microseconds since 1970 by the database's clock (0:
        # at once). A sender that takes the delivery moves it past the attempt's timeout (a
        # lease, which also identifies that sender's hold), so that another takes it only if
        # that sender died.
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries",
                    ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])
    op.create_index("ix_webhook_deliveries_contact", "webhook_deliveries", ["contact_id"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("delivery_id", BigId,
                  sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempted_at", Time, nullable=False),
        sa.Column("status_code", sa.Integer),  # NULL when no answer came
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id", "id"])


def downgrade() -> None:
    for table in ("webhook_attempts", "webhook_deliveries", "webhooks"):
        op.drop_table(table)
