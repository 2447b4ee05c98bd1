"""The dashboard (/ui/): administrators' sessions, and the indexes its pages read by: an account's
events by time (the live list, the charts) and its funnel transitions by time (the funnel page).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        # SHA-256 of the session cookie's random value: the cookie itself is never stored.
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("admin_id", BigId, sa.ForeignKey("admins.id"), nullable=False),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time, nullable=False),
    )
    op.create_index("ix_ui_sessions_admin", "ui_sessions", ["admin_id"])
    op.create_index("ix_ui_sessions_expires", "ui_sessions", ["expires_at"])
    # Newest first, with the id to break ties (SQLite adds the rowid, which is the id, anyway).
    op.create_index("ix_events_account_received", "events", ["account_id", "received_at", "id"])
    op.create_index("ix_funnel_transitions_account", "funnel_transitions",
                    ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_funnel_transitions_account", "funnel_transitions")
    op.drop_index("ix_events_account_received", "events")
    op.drop_index("ix_ui_sessions_expires", "ui_sessions")
    op.drop_index("ix_ui_sessions_admin", "ui_sessions")
    op.drop_table("ui_sessions")
