"""Relays to an upstream RD Station: each relay, its outbox (a row for each event it forwards,
written with the event) and the ledger of what it sent, which its budget is read from.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "relays",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        # The upstream's credentials: a static token, or an OAuth client with its refresh token
        # and the access token last obtained (with when it expires, in microseconds since 1970).
        # They are sent upstream, so they are kept as they are, not hashed.
        sa.Column("token", sa.Text),
        sa.Column("client_id", sa.Text),
        sa.Column("client_secret", sa.Text),
        sa.Column("refresh_token", sa.Text),
        sa.Column("access_token", sa.Text),
        sa.Column("access_expires_at", sa.BigInteger),
        sa.Column("events_per_minute", sa.Integer, nullable=False),  # 0: no budget
        sa.Column("state", sa.String(16), nullable=False),  # active, paused
        sa.Column("paused_reason", sa.Text),
        # Held by the upstream's account limit until then (microseconds, database clock).
        sa.Column("hold_until", sa.BigInteger, nullable=False),
        sa.Column("sent", sa.BigInteger, nullable=False),
        sa.Column("retried", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", Time),
        sa.Column("last_success_at", Time),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
    )
    op.create_index("ix_relays_account", "relays", ["account_id", "id"])
    op.create_table(
        "relay_outbox",
        sa.Column("id", BigId, primary_key=True),  # the order events are sent in
        # No foreign keys: checking them would cost every write of events a lookup (and, on
        # PostgreSQL, a lock on the relay's row, which its senders lock to take events). A
        # relay's rows go with it; events are never deleted (an erasure empties them).
        sa.Column("relay_id", BigId, nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        # The contact whose events go in order; rows leave with the contact when it is erased.
        sa.Column("contact_id", BigId, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending, dead
        sa.Column("attempts", sa.Integer, nullable=False),  # failed ones, since queued
        # When it may be taken, in microseconds since 1970 by the database's clock (0: at
        # once). A sender that takes it moves this past its attempt (a lease, which also
        # identifies that sender's hold); a retry moves it to the retry's time.
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("first_failed_at", sa.BigInteger),  # when its retries began
        sa.Column("status_code", sa.Integer),  # the upstream's last answer (NULL: none)
        sa.Column("error", sa.Text),
        sa.Column("failed_at", Time),  # when it became a dead letter
    )
    # What senders look for: each relay's pending rows in order, due or not.
    op.create_index("ix_relay_outbox_pending", "relay_outbox", ["relay_id", "status", "id"])
    op.create_index("ix_relay_outbox_due", "relay_outbox",
                    ["relay_id", "status", "next_attempt_at"])
    # A contact's earlier rows, which hold its later ones back (and its erasure).
    op.create_index("ix_relay_outbox_contact", "relay_outbox", ["relay_id", "contact_id", "id"])
    op.create_table(
        "relay_spends",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("relay_id", BigId, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),  # microseconds, database clock
        sa.Column("events", sa.Integer, nullable=False),
    )
    op.create_index("ix_relay_spends_relay", "relay_spends", ["relay_id", "at"])


def downgrade() -> None:
    for table in ("relay_spends", "relay_outbox", "relays"):
        op.drop_table(table)
