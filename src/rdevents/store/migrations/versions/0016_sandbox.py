"""The sandbox's faults (`serve --sandbox`): the failures an account asked for, each answered to
its next requests until its count is spent. In the database, so that every process of
`serve --workers N` answers them, and counts them together.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "sandbox_faults",
        sa.Column("id", BigId, primary_key=True),  # the order faults are answered in
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("fault", sa.String(32), nullable=False),
        sa.Column("path", sa.Text, nullable=False),  # a prefix of the paths it answers
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_index("ix_sandbox_faults_account", "sandbox_faults", ["account_id", "id"])


def downgrade() -> None:
    op.drop_table("sandbox_faults")
