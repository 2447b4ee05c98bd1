"""The tables every accepted event writes to (contacts, events, funnel transitions) without
foreign keys on PostgreSQL.

PostgreSQL checks a foreign key with a query a row: six such checks for a conversion that makes
a contact, a third to a half of the database's CPU an event. The references they guarded are
kept by the write path itself, one transaction a group, under the contacts' locks, as on SQLite,
which never enforced them (its `foreign_keys` pragma is off); the tests check that no row is
left pointing at nothing, on both backends.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# (table, column, the table it refers to): each constraint is named as PostgreSQL named it.
REFERENCES = (
    ("contacts", "account_id", "accounts"),
    ("events", "account_id", "accounts"),
    ("events", "contact_id", "contacts"),
    ("funnel_transitions", "account_id", "accounts"),
    ("funnel_transitions", "contact_id", "contacts"),
    ("funnel_transitions", "event_id", "events"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, _ in REFERENCES:
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, referent in REFERENCES:
        op.create_foreign_key(f"{table}_{column}_fkey", table, referent, [column], ["id"])
