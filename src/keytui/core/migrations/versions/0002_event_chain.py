"""The tamper-evident audit log: events.prev_hash and events.hash, back-filled in id order.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from keytui.core.audit import GENESIS, chain_hash
from keytui.core.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("hash", sa.String(64), nullable=True))
    events = sa.table(
        "events",
        sa.column("id", sa.Integer),
        sa.column("at", UTCDateTime()),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("key_id", sa.String),
        sa.column("face", sa.String),
        sa.column("details", sa.Text),
        sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String),
    )
    bind = op.get_bind()
    previous, after = GENESIS, 0
    while True:  # in batches, so a long log never sits in memory at once
        rows = bind.execute(
            sa.select(
                events.c.id,
                events.c.at,
                events.c.actor,
                events.c.action,
                events.c.key_id,
                events.c.face,
                events.c.details,
            )
            .where(events.c.id > after)
            .order_by(events.c.id)
            .limit(5000)
        ).all()
        updates = []
        for row in rows:
            digest = chain_hash(previous, row._mapping)
            updates.append({"row_id": row.id, "prev": previous, "digest": digest})
            previous = digest
        if updates:
            bind.execute(
                events.update()
                .where(events.c.id == sa.bindparam("row_id"))
                .values(prev_hash=sa.bindparam("prev"), hash=sa.bindparam("digest")),
                updates,
            )
        if len(rows) < 5000:
            break
        after = rows[-1].id
    with op.batch_alter_table("events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
