"""db.HEAD_REVISION (which lets an up-to-date database open without Alembic) is Alembic's head."""

from __future__ import annotations

from alembic.script import ScriptDirectory
from sqlalchemy import text

from keytui.core.db import HEAD_REVISION, alembic_config, current_revision, open_database


def test_head_revision_matches_the_migrations(sqlite_url):
    database = open_database(sqlite_url)
    try:
        script = ScriptDirectory.from_config(alembic_config(database))
        assert script.get_heads() == [HEAD_REVISION]
        assert current_revision(database) == HEAD_REVISION
    finally:
        database.dispose()


def test_opening_an_old_database_upgrades_it(sqlite_url):
    from keytui.core.db import upgrade

    database = open_database(sqlite_url, migrate=False)
    try:
        upgrade(database, "0001")
        assert current_revision(database) == "0001"
    finally:
        database.dispose()
    database = open_database(sqlite_url)
    try:
        assert current_revision(database) == HEAD_REVISION
        with database.engine.connect() as connection:
            roles = connection.execute(text("SELECT name FROM key_roles ORDER BY name")).all()
        assert [r[0] for r in roles] == ["read-only", "read-write"]
    finally:
        database.dispose()
