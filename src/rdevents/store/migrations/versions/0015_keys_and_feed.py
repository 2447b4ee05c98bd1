"""Idempotency keys (what each kept of the request that committed with it), and the event
feed's order: on PostgreSQL, each event carries the id of the transaction that wrote it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        # SHA-256 (hex) of the request's route and JSON body: another body with the same key
        # is refused.
        sa.Column("fingerprint", sa.String(64), nullable=False),
        # What the request was answered: its events' uuids (a JSON array), and its batch's.
        sa.Column("event_uuids", sa.Text, nullable=False),
        sa.Column("batch_uuid", sa.String(36)),
        sa.Column("created_at", Time, nullable=False),
        sa.UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    # The feed reads an account's events in the order their transactions became final. Events
    # written before this revision have 0, so they come first.
    op.add_column("events", sa.Column("xid", sa.BigInteger, nullable=False,
                                      server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        # The writing transaction's id (xid8, which never wraps around, as a bigint), set by
        # the database for every row COPY writes. The constant default above filled the
        # existing rows without rewriting the table.
        op.execute("ALTER TABLE events ALTER COLUMN xid "
                   "SET DEFAULT (pg_current_xact_id()::text::bigint)")
        op.create_index("ix_events_feed", "events", ["account_id", "xid", "id"])
    else:
        # One writer at a time: ids are given in commit order, and the feed reads by them.
        op.create_index("ix_events_feed", "events", ["account_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_feed", "events")
    op.drop_column("events", "xid")
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    op.drop_table("idempotency_keys")
