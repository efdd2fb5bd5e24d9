"""Realistic demo data, fast: keys of several owners, roles and states, without argon2 per key.

Every demo key shares one argon2 hash of a secret that is thrown away at once, so no demo key
can ever verify, and a million of them are written in about a minute.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import keyformat
from .audit import append_events, details_json
from .errors import Conflict
from .hashing import hash_secret
from .models import Event, Key, KeyRole, User
from .search import padded
from .service import KeyService

OWNERS = {
    "alice": "developer",
    "bob": "developer",
    "carol": "developer",
    "dave": "viewer",
    "erin": "developer",
    "frank": "developer",
}
EXTRA_ROLES = ("deploy", "metrics-push", "billing")
SERVICES = (
    "billing",
    "checkout",
    "search",
    "ingest",
    "reports",
    "mailer",
    "auth-proxy",
    "inventory",
    "payments",
    "analytics",
    "webhooks",
    "backup",
    "ci",
    "status-page",
    "crm-sync",
    "ledger",
    "notifier",
    "pricing",
    "geo",
    "media",
)
ENVIRONMENTS = ("prod", "staging", "dev", "eu-west", "us-east", "canary")
PURPOSES = (
    "worker",
    "cron",
    "dashboard",
    "exporter",
    "gateway",
    "mobile app",
    "partner",
    "integration",
    "batch",
    "sidecar",
)
HOSTS = (
    (),
    (),
    (),
    ("10.0.0.0/8",),
    ("api.example.com",),
    ("*.internal.example.com",),
    ("192.168.10.4", "192.168.10.5"),
)


# What migration 0003's insert trigger adds to the SQLite search index, for many rows at once.
_INDEX_NEW_ROWS = (
    "INSERT INTO keys_search(rowid, name, key_id, owner) SELECT pk, "
    f"{padded('name')}, {padded('key_id')}, {padded('owner')} "
    "FROM keys WHERE pk > ?"
)
_COLUMNS = (
    "key_id",
    "name",
    "description",
    "owner",
    "role",
    "secret_hash",
    "created_at",
    "updated_at",
    "expires_at",
    "revoked_at",
    "revoked_by",
    "last_used_at",
    "use_count",
    "allowed_hosts",
)


def _demo_rows(
    rng: random.Random,
    count: int,
    now: datetime,
    owners: list[str],
    roles: list[str],
    shared_hash: str,
    revokers: list[str],
    stamp: Callable[[datetime], object],
    taken: set[str],
) -> list[tuple[Any, ...]]:
    """``count`` demo keys as tuples in ``_COLUMNS`` order, oldest first (so pk order is age
    order), each time as ``stamp`` gives it for the driver, no ID among ``taken``. Choices are
    drawn a column at a time: a million rows in seconds."""
    # IDs from random bytes, each mapped onto the alphabet (a slight bias is fine for demo data).
    alphabet, width = keyformat.ID_ALPHABET.encode(), keyformat.ID_LENGTH
    to_id = bytes(alphabet[b % len(alphabet)] for b in range(256))
    ids: list[str] = []
    seen = set(taken)
    while len(ids) < count:
        text = rng.randbytes(width * (count - len(ids))).translate(to_id).decode()
        for start in range(0, len(text), width):
            key_id = text[start : start + width]
            if key_id not in seen:
                seen.add(key_id)
                ids.append(key_id)
    services = rng.choices(SERVICES, k=count)
    purposes = rng.choices(PURPOSES, k=count)
    places = rng.choices(ENVIRONMENTS, k=count)
    row_owners = rng.choices(owners, k=count)
    row_roles = rng.choices(roles, k=count)
    hosts = [json.dumps(list(choice)) for choice in HOSTS]
    row_hosts = rng.choices(hosts, k=count)
    spans = rng.choices((30, 60, 90, 365), k=count)
    random_ = rng.random
    rows = []
    for n in range(count):
        created = now - timedelta(days=730 * (1 - n / count), minutes=int(random_() * 601))
        fate = random_()
        revoked_at = expires_at = last_used = revoked_by = None
        if fate < 0.12:
            revoked_at = created + (now - created) * random_()
            revoked_by = revokers[n & 1]
        elif fate > 0.45:
            expires_at = created + timedelta(days=spans[n])
            if fate < 0.5:  # a few that expire within the week
                expires_at = now + timedelta(days=1 + int(random_() * 6), hours=int(random_() * 24))
        use_count = 0
        if random_() < 0.8:
            minutes = 1 + int(random_() * 60 * 24 * 90)
            last_used = max(created, now - timedelta(minutes=minutes)).replace(
                second=0, microsecond=0
            )
            use_count = 1 + int(random_() * 250_000)
        service_name = services[n]
        created_stamp = stamp(created)
        revoked_stamp = None if revoked_at is None else stamp(revoked_at)
        rows.append(
            (
                ids[n],
                f"{service_name} {purposes[n]} ({places[n]})",
                f"Used by the {service_name} team",
                row_owners[n],
                row_roles[n],
                shared_hash,
                created_stamp,
                revoked_stamp or created_stamp,
                None if expires_at is None else stamp(expires_at),
                revoked_stamp,
                revoked_by,
                None if last_used is None else stamp(last_used),
                use_count,
                row_hosts[n],
            )
        )
    return rows


def _sqlite_time(value: datetime) -> str:
    """What SQLAlchemy's SQLite DateTime stores: naive UTC, always six fraction digits."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _insert_keys(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert many keys in this transaction through the driver's executemany: SQLAlchemy's
    per-row processing would cost more than the insert.

    On SQLite the search index's per-row trigger costs more than the insert itself: it is
    lifted for this one transaction and the new rows are indexed in one statement. When the
    rows outnumber the keys already there, the secondary indexes are dropped and built again
    after the insert (a sort is cheaper than a million scattered B-tree inserts). All of it is
    one transaction: a reader sees the keys and their indexes together or not at all."""
    if not rows:
        return
    connection = session.connection()
    placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO keys ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join([placeholder] * len(_COLUMNS))})"
    )
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(sql, rows)
        return
    run = connection.exec_driver_sql
    trigger = run(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'keys_search_insert'"
    ).scalar()
    after, present = run("SELECT coalesce(max(pk), 0), count(*) FROM keys").one()
    indexes: Sequence[Any] = ()
    if len(rows) > present:
        indexes = run(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'keys' AND sql IS NOT NULL"
        ).all()
    for name, _ in indexes:
        run(f'DROP INDEX "{name}"')
    if trigger is not None:
        run("DROP TRIGGER keys_search_insert")
    run("PRAGMA cache_size = -262144")  # 256 MiB while it lasts, for the unique ID index
    try:
        run(sql, rows)
        for _, create in indexes:
            run(create)
    finally:
        run("PRAGMA cache_size = -2000")  # SQLite's default
    if trigger is not None:
        run(_INDEX_NEW_ROWS, (after,))
        run(trigger)


def _may_seed(service: KeyService, session: Session, users: set[str]) -> None:
    """Demo data (users, roles, keys that bypass the rules) goes only into a database of the
    caller's own: they are its admin, and its only user apart from the demo's own (from an
    earlier seeding). Anywhere else it is refused, and nothing is written."""
    service._writable()
    others = sorted(users - {service.actor})
    seeded = session.scalar(select(Event.id).where(Event.action == "demo.seed").limit(1))
    if others and not (seeded is not None and set(others) <= set(OWNERS)):
        more = ", …" if len(others) > 3 else ""
        raise Conflict(
            "demo data goes only into a database whose only user is you; this one has "
            f"{len(others)} other user(s) ({', '.join(others[:3])}{more}); use a new file or "
            "no --db"
        )
    service._require(session, "users")  # its admin


def seed_demo(service: KeyService, count: int, *, seed: int = 7, chunk: int = 1_000_000) -> None:
    """Add ``count`` demo keys (and their owners and roles) to ``service``'s database."""
    rng = random.Random(seed)
    now = service.now()
    shared_hash = hash_secret(keyformat.new_secret(keyformat.new_key_id()), service.hasher)
    with service.db.write() as session:
        known = set(session.scalars(select(User.login)))
        _may_seed(service, session, known)
        for login, role in OWNERS.items():
            if login not in known:
                session.add(User(login=login, role=role, created_at=now - timedelta(days=400)))
        roles = set(session.scalars(select(KeyRole.name)))
        for role in EXTRA_ROLES:
            if role not in roles:
                session.add(KeyRole(name=role, created_at=now - timedelta(days=400)))
        taken = set(session.scalars(select(Key.key_id))) if count else set()
    stamp = _sqlite_time if service.db.is_sqlite else (lambda value: value)
    rows = _demo_rows(
        rng,
        count,
        now,
        [service.actor, *OWNERS],
        ["read-only", "read-write", *EXTRA_ROLES],
        shared_hash,
        ["alice", service.actor],
        stamp,
        taken,
    )
    starts = list(range(0, len(rows), chunk)) or [0]
    for start in starts:
        with service.db.write() as session:
            _insert_keys(session, rows[start : start + chunk])
            if start == starts[-1]:  # the event commits with the last keys
                append_events(
                    session,
                    [
                        {
                            "at": now,
                            "actor": service.actor,
                            "action": "demo.seed",
                            "key_id": None,
                            "face": service.face,
                            "details": details_json({"keys": len(rows)}),
                        }
                    ],
                )
