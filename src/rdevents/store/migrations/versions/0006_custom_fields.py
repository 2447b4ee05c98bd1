"""Custom fields: each account's definitions of its contacts' cf_* fields.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "custom_fields",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("api_identifier", sa.String(200), nullable=False),
        sa.Column("data_type", sa.String(16), nullable=False),
        sa.Column("name", sa.Text, nullable=False),  # JSON: {"default": ..., "pt-BR": ...}
        sa.Column("label", sa.Text, nullable=False),  # JSON, as name
        sa.Column("presentation_type", sa.String(32), nullable=False),
        sa.Column("validation_rules", sa.Text, nullable=False),  # JSON object
        sa.Column("origin", sa.String(8), nullable=False),  # API, or EVENT when inferred
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("account_id", "api_identifier",
                            name="uq_custom_fields_account_identifier"),
    )


def downgrade() -> None:
    op.drop_table("custom_fields")
