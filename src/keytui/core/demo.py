"""Realistic demo data, fast: keys of several owners, roles and states, without argon2 per key.

Every demo key shares one argon2 hash of a secret that is thrown away at once, so no demo key
can ever verify, and a million of them are written in about a minute.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from . import keyformat
from .hashing import hash_secret
from .audit import append_events, details_json
from .models import Key, KeyRole, User
from .service import KeyService

OWNERS = {"alice": "developer", "bob": "developer", "carol": "developer", "dave": "viewer",
          "erin": "developer", "frank": "developer"}
EXTRA_ROLES = ("deploy", "metrics-push", "billing")
SERVICES = ("billing", "checkout", "search", "ingest", "reports", "mailer", "auth-proxy",
            "inventory", "payments", "analytics", "webhooks", "backup", "ci", "status-page",
            "crm-sync", "ledger", "notifier", "pricing", "geo", "media")
ENVIRONMENTS = ("prod", "staging", "dev", "eu-west", "us-east", "canary")
PURPOSES = ("worker", "cron", "dashboard", "exporter", "gateway", "mobile app", "partner",
            "integration", "batch", "sidecar")
HOSTS = ((), (), (), ("10.0.0.0/8",), ("api.example.com",), ("*.internal.example.com",),
         ("192.168.10.4", "192.168.10.5"))


# What migration 0003's insert trigger adds to the SQLite search index, for many rows at once.
_INDEX_NEW_ROWS = ("INSERT INTO keys_search(rowid, name, key_id, owner) SELECT pk, "
                   "name || char(1, 1), key_id || char(1, 1), owner || char(1, 1) "
                   "FROM keys WHERE pk > ?")


def _insert_keys(session, rows: list[dict]) -> None:
    """Insert many keys in this transaction by Core executemany (the ORM's bulk path is
    slower). On SQLite the search index's per-row trigger costs more than the insert itself:
    it is lifted for this one transaction and the new rows are indexed in one statement."""
    connection = session.connection()
    trigger = None
    if connection.dialect.name == "sqlite":
        trigger = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' "
            "AND name = 'keys_search_insert'").scalar()
    if trigger is None:
        connection.execute(insert(Key.__table__), rows)
        return
    after = connection.execute(select(func.max(Key.pk))).scalar() or 0
    connection.exec_driver_sql("DROP TRIGGER keys_search_insert")
    connection.execute(insert(Key.__table__), rows)
    connection.exec_driver_sql(_INDEX_NEW_ROWS, (after,))
    connection.exec_driver_sql(trigger)


def seed_demo(service: KeyService, count: int, *, seed: int = 7, chunk: int = 10_000) -> None:
    """Add ``count`` demo keys (and their owners and roles) to ``service``'s database."""
    rng = random.Random(seed)
    now = service.now()
    shared_hash = hash_secret(keyformat.new_secret(keyformat.new_key_id()), service.hasher)
    owners = [service.actor, *OWNERS]
    with service.db.write() as session:
        known = set(session.scalars(select(User.login)))
        for login, role in OWNERS.items():
            if login not in known:
                session.add(User(login=login, role=role, created_at=now - timedelta(days=400)))
        roles = set(session.scalars(select(KeyRole.name)))
        for role in EXTRA_ROLES:
            if role not in roles:
                session.add(KeyRole(name=role, created_at=now - timedelta(days=400)))
    roles = ["read-only", "read-write", *EXTRA_ROLES]
    taken: set[str] = set()
    made = 0
    while made < count:
        rows = []
        for _ in range(min(chunk, count - made)):
            key_id = "".join(rng.choice(keyformat.ID_ALPHABET) for _ in range(keyformat.ID_LENGTH))
            if key_id in taken:
                continue
            taken.add(key_id)
            # Spread creation over the past two years, oldest first, so pk order is age order.
            created = now - timedelta(days=730 * (1 - (made + len(rows)) / max(count, 1)),
                                      minutes=rng.randint(0, 600))
            fate = rng.random()
            revoked_at = expires_at = last_used = None
            revoked_by = None
            if fate < 0.12:
                revoked_at = created + (now - created) * rng.random()
                revoked_by = rng.choice(["alice", service.actor])
            if fate > 0.45:
                span = rng.choice((30, 60, 90, 365))
                expires_at = created + timedelta(days=span)
                if 0.45 < fate < 0.5:  # a few that expire within the week
                    expires_at = now + timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 23))
            if rng.random() < 0.8:
                last_used = max(created, now - timedelta(minutes=rng.randint(1, 60 * 24 * 90)))
                last_used = last_used.replace(second=0, microsecond=0)
            service_name = rng.choice(SERVICES)
            rows.append({
                "key_id": key_id,
                "name": f"{service_name} {rng.choice(PURPOSES)} ({rng.choice(ENVIRONMENTS)})",
                "description": f"Used by the {service_name} team",
                "owner": rng.choice(owners), "role": rng.choice(roles),
                "secret_hash": shared_hash, "created_at": created,
                "updated_at": revoked_at or created, "expires_at": expires_at,
                "revoked_at": revoked_at, "revoked_by": revoked_by, "last_used_at": last_used,
                "use_count": rng.randint(1, 250_000) if last_used else 0,
                "allowed_hosts": json.dumps(list(rng.choice(HOSTS))),
            })
        with service.db.write() as session:
            _insert_keys(session, rows)
        made += len(rows)
    with service.db.write() as session:
        append_events(session, [{
            "at": now, "actor": service.actor, "action": "demo.seed", "key_id": None,
            "face": service.face, "details": details_json({"keys": count}),
        }])


FIXTURE_NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def fixture_service(path: str, *, keys: int = 60, actor: str = "alice") -> KeyService:
    """The fixed database the snapshot tests and the screenshot script share: a frozen clock,
    seeded keys, and a few keys chosen to show the edge cases (markup in a name, an escape
    sequence, a key about to expire). Same inputs, same pixels."""
    from .clock import FrozenClock
    from .hashing import make_hasher

    service = KeyService.open(path, actor=actor, face="tui", clock=FrozenClock(FIXTURE_NOW),
                              hasher=make_hasher(time_cost=1, memory_cost=1024))
    if keys:
        seed_demo(service, keys)
        now = FIXTURE_NOW
        special = dict(secret_hash="$argon2id$fixture", created_at=now - timedelta(hours=3),
                       updated_at=now - timedelta(hours=3), use_count=0, revoked_at=None,
                       revoked_by=None, last_used_at=None)
        with service.db.write() as session:  # fixed IDs, so pictures never change
            session.execute(insert(Key), [
                {**special, "key_id": "markup0001", "name": "[b]x looks like markup",
                 "description": "escape \x1b[2J kept harmless", "owner": "bob",
                 "role": "read-write", "expires_at": now + timedelta(days=5),
                 "allowed_hosts": "[]"},
                {**special, "key_id": "deploy0001", "name": "deploy bot (prod)",
                 "description": "", "owner": actor, "role": "deploy",
                 "expires_at": now + timedelta(days=90),
                 "allowed_hosts": '["10.0.0.0/8", "ci.example.com"]'},
            ])
        # A little history for the details and events screens (the new secret is dropped).
        service.rename_key("deploy0001", description="CI deploys to production")
        service.replace_key("deploy0001")
        service.revoke_keys([service.list_keys().keys[3].id])
    return service
