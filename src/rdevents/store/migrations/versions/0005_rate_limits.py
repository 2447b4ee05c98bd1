"""Rate limits: each account's plan and limits of its own, and the counters of every process.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as accounts:
        accounts.add_column(sa.Column("plan", sa.String(16), nullable=False,
                                      server_default="standard"))
        accounts.add_column(sa.Column("events_per_minute", sa.Integer))
        accounts.add_column(sa.Column("events_per_contact_day", sa.Integer))
    op.create_table(
        "rate_counters",
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("subject", sa.String(254), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "subject", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("rate_counters")
    with op.batch_alter_table("accounts") as accounts:
        for column in ("events_per_contact_day", "events_per_minute", "plan"):
            accounts.drop_column(column)
