"""What an operator sees of tokens and API keys: their first characters, kept at creation (the
rest is never stored), and when each token was last used.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens and keys made before this revision keep no prefix: NULL.
    with op.batch_alter_table("tokens") as tokens:
        tokens.add_column(sa.Column("prefix", sa.String(16)))
        tokens.add_column(sa.Column("last_used_at", sa.String(32)))
    with op.batch_alter_table("api_keys") as api_keys:
        api_keys.add_column(sa.Column("prefix", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as api_keys:
        api_keys.drop_column("prefix")
    with op.batch_alter_table("tokens") as tokens:
        tokens.drop_column("last_used_at")
        tokens.drop_column("prefix")
