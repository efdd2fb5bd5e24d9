"""Realistic demo data, fast: keys of several owners, roles and states, without argon2 per key.

Every demo key shares one argon2 hash of a secret that is thrown away at once, so no demo key
can ever verify, and a million of them are written in about a minute.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import keyformat
from .audit import append_events, details_json
from .errors import Conflict
from .hashing import hash_secret
from .models import Event, Key, KeyRole, Settings, User
from .search import padded, status_filter
from .service import KeyService
from .values import iso_utc

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
    stamp: Callable[[datetime], object],
    taken: set[str],
    plan: _OwnerPlan,
) -> tuple[list[tuple[Any, ...]], list[tuple[datetime, str, str, str, str]]]:
    """``count`` demo keys as tuples in ``_COLUMNS`` order, oldest first (so pk order is age
    order), each time as ``stamp`` gives it for the driver, no ID among ``taken``; and their
    history as (time, actor, action, key ID, details) in time order: a ``key.create`` for every
    key, a ``key.revoke`` for every revoked one. Choices are drawn a column at a time: a
    million rows in seconds.

    The rows keep the rules the service enforces: no owner holds more active keys than
    ``plan`` allows (an owner who is full passes the key on to another), a key is last used
    before it expired or was revoked and never after now."""
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
    hosts_details = [json.dumps(list(choice), separators=(",", ":")) for choice in HOSTS]
    host_choice = rng.choices(range(len(HOSTS)), k=count)
    spans = rng.choices((30, 60, 90, 365), k=count)
    random_ = rng.random
    quote = json.encoder.encode_basestring_ascii
    used_span = 60 * 24 * 90
    rows = []
    history: list[tuple[datetime, str, str, str, str]] = []
    for n in range(count):
        created = now - timedelta(days=730 * (1 - n / count), minutes=int(random_() * 601))
        fate = random_()
        revoked_at = expires_at = last_used = None
        if fate < 0.12:
            revoked_at = created + (now - created) * random_()
        elif fate > 0.45:
            expires_at = created + timedelta(days=spans[n])
            if fate < 0.5:  # a few that expire within the week
                expires_at = now + timedelta(days=1 + int(random_() * 6), hours=int(random_() * 24))
        active = revoked_at is None and (expires_at is None or expires_at > now)
        owner = plan.owner_for(row_owners[n]) if active else row_owners[n]
        use_count = 0
        if random_() < 0.8:
            minutes = 1 + int(random_() * used_span)
            last_used = max(created, now - timedelta(minutes=minutes))
            end = revoked_at or expires_at
            if end is not None and end < last_used:  # used while it still worked
                last_used = end - (end - created) * (minutes / used_span)
            last_used = last_used.replace(second=0, microsecond=0)
            if last_used < created:  # rounded down before it existed
                last_used = created
            use_count = 1 + int(random_() * 250_000)
        key_id = ids[n]
        service_name = services[n]
        name = f"{service_name} {purposes[n]} ({places[n]})"
        role = row_roles[n]
        created_stamp = stamp(created)
        revoked_stamp = None if revoked_at is None else stamp(revoked_at)
        actor = plan.creator(owner)
        hosts_n = host_choice[n]
        rows.append(
            (
                key_id,
                name,
                f"Used by the {service_name} team",
                owner,
                role,
                shared_hash,
                created_stamp,
                revoked_stamp or created_stamp,
                None if expires_at is None else stamp(expires_at),
                revoked_stamp,
                None if revoked_at is None else actor,
                None if last_used is None else stamp(last_used),
                use_count,
                hosts[hosts_n],
            )
        )
        # The details as the service writes them (details_json's sorted, compact JSON).
        quoted = quote(name)
        expires = "null" if expires_at is None else quote(iso_utc(expires_at) or "")
        history.append(
            (
                created,
                actor,
                "key.create",
                key_id,
                f'{{"allowed_hosts":{hosts_details[hosts_n]},"expires_at":{expires},'
                f'"name":{quoted},"owner":{quote(owner)},"role":{quote(role)}}}',
            )
        )
        if revoked_at is not None:
            history.append((revoked_at, actor, "key.revoke", key_id, f'{{"name":{quoted}}}'))
    history.sort(key=itemgetter(0))
    return rows, history


class _OwnerPlan:
    """Who may hold one more active demo key: the named owners while they have room under
    ``cap``, then as many generated developers (``dev-0001``...) as the keys need. Whoever
    creates a key in the demo's history: its owner, unless the owner may not create keys (a
    viewer), then the admin seeding."""

    def __init__(self, actor: str, active: dict[str, int], cap: int, roles: dict[str, str]):
        self.actor, self.active, self.cap, self.roles = actor, active, cap, roles
        self.new_users: list[str] = []
        self._spare = 1

    def owner_for(self, drawn: str) -> str:
        owner = drawn
        while self.active.get(owner, 0) >= self.cap:
            if owner == self._spare_login():
                self._spare += 1
            owner = self._spare_login()
            if owner not in self.roles:
                self.roles[owner] = "developer"
                self.new_users.append(owner)
        self.active[owner] = self.active.get(owner, 0) + 1
        return owner

    def _spare_login(self) -> str:
        return f"dev-{self._spare:04d}"

    def creator(self, owner: str) -> str:
        return owner if self.roles.get(owner) in ("developer", "admin") else self.actor


def _sqlite_time(value: datetime) -> str:
    """What SQLAlchemy's SQLite DateTime stores: naive UTC, always six fraction digits."""
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


@contextmanager
def _indexes_lifted(session: Session, table: str, adding: int) -> Iterator[None]:
    """On SQLite, when ``adding`` rows outnumber those already in ``table``, drop its secondary
    indexes for the insert and build them again after it, in the same transaction (a sort is
    cheaper than a million scattered B-tree inserts)."""
    run = session.connection().exec_driver_sql
    indexes: Sequence[Any] = ()
    if session.connection().dialect.name == "sqlite":
        present = run(f"SELECT count(*) FROM {table}").scalar() or 0
        if adding > present:
            indexes = run(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = ? AND sql IS NOT NULL",
                (table,),
            ).all()
    for name, _ in indexes:
        run(f'DROP INDEX "{name}"')
    yield
    for _, create in indexes:
        run(create)


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


def _demo_login(login: str) -> bool:
    """A login the demo makes: a named owner or a generated developer (``dev-0001``)."""
    return login in OWNERS or (login.startswith("dev-") and login[4:].isdigit())


def _may_seed(service: KeyService, session: Session, users: set[str]) -> None:
    """Demo data (users, roles, keys that bypass the rules) goes only into a database of the
    caller's own: they are its admin, and its only user apart from the demo's own (from an
    earlier seeding). Anywhere else it is refused, and nothing is written."""
    service._writable()
    others = sorted(users - {service.actor})
    seeded = session.scalar(select(Event.id).where(Event.action == "demo.seed").limit(1))
    if others and not (seeded is not None and all(_demo_login(login) for login in others)):
        more = ", …" if len(others) > 3 else ""
        raise Conflict(
            "demo data goes only into a database whose only user is you; this one has "
            f"{len(others)} other user(s) ({', '.join(others[:3])}{more}); use a new file or "
            "no --db"
        )
    service._require(session, "users")  # its admin


def seed_demo(service: KeyService, count: int, *, seed: int = 7, chunk: int = 1_000_000) -> None:
    """Add ``count`` demo keys (and their owners and roles) to ``service``'s database, with the
    events that tell of them, under the rules the service enforces."""
    rng = random.Random(seed)
    now = service.now()
    shared_hash = hash_secret(keyformat.new_secret(keyformat.new_key_id()), service.hasher)
    with service.db.write() as session:
        users: dict[str, str] = {
            login: role for login, role in session.execute(select(User.login, User.role))
        }
        _may_seed(service, session, set(users))
        for login, role in OWNERS.items():
            if login not in users:
                session.add(User(login=login, role=role, created_at=now - timedelta(days=400)))
                users[login] = role
        roles = set(session.scalars(select(KeyRole.name)))
        for role in EXTRA_ROLES:
            if role not in roles:
                session.add(KeyRole(name=role, created_at=now - timedelta(days=400)))
        taken = set(session.scalars(select(Key.key_id))) if count else set()
        active: dict[str, int] = {
            owner: held
            for owner, held in session.execute(
                select(Key.owner, func.count())
                .where(status_filter("active", now))
                .group_by(Key.owner)
            )
        }
        limit = session.scalar(select(Settings.max_keys_per_user)) or 100
    # Each owner keeps room under the per-user limit: creating a key in the demo works.
    plan = _OwnerPlan(service.actor, active, max(1, limit * 3 // 4), users)
    stamp = _sqlite_time if service.db.is_sqlite else (lambda value: value)
    rows, history = _demo_rows(
        rng,
        count,
        now,
        [service.actor, *OWNERS],
        ["read-only", "read-write", *EXTRA_ROLES],
        shared_hash,
        stamp,
        taken,
        plan,
    )
    face = service.face
    starts = list(range(0, len(rows), chunk)) or [0]
    for start in starts:
        with service.db.write() as session:
            if start == 0 and plan.new_users:
                session.execute(
                    insert(User),
                    [
                        {
                            "login": login,
                            "role": "developer",
                            "created_at": now - timedelta(days=400),
                        }
                        for login in plan.new_users
                    ],
                )
            _insert_keys(session, rows[start : start + chunk])
            if start == starts[-1]:  # the events commit with the last keys
                events: list[dict[str, Any]] = [
                    {
                        "at": at,
                        "actor": actor,
                        "action": action,
                        "key_id": key_id,
                        "face": face,
                        "details": details,
                    }
                    for at, actor, action, key_id, details in history
                ]
                events.append(
                    {
                        "at": now,
                        "actor": service.actor,
                        "action": "demo.seed",
                        "key_id": None,
                        "face": face,
                        "details": details_json({"keys": len(rows), "users": len(plan.new_users)}),
                    }
                )
                with _indexes_lifted(session, "events", len(events)):
                    append_events(session, events)
