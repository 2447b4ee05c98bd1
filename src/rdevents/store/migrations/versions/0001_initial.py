"""Accounts, tokens, contacts, events and funnel transitions.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Times are stored as fixed-width UTC ISO 8601 text ("2026-11-27T03:12:31.123456Z"): the same on
# every backend, and they sort as they read.
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("expires_at", Time),
        sa.Column("revoked_at", Time),
    )
    op.create_table(
        "contacts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("legal_bases", sa.Text, nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("opportunity", sa.Boolean, nullable=False),
        sa.Column("contact_owner_email", sa.String(254)),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.UniqueConstraint("account_id", "email", name="uq_contacts_account_email"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id")),
        sa.Column("batch_uuid", sa.String(36)),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_family", sa.String(16), nullable=False),
        sa.Column("event_identifier", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", Time, nullable=False),
    )
    op.create_index("ix_events_contact", "events", ["contact_id", "id"])
    op.create_table(
        "funnel_transitions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("contact_id", BigId, sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("event_id", BigId, sa.ForeignKey("events.id")),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("from_stage", sa.String(32)),
        sa.Column("to_stage", sa.String(32), nullable=False),
        sa.Column("from_opportunity", sa.Boolean),
        sa.Column("to_opportunity", sa.Boolean, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", Time, nullable=False),
    )
    op.create_index("ix_funnel_transitions_contact", "funnel_transitions", ["contact_id", "id"])


def downgrade() -> None:
    for table in ("funnel_transitions", "events", "contacts", "tokens", "accounts"):
        op.drop_table(table)
