"""Webhooks: an index that finds each subscription's first due deliveries, so that senders take
deliveries fairly across accounts without reading the whole backlog.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_webhook_due", "webhook_deliveries",
                    ["webhook_id", "status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_webhook_due", "webhook_deliveries")
