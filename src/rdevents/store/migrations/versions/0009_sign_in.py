"""Administrators' sign-in attempts, counted for every process (see sign_in.py); each refresh
token remembers the authorization code it was made from, so that a code used again revokes it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        # SHA-256 of a username or a client address: what people type is not kept.
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),  # milliseconds since 1970
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_sign_in_attempts_window", "sign_in_attempts", ["window_start"])
    op.add_column("refresh_tokens", sa.Column("code_id", BigId, nullable=True))
    # One refresh token a code: of two exchanges of one code at once, the second fails here.
    op.create_index("ux_refresh_tokens_code", "refresh_tokens", ["code_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_refresh_tokens_code", "refresh_tokens")
    with op.batch_alter_table("refresh_tokens") as refresh_tokens:
        refresh_tokens.drop_column("code_id")
    op.drop_index("ix_sign_in_attempts_window", "sign_in_attempts")
    op.drop_table("sign_in_attempts")
