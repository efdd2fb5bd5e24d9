"""Migration 0007: on PostgreSQL the searched text lives in ``keys_search`` (its trigram indexes
off ``keys``, so a revoke writes none of them). An upgrade from 0004 keeps every search's
results, the table follows every create, rename and delete (and no revoke or usage flush
writes it), and the bulk writers (revoke, delete, remove_user) share one path."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import and_, insert, not_, select, text

from keytui.core import db as dbmod
from keytui.core import keyformat
from keytui.core.db import open_database
from keytui.core.demo import ENVIRONMENTS, PURPOSES, SERVICES, seed_demo
from keytui.core.demo import OWNERS as DEMO_USERS
from keytui.core.models import Event, Key
from keytui.core.search import like
from keytui.core.service import KeyQuery, KeyService

from .conftest import FAST_HASHER, NOW

ODD_NAMES = [
    "Überweisung ÉTÉ",
    "Straße ẞ",
    "ΣΟΦΙΑ ς",
    'say "hi"',
    "100% _ok_",
    "a\\b [x]",
    "日本語キー",
    "qq",
]
OWNERS = ["alice", "bob", "carol", "dave-ops", "erin"]
# Free words, phrases, name:, negations, and terms of every length and kind.
TERMS = [
    "a",
    "q",
    "qq",
    "prod",
    "PROD",
    "ledger cron",
    "bob",
    "ali",
    "ü",
    "straße",
    "%",
    "_",
    "\\",
    '"h',
    "日本",
    "zzzqx",
    "name:prod",
    "name:bob",
    "-prod",
    "ledger -cron",
    "-name:worker bob",
]


def _old_conditions(term: str, sqlite: bool) -> list:
    """What the service searched for ``term`` at revision 0004, written out: a free word is
    a substring of name, ID or owner; ``name:`` of the name; ``-`` negates."""
    conditions = []
    for word in term.split():
        negated = word.startswith("-")
        word = word.removeprefix("-")
        if word.startswith("name:"):
            condition = like(word.removeprefix("name:"), sqlite, name_only=True)
        else:
            condition = like(word, sqlite)
        conditions.append(not_(condition) if negated else condition)
    return conditions


def _rows(count: int) -> list[dict]:
    chooser = random.Random(10)
    taken: set[str] = set()
    rows = []
    for n in range(count):
        key_id = keyformat.new_key_id()
        while key_id in taken:
            key_id = keyformat.new_key_id()
        taken.add(key_id)
        if n < len(ODD_NAMES):
            name = ODD_NAMES[n]
        else:
            name = " ".join(
                [chooser.choice(SERVICES), chooser.choice(ENVIRONMENTS), chooser.choice(PURPOSES)]
            )
        revoked = NOW - timedelta(days=1) if n % 7 == 3 else None
        rows.append(
            {
                "key_id": key_id,
                "name": name,
                "description": "",
                "owner": chooser.choice(OWNERS),
                "role": "read-only",
                "secret_hash": "$argon2id$x",
                "created_at": NOW - timedelta(days=30),
                "updated_at": NOW - timedelta(days=30),
                "expires_at": NOW - timedelta(days=2) if n % 11 == 5 else None,
                "revoked_at": revoked,
                "revoked_by": "alice" if revoked else None,
                "use_count": 0,
                "allowed_hosts": "[]",
            }
        )
    return rows


def _search_rows(service: KeyService) -> set[tuple[int, str, str, str]]:
    with service.db.read() as session:
        return {
            (row[0], row[1], row[2], row[3])
            for row in session.execute(text("SELECT pk, name, key_id, owner FROM keys_search"))
        }


def _key_rows(service: KeyService) -> set[tuple[int, str, str, str]]:
    with service.db.read() as session:
        return {
            (row[0], row[1], row[2], row[3])
            for row in session.execute(text("SELECT pk, name, key_id, owner FROM keys"))
        }


def _indexes(service: KeyService, table: str) -> set[str]:
    with service.db.read() as session:
        if service.db.is_sqlite:
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE tablename = :t"
        return set(session.scalars(text(query), {"t": table}))


def _found(service: KeyService, term: str) -> list[str]:
    return [k.id for k in service.list_keys(KeyQuery(search=term, limit=100_000)).keys]


def test_an_upgrade_from_0004_keeps_every_search_result(db_url, clock):
    database = open_database(db_url, migrate=False)
    dbmod.upgrade(database, "0004")
    with database.write() as session:
        session.execute(insert(Key.__table__), _rows(700))
    before: dict[str, list[str]] = {}
    with database.read() as session:
        for term in TERMS:
            before[term] = list(
                session.scalars(
                    select(Key.key_id)
                    .where(and_(*_old_conditions(term, database.is_sqlite)))
                    .order_by(Key.pk.desc())
                )
            )
    database.dispose()
    assert all(before[t] for t in ("prod", "-prod", "name:prod", "bob", "qq", "日本", "%"))

    service = KeyService.open(db_url, actor="alice", clock=clock, hasher=FAST_HASHER)
    try:
        assert dbmod.current_revision(service.db) == dbmod.HEAD_REVISION
        for term in TERMS:
            assert _found(service, term) == before[term], term
            assert service.count_keys(term) == len(before[term]), term
            assert service.count_keys(term, cap=20) == min(len(before[term]), 21), term
        keys_indexes = _indexes(service, "keys")
        if service.db.is_sqlite:  # unchanged there
            assert "ix_keys_expires_at" in keys_indexes
        else:
            assert _search_rows(service) == _key_rows(service)
            assert not {i for i in keys_indexes if i.endswith("_trgm")}
            assert "ix_keys_expires_at" not in keys_indexes  # the composite serves it
            assert "ix_keys_expires_at_revoked_at" in keys_indexes
            assert {
                "ix_keys_search_name_trgm",
                "ix_keys_search_key_id_trgm",
                "ix_keys_search_owner_trgm",
            } <= _indexes(service, "keys_search")
    finally:
        service.close()


def test_a_downgrade_to_0004_and_back_keeps_the_search(db_url, clock):
    """0007's downgrade puts the trigram indexes back on keys; upgrading again rebuilds
    keys_search from keys, so a key made in between is found."""
    service = KeyService.open(db_url, actor="alice", clock=clock, hasher=FAST_HASHER)
    first = service.create_key("before the downgrade", expires=None).key.id
    service.close()
    database = open_database(db_url, migrate=False)
    from alembic import command

    config = dbmod.alembic_config(database)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    with database.write() as session:
        rows = _rows(1)
        rows[0]["name"] = "made at 0004"
        session.execute(insert(Key.__table__), rows)
        if not database.is_sqlite:
            indexes = set(
                session.scalars(text("SELECT indexname FROM pg_indexes WHERE tablename = 'keys'"))
            )
            assert {"ix_keys_name_trgm", "ix_keys_expires_at"} <= indexes
    database.dispose()
    service = KeyService.open(db_url, actor="alice", clock=clock, hasher=FAST_HASHER)
    try:
        assert _found(service, "before the") == [first]
        assert _found(service, "MADE AT") == [rows[0]["key_id"]]
        if not service.db.is_sqlite:
            assert _search_rows(service) == _key_rows(service)
    finally:
        service.close()


def _xmin(service: KeyService, pk: int) -> str:
    """The transaction that last wrote the key's keys_search row (PostgreSQL)."""
    with service.db.read() as session:
        found = session.scalar(
            text("SELECT xmin::text FROM keys_search WHERE pk = :pk"), {"pk": pk}
        )
    assert found is not None
    return str(found)


def test_the_search_follows_a_rename_and_a_delete_and_nothing_else(admin):
    issued = admin.create_key("alpha service", expires=None)
    key_id = issued.key.id
    assert _found(admin, "alpha") == [key_id]
    admin.rename_key(key_id, name="omega gateway")
    # Found by its new name (every way a search reaches the name), no longer by the old one.
    assert _found(admin, "alpha") == []
    assert _found(admin, "OMEGA") == [key_id]
    assert _found(admin, "mega g") == [key_id]
    assert _found(admin, "name:gateway") == [key_id]
    assert _found(admin, "-omega") == []
    assert _found(admin, "omega -gateway") == []
    assert admin.count_keys("omega", cap=10) == 1
    postgres = not admin.db.is_sqlite
    with admin.db.read() as session:
        pk = session.scalar(select(Key.pk).where(Key.key_id == key_id))
    assert pk is not None
    if postgres:
        assert _search_rows(admin) == {(pk, "omega gateway", key_id, "alice")}
        renamed = _xmin(admin, pk)
        admin.rename_key(key_id, description="only the description")  # no searched column
        assert _xmin(admin, pk) == renamed
    # Using, replacing and revoking the key change keys, never what is searched.
    admin.verify(admin.replace_key(key_id).secret)
    admin.flush_usage()
    admin.revoke_keys([key_id])
    assert _found(admin, "omega") == [key_id]
    if postgres:
        assert _xmin(admin, pk) == renamed
    admin.delete_keys([key_id])
    assert _found(admin, "omega") == []
    assert _found(admin, key_id) == []
    if postgres:
        assert _search_rows(admin) == set()


@pytest.mark.parametrize("count", [1, 1_100])  # more than one statement's worth on SQLite
def test_a_bulk_delete_is_all_or_none_and_leaves_the_search_in_step(admin, count):
    seed_demo(admin, count + 20)
    with admin.db.read() as session:
        ids = list(session.scalars(select(Key.key_id).order_by(Key.pk)))
    doomed, kept = ids[:count], ids[count:]
    with pytest.raises(Exception, match="no key with ID"):
        admin.delete_keys([*doomed, keyformat.new_key_id()])
    assert len(_found(admin, "")) == len(ids)  # refused: nothing changed
    deleted = admin.delete_keys(list(reversed(doomed)))
    assert [k.id for k in deleted] == list(reversed(doomed))
    assert sorted(_found(admin, "")) == sorted(kept)
    with admin.db.read() as session:
        events = list(
            session.scalars(
                select(Event.key_id).where(Event.action == "key.delete").order_by(Event.id)
            )
        )
    assert events == list(reversed(doomed))
    if not admin.db.is_sqlite:
        assert _search_rows(admin) == _key_rows(admin)
    assert admin.verify_event_chain().ok


def test_a_developer_may_not_bulk_delete_another_owners_key(admin, make_service):
    admin.add_user("bob", "developer")
    bob = make_service("bob")
    own = bob.create_key("bob's own").key.id
    theirs = admin.create_key("alice's").key.id
    with pytest.raises(Exception, match="belongs to alice"):
        bob.delete_keys([own, theirs])
    assert sorted(_found(admin, "")) == sorted([own, theirs])  # all or none
    bob.delete_keys([own])
    assert _found(admin, "") == [theirs]


def test_removing_a_user_with_their_keys_revokes_exactly_theirs(admin):
    seed_demo(admin, 1_200)
    now = admin.now()
    everything = admin.list_keys(KeyQuery(limit=100_000)).keys
    active = {k.owner: 0 for k in everything}
    for k in everything:
        if k.status == "active":
            active[k.owner] += 1
    owner = max((o for o in DEMO_USERS if o != "alice"), key=lambda o: active.get(o, 0))
    theirs = {k.id for k in everything if k.owner == owner and k.status == "active"}
    assert len(theirs) == active[owner] > 1
    before = {k.id: k for k in everything}
    with admin.db.read() as session:
        last_event = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    assert admin.remove_user(owner, revoke_keys=True) == len(theirs)
    after = {k.id: k for k in admin.list_keys(KeyQuery(limit=100_000)).keys}
    for key_id, key in after.items():
        if key_id in theirs:
            assert key.status == "revoked" and key.revoked_by == "alice", key_id
            assert key.revoked_at == now
        else:
            assert key == before[key_id], key_id
    with admin.db.read() as session:
        revoked = list(
            session.scalars(
                select(Event.key_id)
                .where(Event.action == "key.revoke", Event.id > last_event)
                .order_by(Event.id)
            )
        )
    assert sorted(revoked) == sorted(theirs) and len(revoked) == len(theirs)
    assert admin.verify_event_chain().ok
