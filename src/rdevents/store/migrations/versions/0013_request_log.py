"""The request log: requests to RD's routes answered 4xx or 5xx (or every one, if asked), with
their bodies, redacted headers and timing, per account (NULL: not authenticated).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        # NULL: the request was not authenticated (a missing or unknown credential).
        sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE")),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("query", sa.Text, nullable=False),  # the query string, credentials redacted
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("client_address", sa.String(64)),
        sa.Column("user_agent", sa.Text),
        sa.Column("headers", sa.Text, nullable=False),  # JSON object, credentials redacted
        # The bodies as received and sent, cut at the configured size; *_size is the whole
        # body's. A body with credentials (OAuth, webhook secrets) has them redacted.
        sa.Column("request_body", sa.LargeBinary, nullable=False),
        sa.Column("request_body_size", sa.Integer, nullable=False),
        sa.Column("response_body", sa.LargeBinary, nullable=False),
        sa.Column("response_body_size", sa.Integer, nullable=False),
        sa.Column("body_redacted", sa.Boolean, nullable=False),
        sa.Column("error_types", sa.Text, nullable=False),  # JSON array
    )
    # An account's records newest first (listing, and dropping those past the cap).
    op.create_index("ix_request_log_account", "request_log", ["account_id", "id"])
    # Those past the retention.
    op.create_index("ix_request_log_received", "request_log", ["received_at"])


def downgrade() -> None:
    op.drop_table("request_log")
