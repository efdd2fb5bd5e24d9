"""Whether revoking, replacing and deleting keys needs a reason: ``settings.require_reason``
(off in a new or upgraded installation; an admin turns it on in settings).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("settings") as batch:
        batch.add_column(
            sa.Column("require_reason", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("settings") as batch:
        batch.drop_column("require_reason")
