"""PostgreSQL: contacts' profile, tags and legal bases as JSONB, so that SQL can query them
(`WHERE tags ? 'mql'`, `profile->>'city'`). SQLite keeps JSON text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("profile", "tags", "legal_bases")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.alter_column("contacts", column, type_=JSONB, postgresql_using=f"{column}::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.alter_column("contacts", column, type_=sa.Text, postgresql_using=f"{column}::text")
