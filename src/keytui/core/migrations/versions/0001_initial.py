"""The first schema: keys, users, key roles, settings, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(16), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("use_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("allowed_hosts", sa.Text, nullable=False, server_default="[]"),
    )
    op.create_index("ix_keys_owner", "keys", ["owner"])
    op.create_index("ix_keys_name", "keys", ["name"])
    op.create_index("ix_keys_expires_at", "keys", ["expires_at"])
    op.create_index("ix_keys_revoked_at", "keys", ["revoked_at"])
    op.create_table(
        "users",
        sa.Column("login", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    key_roles = op.create_table(
        "key_roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
    )
    settings = op.create_table(
        "settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("keys_enabled", sa.Boolean, nullable=False),
        sa.Column("max_expiry_days", sa.Integer, nullable=True),
        sa.Column("max_keys_per_user", sa.Integer, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("face", sa.String(16), nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_events_action", "events", ["action"])
    op.create_index("ix_events_key_id", "events", ["key_id"])
    # A new installation: keys enabled, no maximum expiry, 100 keys per user, two key roles.
    op.bulk_insert(
        settings,
        [{"id": 1, "keys_enabled": True, "max_expiry_days": None, "max_keys_per_user": 100}],
    )
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # SQLite keeps no zone; keytui stores UTC
    op.bulk_insert(
        key_roles,
        [{"name": "read-only", "created_at": now}, {"name": "read-write", "created_at": now}],
    )


def downgrade() -> None:
    for table in ("events", "settings", "key_roles", "users", "keys"):
        op.drop_table(table)
