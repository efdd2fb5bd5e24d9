"""Search index over key name, ID and owner: FTS5 trigrams on SQLite, pg_trgm on PostgreSQL.

SQLite: a contentless FTS5 table ``keys_search`` (rowid = keys.pk) with the trigram tokenizer,
kept in step by triggers, back-filled here. Every value is indexed with two ``\\x01`` characters
after it (``keytui.core.search.SEARCH_PAD``: a character no name, ID or login can hold), so that
every occurrence of a 1- or 2-character term starts some indexed trigram: the service finds
short terms through the index's vocabulary instead of a full scan. The index only narrows the
candidates: the service still applies the LIKE condition, so results stay exactly LIKE's.

Both: an index on (expires_at, revoked_at), so the status counts read no table rows.

PostgreSQL: GIN ``gin_trgm_ops`` indexes on name, key_id and owner. The service's search is
``column ILIKE '%term%'`` there (SQLAlchemy's icontains), which these indexes serve as they are
(trigrams are case-folded); indexes on lower(column) would go unused.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from keytui.core.search import padded

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _values(row: str) -> str:
    """A row's name, ID and owner as the index holds them (padded: see core/search.py)."""
    return f"{padded(row + '.name')}, {padded(row + '.key_id')}, {padded(row + '.owner')}"


def upgrade() -> None:
    # The status counts: "expired" (not revoked, expires_at <= now) from this index alone. Not
    # (revoked_at, expires_at): SQLite would take that for "revoked_at IS NULL" everywhere.
    op.create_index("ix_keys_expires_at_revoked_at", "keys", ["expires_at", "revoked_at"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE keys_search USING fts5("
            "name, key_id, owner, content='', tokenize='trigram')"
        )
        # Its vocabulary (the trigrams), read by range for 1- and 2-character terms.
        op.execute("CREATE VIRTUAL TABLE keys_search_vocab USING fts5vocab(keys_search, 'row')")
        op.execute(
            f"INSERT INTO keys_search(rowid, name, key_id, owner) "
            f"SELECT pk, {_values('keys')} FROM keys"
        )
        op.execute(
            f"CREATE TRIGGER keys_search_insert AFTER INSERT ON keys BEGIN "
            f"INSERT INTO keys_search(rowid, name, key_id, owner) "
            f"VALUES (new.pk, {_values('new')}); END"
        )
        op.execute(
            f"CREATE TRIGGER keys_search_delete AFTER DELETE ON keys BEGIN "
            f"INSERT INTO keys_search(keys_search, rowid, name, key_id, owner) "
            f"VALUES ('delete', old.pk, {_values('old')}); END"
        )
        # Only a change to a searched column touches the index (use counts do not).
        op.execute(
            f"CREATE TRIGGER keys_search_update AFTER UPDATE OF name, key_id, owner "
            f"ON keys BEGIN "
            f"INSERT INTO keys_search(keys_search, rowid, name, key_id, owner) "
            f"VALUES ('delete', old.pk, {_values('old')}); "
            f"INSERT INTO keys_search(rowid, name, key_id, owner) "
            f"VALUES (new.pk, {_values('new')}); END"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for column in ("name", "key_id", "owner"):
            op.execute(
                f"CREATE INDEX ix_keys_{column}_trgm ON keys USING gin ({column} gin_trgm_ops)"
            )


def downgrade() -> None:
    op.drop_index("ix_keys_expires_at_revoked_at", "keys")
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS keys_search_{trigger}")
        op.execute("DROP TABLE IF EXISTS keys_search_vocab")
        op.execute("DROP TABLE IF EXISTS keys_search")
    else:
        for column in ("name", "key_id", "owner"):
            op.execute(f"DROP INDEX IF EXISTS ix_keys_{column}_trgm")
