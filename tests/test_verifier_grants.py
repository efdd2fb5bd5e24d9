"""Issue 10: the README's grants for a verifier on PostgreSQL are exactly enough. A role with
only those opens the database, verifies keys (good, wrong, unknown), writes use counts and
key.verify_failed events; and cannot change a key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from keytui.core import keyformat
from keytui.core.db import open_database
from keytui.core.errors import KeytuiError
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, altered

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.postgres


def readme_grants() -> list[str]:
    """The GRANT statements in the README's verifier block."""
    text_ = README.read_text()
    block = text_[text_.index("-- a verifier's role") :]
    block = block[: block.index("```")]
    return [line.strip() for line in block.splitlines() if line.strip().startswith("GRANT")]


def test_the_readme_grants_are_enough_for_a_verifier_and_no_more(postgres_url):
    from .conftest import reset_postgres

    reset_postgres(postgres_url)
    admin = KeyService.open(postgres_url, actor="alice", hasher=FAST_HASHER)
    issued = admin.create_key("served")
    url = make_url(postgres_url)
    role = "keytui_verifier_test"
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    grants = readme_grants()
    assert grants, "the README shows the verifier's grants"
    with owner.connect() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
        connection.execute(text(f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}'))
        for grant in grants:
            connection.execute(text(re.sub(r"\bverifier\b", role, grant).rstrip(";")))
    verifier = None
    try:
        verifier = KeyService(
            open_database(url.set(username=role).render_as_string(hide_password=False)),
            actor="nginx",
            hasher=FAST_HASHER,
        )
        verifier.bootstrap()  # finds users: no write
        assert verifier.verify(issued.secret).valid
        assert not verifier.verify(altered(issued.secret)).valid
        wrong = keyformat.new_secret(issued.key.id)  # well-formed, the key's ID, not its secret
        assert not verifier.verify(wrong).valid
        assert verifier.verify(keyformat.new_secret(keyformat.new_key_id())).code == "NOT_FOUND"
        verifier.flush_usage()  # use counts and a key.verify_failed event
        assert admin.get_key(issued.key.id).use_count == 1
        counted = admin.key_usage(issued.key.id).outcomes_24h  # key_usage: its own grant
        assert (counted["valid"], counted["wrong_secret"]) == (1, 1)
        assert admin.list_events(action="key.verify_failed")
        assert admin.verify_event_chain().ok
        # The database itself refuses a change (the CLI shows it as one line).
        as_alice = KeyService(verifier.db, actor="alice", hasher=FAST_HASHER)
        with pytest.raises((KeytuiError, SQLAlchemyError), match="permission denied"):
            as_alice.create_key("nope")
        with pytest.raises((KeytuiError, SQLAlchemyError), match="permission denied"):
            as_alice.revoke_key(issued.key.id)
        assert admin.get_key(issued.key.id).status == "active"
        assert admin.count_keys() == 1
        with owner.connect() as connection:
            denied = connection.execute(
                text(
                    "SELECT has_table_privilege(:r, 'keys', 'INSERT'), "
                    "has_table_privilege(:r, 'keys', 'DELETE'), "
                    "has_table_privilege(:r, 'users', 'INSERT'), "
                    "has_table_privilege(:r, 'events', 'UPDATE'), "
                    "has_table_privilege(:r, 'events', 'DELETE')"
                ),
                {"r": role},
            ).one()
        assert not any(denied)
    finally:
        if verifier is not None:
            verifier.close()
        admin.close()
        with owner.connect() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))
        owner.dispose()
