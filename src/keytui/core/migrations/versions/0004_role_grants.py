"""Which key roles developers may grant: ``key_roles.developers`` (admins grant any role).

A new or upgraded installation lets developers grant ``read-only`` only; admins mark more
roles with ``keytui roles set NAME --developers``.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("key_roles") as batch:
        batch.add_column(
            sa.Column("developers", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.execute(sa.text("UPDATE key_roles SET developers = true WHERE name = 'read-only'"))


def downgrade() -> None:
    with op.batch_alter_table("key_roles") as batch:
        batch.drop_column("developers")
