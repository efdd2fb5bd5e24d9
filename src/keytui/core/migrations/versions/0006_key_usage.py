"""Verifications per key per hour, by outcome: ``key_usage`` (kept 90 days, see core/usage.py).

One row per key and hour (``hour``: whole hours since 1970-01-01 UTC), a count per outcome,
and the last use and the last refusal of that hour with the client host each came from.
Written only by the verifiers' background flush, which adds to a row (``INSERT ... ON CONFLICT
DO UPDATE``), so verifiers on several hosts never overwrite each other's counts. No foreign
key: a key's delete removes its rows itself, and a flush never waits on the keys table's locks.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
# The chain is 0004 -> 0005 (settings.require_reason) -> 0006; until 0005 is on this branch,
# this one follows 0004 (the lead sets it to "0005" when merging).
down_revision = "0005"
branch_labels = None
depends_on = None

OUTCOMES = ("valid", "revoked", "expired", "disabled", "host_denied", "wrong_secret", "throttled")


def upgrade() -> None:
    op.create_table(
        "key_usage",
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        *(
            sa.Column(outcome, sa.Integer, nullable=False, server_default="0")
            for outcome in OUTCOMES
        ),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_host", sa.String(255), nullable=True),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_host", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("key_id", "hour", name="pk_key_usage"),
        sqlite_with_rowid=False,
    )
    # Pruning (hours older than 90 days) and "which keys were busy this hour" (heavy use).
    op.create_index("ix_key_usage_hour", "key_usage", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_key_usage_hour", "key_usage")
    op.drop_table("key_usage")
