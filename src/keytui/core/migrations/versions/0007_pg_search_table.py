"""PostgreSQL: the search index moves off ``keys`` into a table of its own (issue 10).

Migration 0003 put ``pg_trgm`` GIN indexes on keys.name, key_id and owner. An UPDATE of a key
is never HOT (``revoked_at`` is indexed), so every revoke, use-count flush or replacement wrote
a new entry for every trigram of the three values into those indexes, though none of them had
changed; a rolled-back bulk revoke left its entries queued in the indexes' pending lists for
the next writer to merge. A bare UPDATE of 10,000 keys, after one rolled back, took 2.2-3.9 s
with them and 0.8-1.1 s without (a loaded 2-core machine, in the same run).

Now ``keys_search`` (pk, name, key_id, owner) holds the searched text, with the GIN trigram
indexes; triggers on ``keys`` keep it in step on INSERT, DELETE and an UPDATE that changes
name, key_id or owner (a rename; never a revoke or a usage flush). The service's PostgreSQL
search is ``EXISTS (SELECT 1 FROM keys_search s WHERE s.pk = keys.pk AND s.name ILIKE ...)``.
``ix_keys_expires_at`` goes too on PostgreSQL: ``ix_keys_expires_at_revoked_at`` serves every
query it did (SQLite keeps it: there its entries end with the rowid, which gives the
newest-first tie order of an expiry sort).

SQLite is unchanged (its FTS5 index of migration 0003 is a table of its own already).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = ("name", "key_id", "owner")

_SYNC = """
CREATE FUNCTION keys_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO keys_search (pk, name, key_id, owner)
        VALUES (NEW.pk, NEW.name, NEW.key_id, NEW.owner);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE keys_search
        SET pk = NEW.pk, name = NEW.name, key_id = NEW.key_id, owner = NEW.owner
        WHERE pk = OLD.pk;
    ELSE
        DELETE FROM keys_search WHERE pk = OLD.pk;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    # Writers of keys wait for the copy (readers do not): no key is made or renamed between
    # the copy and the triggers.
    op.execute("LOCK TABLE keys IN SHARE MODE")
    op.execute(
        "CREATE TABLE keys_search ("
        "pk integer PRIMARY KEY, name varchar(100) NOT NULL, "
        "key_id varchar(16) NOT NULL, owner varchar(64) NOT NULL)"
    )
    op.execute(_SYNC)
    op.execute(
        "CREATE TRIGGER keys_search_insert AFTER INSERT ON keys "
        "FOR EACH ROW EXECUTE FUNCTION keys_search_sync()"
    )
    # Only when a searched value changes: a revoke, a replacement or a usage flush never
    # touches keys_search.
    op.execute(
        "CREATE TRIGGER keys_search_update AFTER UPDATE OF name, key_id, owner ON keys "
        "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name "
        "OR OLD.key_id IS DISTINCT FROM NEW.key_id OR OLD.owner IS DISTINCT FROM NEW.owner "
        "OR OLD.pk IS DISTINCT FROM NEW.pk) "
        "EXECUTE FUNCTION keys_search_sync()"
    )
    op.execute(
        "CREATE TRIGGER keys_search_delete AFTER DELETE ON keys "
        "FOR EACH ROW EXECUTE FUNCTION keys_search_sync()"
    )
    op.execute(
        "INSERT INTO keys_search (pk, name, key_id, owner) "
        "SELECT pk, name, key_id, owner FROM keys ORDER BY pk"
    )
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in _COLUMNS:  # built after the copy: one sort instead of a million inserts
        op.execute(
            f"CREATE INDEX ix_keys_search_{column}_trgm ON keys_search "
            f"USING gin ({column} gin_trgm_ops)"
        )
        op.execute(f"DROP INDEX IF EXISTS ix_keys_{column}_trgm")
    op.execute("DROP INDEX IF EXISTS ix_keys_expires_at")
    op.execute("ANALYZE keys_search")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    op.execute("CREATE INDEX ix_keys_expires_at ON keys (expires_at)")
    for column in _COLUMNS:
        op.execute(f"CREATE INDEX ix_keys_{column}_trgm ON keys USING gin ({column} gin_trgm_ops)")
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER keys_search_{trigger} ON keys")
    op.execute("DROP FUNCTION keys_search_sync()")
    op.execute("DROP TABLE keys_search")
