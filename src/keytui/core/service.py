"""KeyService: the one door to keys, users, roles, settings and events.

The TUI, the CLI and the tests all go through these methods. Every rule (who may do what, limits,
which key states allow which change) is checked here and nowhere else, and every change writes an
event in the same transaction as the change itself.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import (
    Integer,
    String,
    and_,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from . import audit, keyformat, validate
from .clock import Clock, system_clock
from .db import Database, open_database, short_reason
from .errors import (
    Conflict,
    DatabaseError,
    InvalidInput,
    KeytuiError,
    LimitReached,
    NotActive,
    NotFound,
    PermissionDenied,
    UnknownUser,
)
from .hashing import DEFAULT_HASHER, fingerprint, hash_secret, needs_rehash, verify_secret
from .identity import current_login
from .models import Event, Key, KeyRole, Settings, User
from .validate import shown
from .values import (  # re-exported: the faces import the service's values from here too
    DEFAULT_EXPIRY,
    SORTABLE,
    STATUSES,
    UNSET,
    Counts,
    EventInfo,
    IssuedKey,
    KeyInfo,
    KeyPage,
    KeyQuery,
    RevokePlan,
    SettingsInfo,
    Skipped,
    Status,
    UserInfo,
    VerifyResult,
    key_info,
    permits,
    status_of,
)

# ---------------------------------------------------------------------------------------------
# Search: a case-insensitive substring of name, ID or owner (LIKE's meaning, on every database).
# On SQLite the search index of migration 0003 (FTS5 trigrams, rowid = keys.pk, every value
# followed by SEARCH_PAD) narrows the rows first, and LIKE then decides, so the index changes
# only the speed. A common term is cheaper without it: scanning newest-first stops after the
# first screenful. A sample of the newest keys tells the two apart.

SEARCH_PAD = "\x01"  # follows every indexed value (twice); no name, ID or login can hold it
_SEARCH = table("keys_search", column("rowid", Integer))
_VOCAB = table("keys_search_vocab", column("term", String))
_MATCH = literal_column("keys_search").op("MATCH")
SAMPLE_ROWS = 2_000  # newest keys sampled to judge a term
SAMPLE_COMMON = 20  # matches in the sample (1%) from which a term counts as common


def _fts_string(text: str) -> str:
    """``text`` as one FTS5 string (a phrase): quotes doubled, nothing else special."""
    return '"' + text.replace('"', '""') + '"'


def _like(term: str, sqlite: bool):
    if sqlite:  # SQLite's LIKE already ignores ASCII case, as its lower() does: skip lower()
        return or_(
            Key.name.contains(term, autoescape=True),
            Key.key_id.contains(term, autoescape=True),
            Key.owner.contains(term, autoescape=True),
        )
    # column ILIKE, as SQLAlchemy renders icontains there: what the pg_trgm indexes serve
    return or_(
        Key.name.icontains(term, autoescape=True),
        Key.key_id.icontains(term, autoescape=True),
        Key.owner.icontains(term, autoescape=True),
    )


def _folds(char: str) -> set[str]:
    """The forms the index may hold ``char`` as: FTS5 folds case by Unicode's simple folding,
    which Python has no function for; between them, these cover it (σ for ς, ß for ẞ...)."""
    return {form for form in (char, char.lower(), char.casefold()) if len(form) == 1}


def _index_match(term: str):
    """``keys_search MATCH ...``: a superset of the keys whose name, ID or owner holds
    ``term``, from the SQLite search index; None where the index cannot say."""
    if SEARCH_PAD in term:
        return None
    if len(term) >= 3:
        return _MATCH(literal(_fts_string(term)))
    # Every occurrence of a 1-2 character term starts an indexed trigram (the padding sees to
    # that): the trigrams that start with it, from the vocabulary by range, OR-ed.
    starts = [a + b for a in _folds(term[0]) for b in (_folds(term[1]) if term[1:] else {""})]
    ranges = [
        select(_VOCAB.c.term).where(_VOCAB.c.term >= start, _VOCAB.c.term < start + "\U0010ffff")
        for start in sorted(starts)
    ]
    found = union_all(*ranges).subquery() if len(ranges) > 1 else ranges[0].subquery()
    phrases = select(
        func.group_concat(
            literal('"') + func.replace(found.c.term, '"', '""') + literal('"'), " OR "
        )
    )
    nothing = '"' + SEARCH_PAD * 3 + '"'  # a trigram no row holds
    return _MATCH(func.coalesce(phrases.scalar_subquery(), nothing))


def _status_expr(now: datetime):
    return case(
        (Key.revoked_at.is_not(None), "revoked"),
        (and_(Key.expires_at.is_not(None), Key.expires_at <= now), "expired"),
        else_="active",
    )


def _status_filter(status: Status, now: datetime):
    if status == "revoked":
        return Key.revoked_at.is_not(None)
    if status == "expired":
        return and_(Key.revoked_at.is_(None), Key.expires_at.is_not(None), Key.expires_at <= now)
    return and_(Key.revoked_at.is_(None), or_(Key.expires_at.is_(None), Key.expires_at > now))


# "revoked_at IS NULL" where another condition should choose the index: SQLite's planner, with
# no statistics, takes it for a selective equality and walks ix_keys_revoked_at (90% of a big
# table: a 10,000-key revoke took 33 s on 1,000,000 keys). Wrapped, it is a plain filter.
_UNREVOKED = func.coalesce(Key.revoked_at, null()).is_(None)
# What a KeyInfo is made of (the hash is never needed to describe a key).
_INFO_COLUMNS = [c for c in Key.__table__.c if c.name not in ("pk", "secret_hash")]


def _host_allowed(host: str | None, allowed: Sequence[str]) -> bool:
    """Empty means any host. Entries are host names (``*.example.com`` matches subdomains),
    IP addresses or CIDR networks, normalised by :func:`validate.host`."""
    if not allowed:
        return True
    if not host:
        return False
    host = host.strip().lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (dual-stack sockets)
    for entry in allowed:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            network = None
        if network is not None:
            if address is not None and address.version == network.version and address in network:
                return True
        elif entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


# verify()'s one read: the kill switch and the key's current state, built once.
_VERIFY_ROW = (
    select(
        Settings.keys_enabled,
        Key.pk,
        Key.key_id,
        Key.owner,
        Key.role,
        Key.secret_hash,
        Key.revoked_at,
        Key.expires_at,
        Key.allowed_hosts,
    )
    .select_from(Settings)
    .outerjoin(Key, Key.key_id == bindparam("key_id"))
    .where(Settings.id == 1)
)


class _UsageBuffer:
    """Counts verifications in memory and writes them in batches, not once per request."""

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[Any, list[Any]] = {}  # key pk (or ID) -> [count, last used]
        self.last_flush: datetime | None = None
        self.lock = threading.Lock()

    def add(self, pk: int | str, now: datetime) -> bool:
        """Record one use; True when it is time to flush."""
        minute = now.replace(second=0, microsecond=0)
        with self.lock:
            entry = self.pending.setdefault(pk, [0, minute])
            entry[0] += 1
            entry[1] = max(entry[1], minute)
            if self.last_flush is None:
                self.last_flush = now
            return (now - self.last_flush).total_seconds() >= self.flush_seconds or len(
                self.pending
            ) >= 10_000

    def take(self, now: datetime) -> dict[int, list[Any]]:
        with self.lock:
            pending, self.pending = self.pending, {}
            self.last_flush = now
            return pending


class KeyService:
    """Every operation keytui offers, for one acting user, on one database."""

    def __init__(
        self,
        database: Database,
        *,
        actor: str | None = None,
        face: str = "api",
        clock: Clock = system_clock,
        hasher: PasswordHasher = DEFAULT_HASHER,
        usage_flush_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.db = database
        self.actor = actor or current_login()
        self.face = face
        self.clock = clock
        self.hasher = hasher
        self._usage = _UsageBuffer(usage_flush_seconds)
        self._failed = _UsageBuffer(usage_flush_seconds)  # key ID -> [wrong secrets, last minute]
        self._verified: OrderedDict[str, str] = OrderedDict()  # sha256(secret) -> argon2 hash
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()

    @classmethod
    def open(cls, target: str | None = None, **kwargs: Any) -> KeyService:
        """Open the database at ``target`` (path, URL, or the default) and bootstrap it."""
        service = cls(open_database(target), **kwargs)
        service.bootstrap()
        return service

    def close(self) -> None:
        self.flush_usage()
        self.db.dispose()

    def __enter__(self) -> KeyService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        return self.clock()

    # -- plumbing ------------------------------------------------------------------------------

    def _event(
        self, session: Session, action: str, key_id: str | None = None, **details: Any
    ) -> None:
        self._events(session, [(action, key_id, details)])

    def _events(
        self,
        session: Session,
        events: Iterable[tuple[str, str | None, dict]],
        at: datetime | None = None,
    ) -> None:
        """Append events to the hash-chained audit log (the only way any event is written)."""
        at = at or self.now()
        audit.append_events(
            session,
            [
                {
                    "at": at,
                    "actor": self.actor,
                    "action": action,
                    "key_id": key_id,
                    "face": self.face,
                    "details": audit.details_json(details),
                }
                for action, key_id, details in events
            ],
        )

    def _user(self, session: Session) -> User:
        user = session.get(User, self.actor)
        if user is None:
            raise UnknownUser(
                f"{self.actor!r} is not a keytui user of this database; an admin can add you "
                f"with: keytui users add {self.actor} --role developer"
            )
        return user

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A read transaction for a known user: unknown logins see nothing."""
        with self.db.read() as session:
            self._user(session)
            yield session

    def _require(self, session: Session, action: str, key_owner: str | None = None) -> User:
        user = self._user(session)
        if not permits(user.role, user.login, action, key_owner):
            if key_owner is not None and user.role == "developer":
                raise PermissionDenied(
                    f"you may only {action} your own keys; this one belongs to {key_owner}"
                )
            what = {
                "settings": "change settings",
                "users": "manage users",
                "roles": "manage key roles",
            }.get(action, f"{action} keys")
            raise PermissionDenied(f"a {user.role} may not {what}; ask an admin")
        return user

    def _key(self, session: Session, key_id: str, *, lock: bool = False) -> Key:
        key_id = key_id.strip().lower() if isinstance(key_id, str) else ""
        if not keyformat.is_key_id(key_id):  # not even the shape of an ID: no query
            raise NotFound(f"no key with ID {shown(key_id, 20)}")
        statement = select(Key).where(Key.key_id == key_id)
        if lock:
            statement = statement.with_for_update()
        row = session.scalars(statement).first()
        if row is None:
            raise NotFound(f"no key with ID {shown(key_id, 20)}")
        return row

    def _settings(self, session: Session) -> Settings:
        settings = session.get(Settings, 1)
        if settings is None:  # a database whose settings row was removed by hand
            settings = Settings(
                id=1, keys_enabled=True, max_expiry_days=None, max_keys_per_user=100
            )
            session.add(settings)
        return settings

    def bootstrap(self) -> None:
        """The first login to open a new database becomes its admin."""
        try:
            with self.db.read() as session:
                if session.scalar(select(func.count()).select_from(User)):
                    return
            with self.db.write() as session:
                if session.scalar(select(func.count()).select_from(User)):
                    return
                session.add(User(login=self.actor, role="admin", created_at=self.now()))
                self._event(
                    session,
                    "user.add",
                    login=self.actor,
                    role="admin",
                    reason="first user of a new database",
                )
        except IntegrityError:
            pass  # another process bootstrapped at the same moment
        except SQLAlchemyError as exc:
            raise DatabaseError(
                f"cannot open database {self.db.display}: {short_reason(exc)}"
            ) from exc

    # -- who am I ------------------------------------------------------------------------------

    def whoami(self) -> UserInfo | None:
        with self.db.read() as session:
            user = session.get(User, self.actor)
            return UserInfo(user.login, user.role, user.created_at) if user else None

    def permits(self, action: str, key: KeyInfo | None = None, role: str | None = UNSET) -> bool:
        """Would the acting user be allowed ``action`` (on ``key``)? For faces that grey out
        what the user may not do; the methods below enforce the same rule on every call."""
        if role is UNSET:
            me = self.whoami()
            role = me.role if me else None
        return permits(role, self.actor, action, key.owner if key else None)

    # -- reading keys --------------------------------------------------------------------------

    def _common(self, term: str, session: Session) -> bool:
        """Does ``term`` match 1% or more of the newest keys (a scan finds a page at once)?"""
        sample = select(Key.pk).order_by(Key.pk.desc()).offset(SAMPLE_ROWS).limit(1)
        hits = session.scalar(
            select(func.count()).select_from(
                select(Key.pk)
                .where(
                    Key.pk > func.coalesce(sample.scalar_subquery(), 0),
                    _like(term, self.db.is_sqlite),
                )
                .limit(SAMPLE_COMMON)
                .subquery()
            )
        )
        return (hits or 0) >= SAMPLE_COMMON

    def _search(self, term: str, session: Session | None) -> list[Any]:
        """The conditions for a search term (see SEARCH_PAD above for how they are chosen)."""
        like = _like(term, self.db.is_sqlite)
        if not self.db.is_sqlite or session is None or self._common(term, session):
            return [like]
        match = _index_match(term)
        return [like] if match is None else [Key.pk.in_(select(_SEARCH.c.rowid).where(match)), like]

    def _filters(
        self,
        search: str,
        status: Status | None,
        owner: str | None,
        now: datetime,
        session: Session | None = None,
    ):
        conditions = []
        term = validate.term(search)
        owner = validate.term(owner, "an owner filter")
        if term:
            conditions.extend(self._search(term, session))
        if status:
            if status not in STATUSES:
                raise InvalidInput(
                    f"{shown(status)} is not a status; choose active, expired or revoked"
                )
            conditions.append(_status_filter(status, now))
        if owner:
            conditions.append(Key.owner == owner)
        return conditions

    def list_keys(self, query: KeyQuery = KeyQuery()) -> KeyPage:
        """One page of keys, filtered, sorted and paged in SQL."""
        if query.sort not in SORTABLE:
            raise InvalidInput(f"cannot sort by {shown(query.sort)}; choose {', '.join(SORTABLE)}")
        if query.limit < 1 or query.offset < 0:
            raise InvalidInput("a page needs a positive limit and an offset of 0 or more")
        now = self.now()
        column = _status_expr(now) if query.sort == "status" else getattr(Key, query.sort)
        order = [
            column.desc() if query.descending else column.asc(),
            Key.pk.desc() if query.descending else Key.pk.asc(),
        ]
        if query.sort in ("expires_at", "last_used_at"):  # the same NULL order on every database:
            high = query.sort == "expires_at"  # never expires: after every date; never used: before
            order[0] = order[0].nulls_first() if high == query.descending else order[0].nulls_last()
        if query.sort == "created_at":  # creation order is primary-key order
            order = [Key.pk.desc() if query.descending else Key.pk.asc()]
        with self._read() as session:
            statement = (
                select(Key)
                .where(*self._filters(query.search, query.status, query.owner, now, session))
                .order_by(*order)
                .limit(query.limit + 1)
                .offset(query.offset)
            )
            rows = session.scalars(statement).all()
        return KeyPage(
            tuple(key_info(row, now) for row in rows[: query.limit]),
            query.offset,
            len(rows) > query.limit,
        )

    def iter_keys(self, query: KeyQuery = KeyQuery(), page_size: int = 500) -> Iterable[KeyInfo]:
        """Every key matching ``query``, fetched page by page (never all at once)."""
        offset = query.offset
        while True:
            page = self.list_keys(
                KeyQuery(
                    query.search,
                    query.status,
                    query.owner,
                    query.sort,
                    query.descending,
                    page_size,
                    offset,
                )
            )
            yield from page.keys
            if not page.has_more:
                return
            offset += page_size

    def count_keys(
        self,
        search: str = "",
        status: Status | None = None,
        owner: str | None = None,
        *,
        cap: int | None = None,
    ) -> int:
        """How many keys match. With ``cap``, counting stops at ``cap + 1`` (so a result above
        ``cap`` means "more than cap"), and a common term costs no full scan."""
        now = self.now()
        term = (search or "").strip()
        with self._read() as session:
            match = _index_match(term) if term and self.db.is_sqlite and cap is not None else None
            if match is not None and len(term) < 2 and self._common(term, session):
                match = None  # a common character: too many trigrams to OR; LIKE finds them
            if cap is None:
                statement = (
                    select(func.count())
                    .select_from(Key)
                    .where(*self._filters(search, status, owner, now, session))
                )
            elif match is None:
                statement = select(func.count()).select_from(
                    select(Key.pk)
                    .where(*self._filters(search, status, owner, now, session))
                    .limit(max(0, cap) + 1)
                    .subquery()
                )
            else:  # the index streams its matches; LIKE and the filters check each; stop at cap
                statement = select(func.count()).select_from(
                    select(Key.pk)
                    .join(_SEARCH, _SEARCH.c.rowid == Key.pk)
                    .where(match, *self._filters(search, status, owner, now))
                    .limit(max(0, cap) + 1)
                    .subquery()
                )
            return int(session.scalar(statement) or 0)

    def counts(self) -> Counts:
        """How many keys are active, expired and revoked: three counts that read indexes only
        (migration 0003's on revoked_at, expires_at), in one transaction."""
        now = self.now()

        def count(*where: Any) -> Any:
            return select(func.count()).select_from(Key).where(*where)

        with self._read() as session:
            total = int(session.scalar(count()) or 0)
            revoked = int(session.scalar(count(_status_filter("revoked", now))) or 0)
            expired = int(
                session.scalar(
                    count(_UNREVOKED, Key.expires_at.is_not(None), Key.expires_at <= now)
                )
                or 0
            )
        return Counts(total - revoked - expired, expired, revoked)

    def matching_ids(
        self,
        search: str = "",
        status: Status | None = None,
        owner: str | None = None,
        limit: int = 100_000,
    ) -> list[str]:
        """The IDs (only) of the keys a filter matches, newest first: for "mark all"."""
        with self._read() as session:
            statement = (
                select(Key.key_id)
                .where(*self._filters(search, status, owner, self.now(), session))
                .order_by(Key.pk.desc())
                .limit(limit)
            )
            return list(session.scalars(statement))

    def get_key(self, key_id: str) -> KeyInfo:
        with self._read() as session:
            return key_info(self._key(session, key_id), self.now())

    # -- changing keys -------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        description: str = "",
        owner: str | None = None,
        role: str | None = None,
        expires: str | datetime | None = DEFAULT_EXPIRY,
        allowed_hosts: Sequence[str] = (),
    ) -> IssuedKey:
        """A new key; its secret is in the result and nowhere else, ever.

        ``expires``: ``None``/``"never"``, ``"90d"``, ``"YYYY-MM-DD"`` or a datetime; left out,
        the installation's maximum expiry (or never, when there is none).
        """
        now = self.now()
        with validate.field("name"):
            name = validate.name(name)
        with validate.field("description"):
            description = validate.description(description)
        with validate.field("owner"):
            owner = validate.login(owner) if owner else self.actor
        with validate.field("expires"):
            expires_at = None if expires is DEFAULT_EXPIRY else validate.expiry(expires, now)
        with validate.field("allowed_hosts"):
            hosts = validate.hosts(list(allowed_hosts))
        with validate.field("role"):
            role = validate.key_role(role) if role else None
        for _attempt in range(5):
            key_id = keyformat.new_key_id()
            secret = keyformat.new_secret(key_id)
            secret_hash = hash_secret(secret, self.hasher)  # outside the write lock: ~20 ms
            try:
                with self.db.write() as session:
                    self._require(session, "create", owner)
                    settings = self._settings(session)
                    if not settings.keys_enabled:
                        raise LimitReached(
                            "API keys are disabled in this installation; an admin "
                            "can enable them with: keytui settings set --enable"
                        )
                    owner_row = session.scalars(
                        select(User).where(User.login == owner).with_for_update()
                    ).first()
                    if owner_row is None:
                        raise NotFound(
                            f"no user {owner!r}; an admin can add them with: "
                            f"keytui users add {owner} --role developer",
                            "owner",
                        )
                    role = role or self._default_role(session)
                    if session.get(KeyRole, role) is None:
                        raise NotFound(f"no key role {shown(role)}; see: keytui roles list", "role")
                    limit = settings.max_expiry_days
                    if expires is DEFAULT_EXPIRY and limit is not None:
                        expires_at = now + timedelta(days=limit)
                    # Through the last day allowed, as an expiry date means (not a day more).
                    latest = (now + timedelta(days=limit)).date() if limit is not None else None
                    if latest is not None and (expires_at is None or expires_at.date() > latest):
                        raise LimitReached(
                            f"keys in this installation expire within {limit} days; "
                            f"choose an expiry of {limit}d or sooner",
                            "expires",
                        )
                    active = session.scalar(
                        select(func.count())
                        .select_from(Key)
                        .where(Key.owner == owner, _status_filter("active", now))
                    )
                    if active >= settings.max_keys_per_user:
                        raise LimitReached(
                            f"{owner} already has {active} active keys, the maximum per user "
                            f"({settings.max_keys_per_user}); revoke one or ask an admin to raise it",
                            "owner",
                        )
                    row = Key(
                        key_id=key_id,
                        name=name,
                        description=description,
                        owner=owner,
                        role=role,
                        secret_hash=secret_hash,
                        created_at=now,
                        updated_at=now,
                        expires_at=expires_at,
                        use_count=0,
                        allowed_hosts=json.dumps(hosts),
                    )
                    session.add(row)
                    session.flush()
                    self._event(
                        session,
                        "key.create",
                        key_id,
                        name=name,
                        owner=owner,
                        role=role,
                        expires_at=expires_at.isoformat() if expires_at else None,
                        allowed_hosts=hosts,
                    )
                    return IssuedKey(key_info(row, now), secret)
            except IntegrityError:
                continue  # the random ID was taken: draw another
        raise DatabaseError("could not find a free key ID; try again")

    def _default_role(self, session: Session) -> str:
        if session.get(KeyRole, "read-only") is not None:
            return "read-only"
        first = session.scalars(select(KeyRole.name).order_by(KeyRole.name)).first()
        if first is None:
            raise NotFound(
                "this installation has no key roles; an admin can add one with: "
                "keytui roles add NAME"
            )
        return first

    def replace_key(self, key_id: str) -> IssuedKey:
        """A new secret for the same key ID; the old one fails on the very next verify."""
        now = self.now()
        with self.db.read() as session:
            key_id = self._key(session, key_id).key_id
        secret = keyformat.new_secret(key_id)
        secret_hash = hash_secret(secret, self.hasher)
        with self.db.write() as session:
            row = self._key(session, key_id, lock=True)
            self._require(session, "replace", row.owner)
            status = status_of(row.revoked_at, row.expires_at, now)
            if status != "active":
                raise NotActive(f"key {key_id} is {status}; only active keys can be replaced")
            row.secret_hash = secret_hash
            row.updated_at = now
            session.flush()
            self._event(session, "key.replace", key_id, name=row.name)
            return IssuedKey(key_info(row, now), secret)

    def rename_key(
        self, key_id: str, name: str | None = None, description: str | None = None
    ) -> KeyInfo:
        """Name and description are the only things that can change after creation."""
        now = self.now()
        with validate.field("name"):
            new_name = validate.name(name) if name is not None else None
        with validate.field("description"):
            new_description = validate.description(description) if description is not None else None
        with self.db.write() as session:
            row = self._key(session, key_id, lock=True)
            self._require(session, "rename", row.owner)
            changes: dict[str, Any] = {}
            if new_name is not None and new_name != row.name:
                changes["name"] = [row.name, new_name]
                row.name = new_name
            if new_description is not None and new_description != row.description:
                changes["description"] = [row.description, new_description]
                row.description = new_description
            if changes:
                row.updated_at = now
                session.flush()
                self._event(session, "key.rename", row.key_id, **changes)
            return key_info(row, now)

    def _revoke_candidates(
        self, session: Session, key_ids: Sequence[str], now: datetime
    ) -> tuple[list[Any], list[Skipped]]:
        """The rows of the keys among ``key_ids`` that may be revoked now, and the rest with
        the reason. Plain rows: a 10,000-key revoke spent most of its time building objects."""
        user = self._require(session, "revoke")
        wanted = list(dict.fromkeys(k.strip().lower() for k in key_ids if isinstance(k, str)))
        shaped = [key_id for key_id in wanted if keyformat.is_key_id(key_id)]
        rows = (
            {
                row.key_id: row
                for row in session.execute(select(*_INFO_COLUMNS).where(Key.key_id.in_(shaped)))
            }
            if shaped
            else {}
        )
        revocable: list[Any] = []
        skipped: list[Skipped] = []
        for key_id in wanted:
            row = rows.get(key_id)
            if row is None:
                skipped.append(Skipped(key_id, "not found"))
                continue
            status = status_of(row.revoked_at, row.expires_at, now)
            if status == "revoked":
                skipped.append(Skipped(key_id, "already revoked"))
            elif status == "expired":
                skipped.append(Skipped(key_id, "expired"))
            elif not permits(user.role, user.login, "revoke", row.owner):
                skipped.append(
                    Skipped(
                        key_id,
                        f"not yours (owner {row.owner})"
                        if user.role == "developer"
                        else "not permitted",
                    )
                )
            else:
                revocable.append(row)
        return revocable, skipped

    def plan_revoke(self, key_ids: Sequence[str]) -> RevokePlan:
        """What ``revoke_keys(key_ids)`` would do now, for a confirmation dialog."""
        now = self.now()
        with self.db.read() as session:
            revocable, skipped = self._revoke_candidates(session, key_ids, now)
        return RevokePlan(tuple(key_info(row, now) for row in revocable), tuple(skipped))

    def revoke_keys(self, key_ids: Sequence[str]) -> RevokePlan:
        """Revoke the active keys among ``key_ids`` in one transaction; report the rest."""
        now = self.now()
        with self.db.write() as session:
            revocable, skipped = self._revoke_candidates(session, key_ids, now)
            done: set[str] = set()
            for chunk in range(0, len(revocable), 500):
                ids = [row.key_id for row in revocable[chunk : chunk + 500]]
                result = session.execute(
                    update(Key)
                    .where(Key.key_id.in_(ids), _UNREVOKED)
                    .values(revoked_at=now, revoked_by=self.actor, updated_at=now)
                    .returning(Key.key_id)
                    .execution_options(synchronize_session=False)
                )
                done.update(result.scalars())
            revoked = []
            for row in revocable:
                if row.key_id in done:
                    revoked.append(row)
                else:  # another admin revoked it between our read and our write
                    skipped.append(Skipped(row.key_id, "already revoked"))
            self._events(
                session, [("key.revoke", row.key_id, {"name": row.name}) for row in revoked], at=now
            )
        return RevokePlan(
            tuple(
                key_info(
                    SimpleNamespace(
                        **{
                            **row._asdict(),
                            "revoked_at": now,
                            "revoked_by": self.actor,
                            "updated_at": now,
                        }
                    ),
                    now,
                )
                for row in revoked
            ),
            tuple(skipped),
        )

    def revoke_key(self, key_id: str) -> KeyInfo:
        """Revoke one key, or say why not (not found, not permitted, not active)."""
        plan = self.revoke_keys([key_id])
        if plan.revoke:
            return plan.revoke[0]
        reason = plan.skipped[0].reason
        if reason == "not found":
            raise NotFound(f"no key with ID {shown(key_id, 20)}")
        if reason.startswith("not"):
            with self.db.read() as session:
                self._require(session, "revoke", self._key(session, key_id).owner)
        raise NotActive(
            f"key {plan.skipped[0].id} is {reason.replace('already ', '')}; "
            "only active keys can be revoked"
        )

    def delete_keys(self, key_ids: Sequence[str]) -> tuple[KeyInfo, ...]:
        """Remove keys entirely; all or none. Their events stay."""
        now = self.now()
        wanted = list(dict.fromkeys(k.strip().lower() for k in key_ids))
        if not wanted:
            raise InvalidInput("name at least one key to delete")
        with self.db.write() as session:
            rows = [self._key(session, key_id, lock=True) for key_id in wanted]
            for row in rows:
                self._require(session, "delete", row.owner)
            deleted = tuple(key_info(row, now) for row in rows)
            for row in rows:
                session.delete(row)
            self._events(
                session,
                [
                    ("key.delete", row.key_id, {"name": row.name, "owner": row.owner})
                    for row in rows
                ],
                at=now,
            )
            return deleted

    # -- verify --------------------------------------------------------------------------------

    def verify(self, secret: str, host: str | None = None) -> VerifyResult:
        """Is ``secret`` a current, active key allowed from ``host``?

        A malformed secret costs no database read; an unknown ID no argon2; a secret already
        verified by this process no argon2 either, but its key's status and current hash are
        re-read every time, so a revoke or replace anywhere is seen at once.
        """
        parsed = keyformat.parse_secret(secret)
        if parsed is None:
            return VerifyResult(False, "MALFORMED")
        now = self.now()
        # One prepared statement on a plain connection: no ORM session, no statement building
        # (they cost more than the query itself; a verifier runs this thousands of times a second).
        with self.db.engine.connect() as connection:
            row = connection.execute(_VERIFY_ROW, {"key_id": parsed.key_id}).first()
        if row is not None and not row.keys_enabled:
            return VerifyResult(False, "DISABLED")
        if row is None or row.pk is None:
            return VerifyResult(False, "NOT_FOUND")
        digest = fingerprint(secret.strip())
        with self._cache_lock:
            cached = self._verified.get(digest)
        if cached != row.secret_hash:
            if not verify_secret(row.secret_hash, secret.strip(), self.hasher):
                # A wrong secret for a real key ID: counted in memory, written as one
                # key.verify_failed event per key and flush, never a row per request.
                if self._failed.add(row.key_id, now):
                    self.flush_usage()
                return VerifyResult(False, "NOT_FOUND")
            stored = row.secret_hash
            if needs_rehash(stored, self.hasher):
                stored = self._rehash(row.pk, stored, secret.strip())
            with self._cache_lock:
                self._verified[digest] = stored
                self._verified.move_to_end(digest)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        ident = dict(key_id=row.key_id, owner=row.owner, role=row.role, expires_at=row.expires_at)
        if row.revoked_at is not None:
            return VerifyResult(False, "REVOKED", **ident)
        if row.expires_at is not None and row.expires_at <= now:
            return VerifyResult(False, "EXPIRED", **ident)
        if not _host_allowed(host, json.loads(row.allowed_hosts or "[]")):
            return VerifyResult(False, "HOST_NOT_ALLOWED", **ident)
        if self._usage.add(row.pk, now):
            self.flush_usage()
        return VerifyResult(True, "VALID", **ident)

    def _rehash(self, pk: int, old_hash: str, secret: str) -> str:
        """Upgrade a hash made with older parameters, unless the key was replaced meanwhile."""
        new_hash = hash_secret(secret, self.hasher)
        with self.db.write() as session:
            result = session.execute(
                update(Key)
                .where(Key.pk == pk, Key.secret_hash == old_hash)
                .values(secret_hash=new_hash)
            )
        return new_hash if result.rowcount else old_hash

    def flush_usage(self) -> None:
        """Write buffered use counts and last-used minutes, and one ``key.verify_failed`` event
        per key that saw wrong secrets (with their count); called in batches and on close."""
        pending = self._usage.take(self.now())
        failed = self._failed.take(self.now())
        if not pending and not failed:
            return
        try:
            with self.db.write() as session:
                # Row locks first and in key order, the chain lock (taken by the events) last:
                # the order every writer follows, so a flush never deadlocks with a replace.
                for pk, (count, last) in sorted(pending.items()):
                    session.execute(
                        update(Key)
                        .where(Key.pk == pk)
                        .values(
                            use_count=Key.use_count + count,
                            last_used_at=case(
                                (or_(Key.last_used_at.is_(None), Key.last_used_at < last), last),
                                else_=Key.last_used_at,
                            ),
                        )
                        .execution_options(synchronize_session=False)
                    )
                if failed:
                    self._events(
                        session,
                        [
                            (
                                "key.verify_failed",
                                key_id,
                                {"count": count, "last": last.isoformat().replace("+00:00", "Z")},
                            )
                            for key_id, (count, last) in sorted(failed.items())
                        ],
                    )
        except SQLAlchemyError:  # keep the counts for the next try
            for buffer, taken in ((self._usage, pending), (self._failed, failed)):
                with buffer.lock:
                    for pk, (count, last) in taken.items():
                        entry = buffer.pending.setdefault(pk, [0, last])
                        entry[0] += count
                        entry[1] = max(entry[1], last)

    # -- settings ------------------------------------------------------------------------------

    def get_settings(self) -> SettingsInfo:
        with self._read() as session:
            settings = session.get(Settings, 1)
            if settings is None:
                return SettingsInfo(True, None, 100)
            return SettingsInfo(
                settings.keys_enabled, settings.max_expiry_days, settings.max_keys_per_user
            )

    def update_settings(
        self,
        *,
        keys_enabled: bool | None = None,
        max_expiry_days: int | None = UNSET,
        max_keys_per_user: int | None = None,
    ) -> SettingsInfo:
        if max_expiry_days is not UNSET:
            validate.max_expiry_days(max_expiry_days)
        if max_keys_per_user is not None:
            validate.max_keys_per_user(max_keys_per_user)
        with self.db.write() as session:
            self._require(session, "settings")
            settings = self._settings(session)
            changes: dict[str, Any] = {}
            for column, value in (
                ("keys_enabled", keys_enabled),
                ("max_expiry_days", max_expiry_days),
                ("max_keys_per_user", max_keys_per_user),
            ):
                if value is UNSET or (value is None and column != "max_expiry_days"):
                    continue
                if getattr(settings, column) != value:
                    changes[column] = [getattr(settings, column), value]
                    setattr(settings, column, value)
            if changes:
                self._event(session, "settings.update", **changes)
            return SettingsInfo(
                settings.keys_enabled, settings.max_expiry_days, settings.max_keys_per_user
            )

    # -- users ---------------------------------------------------------------------------------

    def list_users(self) -> list[UserInfo]:
        with self._read() as session:
            return [
                UserInfo(u.login, u.role, u.created_at)
                for u in session.scalars(select(User).order_by(User.login))
            ]

    def add_user(self, login: str, role: str) -> UserInfo:
        login, role = validate.login(login), validate.user_role(role)
        with self.db.write() as session:
            self._require(session, "users")
            if session.get(User, login) is not None:
                raise Conflict(
                    f"{login} is already a user; change their role with: "
                    f"keytui users set-role {login} ROLE"
                )
            user = User(login=login, role=role, created_at=self.now())
            session.add(user)
            self._event(session, "user.add", login=login, role=role)
            return UserInfo(login, role, user.created_at)

    def _other_admins(self, session: Session, login: str) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.role == "admin", User.login != login)
            )
            or 0
        )

    def set_user_role(self, login: str, role: str) -> UserInfo:
        role, login = validate.user_role(role), validate.term(login, "a login")
        with self.db.write() as session:
            self._require(session, "users")
            user = session.get(User, login)
            if user is None:
                raise NotFound(f"no user {shown(login)}")
            if user.role == "admin" and role != "admin" and not self._other_admins(session, login):
                raise Conflict(f"{login} is the last admin; make someone else admin first")
            if user.role != role:
                old_role, user.role = user.role, role  # change first: the chain lock is last
                self._event(session, "user.set_role", login=login, role=[old_role, role])
            return UserInfo(user.login, user.role, user.created_at)

    def put_user(self, login: str, role: str) -> tuple[UserInfo, bool]:
        """Give ``login`` the ``role``: a new user, or a role change for one who exists (as a
        form with one "add / set role" button asks). True when the user was added."""
        try:
            return self.set_user_role(login, role), False
        except NotFound:
            return self.add_user(login, role), True

    def remove_user(self, login: str) -> None:
        login = validate.term(login, "a login")
        with self.db.write() as session:
            self._require(session, "users")
            user = session.get(User, login)
            if user is None:
                raise NotFound(f"no user {shown(login)}")
            if user.role == "admin" and not self._other_admins(session, login):
                raise Conflict(f"{login} is the last admin; make someone else admin first")
            session.delete(user)
            self._event(session, "user.remove", login=login, role=user.role)

    # -- key roles -----------------------------------------------------------------------------

    def list_roles(self) -> list[str]:
        with self._read() as session:
            return list(session.scalars(select(KeyRole.name).order_by(KeyRole.name)))

    def add_role(self, name: str) -> str:
        name = validate.key_role(name)
        with self.db.write() as session:
            self._require(session, "roles")
            if session.get(KeyRole, name) is not None:
                raise Conflict(f"the key role {name} already exists")
            session.add(KeyRole(name=name, created_at=self.now()))
            self._event(session, "role.add", role=name)
            return name

    def remove_role(self, name: str) -> None:
        name = validate.term(name, "a role name")
        with self.db.write() as session:
            self._require(session, "roles")
            role = session.get(KeyRole, name)
            if role is None:
                raise NotFound(f"no key role {shown(name)}")
            holders = session.scalar(
                select(func.count())
                .select_from(Key)
                .where(Key.role == name, Key.revoked_at.is_(None))
            )
            if holders:
                raise Conflict(
                    f"{holders} unrevoked keys grant the role {name}; revoke or delete them first"
                )
            session.delete(role)
            self._event(session, "role.remove", role=name)

    # -- events --------------------------------------------------------------------------------

    def verify_event_chain(self) -> audit.ChainStatus:
        """Walk the hash-chained audit log: ``ok``, ``count``, and ``first_bad_id`` and ``reason``
        for the first event that was altered, removed or reordered. For every face."""
        return audit.verify_chain(self._read)

    def list_events(
        self,
        *,
        key_id: str | None = None,
        action: str | None = None,
        search: str = "",
        limit: int = 50,
        offset: int = 0,
    ) -> list[EventInfo]:
        """Newest first."""
        if limit < 1 or offset < 0:
            raise InvalidInput("a page needs a positive limit and an offset of 0 or more")
        statement = select(Event).order_by(Event.id.desc()).limit(limit).offset(offset)
        key_id, action = validate.term(key_id, "a key ID"), validate.term(action, "an action")
        search = validate.term(search)
        if key_id:
            statement = statement.where(Event.key_id == key_id.strip().lower())
        if action:
            statement = statement.where(Event.action.icontains(action, autoescape=True))
        if search.strip():
            term = search.strip()
            statement = statement.where(
                or_(
                    Event.actor.icontains(term, autoescape=True),
                    Event.action.icontains(term, autoescape=True),
                    Event.key_id.icontains(term, autoescape=True),
                    Event.details.icontains(term, autoescape=True),
                )
            )
        with self._read() as session:
            return [
                EventInfo(
                    e.id, e.at, e.actor, e.action, e.key_id, e.face, json.loads(e.details or "{}")
                )
                for e in session.scalars(statement)
            ]


__all__ = [
    "Counts",
    "EventInfo",
    "IssuedKey",
    "KeyInfo",
    "KeyPage",
    "KeyQuery",
    "KeyService",
    "KeytuiError",
    "RevokePlan",
    "SettingsInfo",
    "Skipped",
    "UserInfo",
    "VerifyResult",
    "permits",
]
