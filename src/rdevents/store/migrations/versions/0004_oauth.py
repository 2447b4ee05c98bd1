"""OAuth: apps, account administrators, authorization codes, refresh tokens; access tokens
remember the refresh token they came from, so that revoking it revokes them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "admins",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("username", sa.String(200), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "auth_codes",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("app_id", BigId, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", Time, nullable=False),
        sa.Column("used_at", Time),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("app_id", BigId, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time),
    )
    op.add_column("tokens", sa.Column("refresh_token_id", BigId, nullable=True))
    op.create_index("ix_tokens_refresh_token", "tokens", ["refresh_token_id"])


def downgrade() -> None:
    op.drop_index("ix_tokens_refresh_token", "tokens")
    op.drop_column("tokens", "refresh_token_id")
    for table in ("refresh_tokens", "auth_codes", "admins", "apps"):
        op.drop_table(table)
