"""Indexes for listing contacts: by tag (a table of tag keys) and by lifecycle stage.

The stage index leads with the stage, not the account: an index that leads with the account
alone is one PostgreSQL's planner may take, before the table's first statistics, for the
writer's look-up of contacts by e-mail (one row read per contact of the account, not one).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from rdevents.store import tag_index

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "contact_tags",
        # Derived from contacts.tags, written with them: no foreign keys to check on writes.
        sa.Column("account_id", BigId, nullable=False),
        sa.Column("tag_key", sa.BigInteger, nullable=False),
        sa.Column("contact_id", BigId, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "tag_key", "contact_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_contact_tags_contact", "contact_tags", ["contact_id"])
    op.create_index("ix_contacts_stage", "contacts", ["lifecycle_stage", "account_id", "id"])
    tag_index.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_contacts_stage", "contacts")
    op.drop_table("contact_tags")
