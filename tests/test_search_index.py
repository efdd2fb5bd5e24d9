"""The search index (migration 0003): results stay exactly LIKE's, the index stays in step with
every change, an upgraded database gains it, and capped counts and status counts are right."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, text

from keytui.core import db as dbmod
from keytui.core.db import open_database
from keytui.core.demo import seed_demo
from keytui.core.filter import quoted
from keytui.core.models import Key
from keytui.core.service import SAMPLE_ROWS, KeyQuery, KeyService

from .conftest import FAST_HASHER, NOW

ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def like(value: str, term: str, sqlite: bool) -> bool:
    """LIKE '%term%' as keytui means it: on SQLite ASCII letters match either case and every
    other character only itself; PostgreSQL's lower() folds every letter."""
    if sqlite:
        return term.translate(ASCII_FOLD) in value.translate(ASCII_FOLD)
    return term.lower() in value.lower()


def expected(service: KeyService, term: str, phrase: bool = False) -> list[str]:
    """The keys whose name, ID or owner holds each word of ``term`` (words AND together), or
    the whole ``phrase``."""
    everything = service.list_keys(KeyQuery(limit=100_000))
    sqlite = service.db.is_sqlite
    return [
        k.id
        for k in everything.keys
        if all(
            like(k.name, word, sqlite) or like(k.id, word, sqlite) or like(k.owner, word, sqlite)
            for word in ([term] if phrase else term.split())
        )
    ]


def found(service: KeyService, term: str, **query) -> list[str]:
    return [k.id for k in service.list_keys(KeyQuery(search=term, limit=100_000, **query)).keys]


def fts_rows(service: KeyService, term: str) -> set[int]:
    phrase = '"' + term.replace('"', '""') + '"'
    with service.db.read() as session:
        return set(
            session.scalars(
                text("SELECT rowid FROM keys_search WHERE keys_search MATCH :q"), {"q": phrase}
            )
        )


@pytest.fixture
def seeded(make_service) -> KeyService:
    """More keys than the sample, so a term is judged common or rare as at scale."""
    service = make_service("alice")
    seed_demo(service, SAMPLE_ROWS + 600)
    odd = [
        "Überweisung ÉTÉ",
        "Straße ẞ",
        "ΣΟΦΙΑ ς",
        "İstanbul",
        'say "hi"',
        "100% _ok_",
        "a\\b [x]",
        "日本語キー",
        "qq",
    ]
    service.update_settings(max_keys_per_user=1000)
    for name in odd:
        service.create_key(name, expires=None)
    return service


TERMS = [
    "a",
    "A",
    "q",
    "qq",
    "zq",
    "9",
    "ab",
    "é",
    "É",
    "ß",
    "ẞ",
    "ς",
    "σ",
    "Σ",
    "i",
    "İ",
    "日",
    "本語",
    '"',
    '"h',
    "%",
    "_",
    "\\",
    "[x",
    "prod",
    "PROD",
    "Prod)",
    "(prod)",
    "ledger",
    "ledger cron",
    "alice",
    "zzzqx",
    "über",
    "ÜBER",
    "straße",
    "日本語キ",
    'say "',
    "x]",
]


def test_search_is_exactly_like(seeded):
    for term in TERMS:
        if not seeded.db.is_sqlite and not term.isascii():
            continue  # PostgreSQL's lower() beyond ASCII depends on the server's locale
        assert found(seeded, quoted(term, free=True)) == expected(seeded, term, phrase=True), term


def test_search_with_status_and_order_is_exactly_like(seeded):
    for term in ("a", "zq", "ledger", "é"):
        for status in ("active", "expired", "revoked"):
            got = found(seeded, term, status=status, sort="name", descending=False)
            want = {k.id for k in seeded.list_keys(KeyQuery(status=status, limit=100_000)).keys}
            assert set(got) == set(expected(seeded, term)) & want, (term, status)
            assert seeded.count_keys(term, status) == len(got)


def test_capped_count_stops_past_the_cap(seeded):
    for term in ("a", "q", "zq", "prod", "ledger", "zzzqx", "é"):
        full = len(expected(seeded, term))
        assert seeded.count_keys(term) == full, term
        for cap in (0, 5, 100, 100_000):
            assert seeded.count_keys(term, cap=cap) == min(full, cap + 1), (term, cap)


def test_search_on_both_databases(admin):
    for name in ("Billing Worker", "metrics push", "Ledger (prod)"):
        admin.create_key(name, expires=None)
    assert [k.name for k in admin.list_keys(KeyQuery(search="LEDGER")).keys] == ["Ledger (prod)"]
    assert len(admin.list_keys(KeyQuery(search="r")).keys) == 3
    assert admin.count_keys("ing", cap=10) == 1
    assert admin.count_keys("e", cap=1) == 2
    assert admin.list_keys(KeyQuery(search="nothing like it")).keys == ()


def test_index_stays_in_step_after_create_rename_delete(admin):
    issued = admin.create_key("alpha service", expires=None)
    key_id = issued.key.id
    assert found(admin, "alpha") == [key_id]
    assert found(admin, key_id[2:7]) == [key_id]
    admin.rename_key(key_id, name="omega gateway")
    assert found(admin, "alpha") == []
    assert found(admin, "mega g") == [key_id]
    admin.revoke_keys([key_id])
    assert found(admin, "omega") == [key_id]
    admin.delete_keys([key_id])
    assert found(admin, "omega") == []
    assert found(admin, key_id) == []
    if admin.db.is_sqlite:  # and the index itself holds nothing stale
        assert fts_rows(admin, "alpha") == set()
        assert fts_rows(admin, "omega") == set()


def test_index_matches_the_table_after_bulk_demo_seeding(sqlite_url, clock):
    service = KeyService.open(sqlite_url, actor="alice", clock=clock, hasher=FAST_HASHER)
    seed_demo(service, 1_500, chunk=400)  # the bulk path indexes each chunk in one statement
    service.update_settings(max_keys_per_user=1000)
    service.create_key("after the seed", expires=None)  # and the per-row trigger is back
    with service.db.read() as session:
        keys = session.execute(text("SELECT pk, key_id FROM keys")).all()
        triggers = set(
            session.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        )
    assert len(keys) == 1_501
    for pk, key_id in keys:  # every key, found by its ID through the index alone
        assert pk in fts_rows(service, key_id)
    assert {"keys_search_insert", "keys_search_update", "keys_search_delete"} <= triggers
    service.update_settings(max_keys_per_user=1000)
    for term in ("after the", "prod", "ci", "x"):
        assert found(service, term) == expected(service, term)
    service.close()


def test_upgraded_0002_database_gains_the_index(db_url, clock):
    database = open_database(db_url, migrate=False)
    dbmod.upgrade(database, "0002")
    with database.write() as session:
        session.execute(
            insert(Key.__table__),
            [
                {
                    "key_id": f"old{i:07d}",
                    "name": f"legacy {name}",
                    "description": "",
                    "owner": "alice",
                    "role": "read-only",
                    "secret_hash": "$argon2id$x",
                    "created_at": NOW,
                    "updated_at": NOW,
                    "use_count": 0,
                    "allowed_hosts": "[]",
                }
                for i, name in enumerate(["billing", "Reports", "ingest"])
            ],
        )
    database.dispose()
    service = KeyService.open(db_url, actor="alice", clock=clock, hasher=FAST_HASHER)
    assert dbmod.current_revision(service.db) == dbmod.HEAD_REVISION
    assert found(service, "REPORT") == ["old0000001"]
    assert found(service, "legacy") == ["old0000002", "old0000001", "old0000000"]
    with service.db.read() as session:
        if service.db.is_sqlite:
            assert fts_rows(service, "legacy") == {1, 2, 3}
        else:
            indexes = set(
                session.scalars(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'keys_search'")
                )
            )
            assert {
                "ix_keys_search_name_trgm",
                "ix_keys_search_key_id_trgm",
                "ix_keys_search_owner_trgm",
            } <= indexes
            assert session.scalar(text("SELECT count(*) FROM keys_search")) == 3
    service.close()


def test_status_counts_agree_with_the_filters(seeded):
    counts = seeded.counts()
    for status in ("active", "expired", "revoked"):
        assert getattr(counts, status) == seeded.count_keys(status=status)
    assert counts.total == seeded.count_keys()


def test_fts_string_quoting_never_breaks_a_query(seeded):
    for term in ['"', '""', 'a"b', "AND", "OR x", "NEAR(a b)", "*", "col:x", "^ab", "-x-", "(("]:
        assert found(seeded, quoted(term, free=True)) == expected(seeded, term, phrase=True), term
