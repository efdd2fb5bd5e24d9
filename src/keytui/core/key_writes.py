"""Creating, replacing, renaming, revoking and deleting keys: KeyService's writes to keys (a
mixin; each checks its rule and writes its event in the same transaction)."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, any_, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import keyformat, validate
from .errors import (
    DatabaseError,
    InvalidInput,
    LimitReached,
    NotActive,
    NotDelivered,
    NotFound,
    PermissionDenied,
)
from .hashing import hash_secret
from .models import Key, KeyRole, KeyUsage, User
from .search import UNREVOKED, status_filter
from .service_base import ServiceBase
from .validate import shown
from .values import (
    DEFAULT_EXPIRY,
    IssuedKey,
    KeyInfo,
    RevokePlan,
    Skipped,
    SkipReason,
    default_role,
    iso_utc,
    key_info,
    permits,
    status_of,
)

# What a KeyInfo is made of (the hash is never needed to describe a key).
_INFO_COLUMNS = [c for c in Key.__table__.c if c.name not in ("pk", "secret_hash")]
# A key's row as plain values: SQLAlchemy's Row answers an attribute in about 0.6 us, ten
# times a tuple's, and a 10,000-key revoke read each row's fields some twenty times.
_InfoRow = namedtuple("_InfoRow", ["pk", *(c.name for c in _INFO_COLUMNS)])  # type: ignore[misc]


def _info_rows(session: Session, where: ColumnElement[bool], *, lock: bool = False) -> list[Any]:
    """The pk and every shown column of the keys ``where`` selects, as :data:`_InfoRow`;
    ``lock``: read locked in pk order (PostgreSQL; what :func:`lock_keys` takes)."""
    statement = select(Key.pk, *_INFO_COLUMNS).where(where)
    if lock and _postgres(session):
        statement = statement.order_by(Key.pk).with_for_update()
    return list(map(_InfoRow._make, session.execute(statement)))


CHUNK = 500  # keys per statement in bulk changes


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as one array parameter (``column = ANY(:values)``):
    an IN of 10,000 placeholders cost more to build, convert and parse than the lookup itself."""
    if _postgres(session):
        return cast(
            "ColumnElement[bool]",
            column == any_(bindparam(None, list(values), type_=ARRAY(column.type))),
        )
    return cast("ColumnElement[bool]", column.in_(list(values)))


def lock_keys(session: Session, pks: Sequence[int]) -> None:
    """Lock the rows of ``pks`` (PostgreSQL; SQLite's write transaction holds the whole
    database) in pk order, the one order every writer of several keys takes (the usage flush
    too), so two writers over the same keys queue instead of deadlocking. One statement: the
    rows are locked as the sort hands them over, in pk order."""
    if not _postgres(session) or not pks:
        return
    ordered = sorted(set(pks))
    session.execute(
        select(Key.pk).where(among(session, Key.pk, ordered)).order_by(Key.pk).with_for_update()
    )


def _per_statement(session: Session, pks: Sequence[int]) -> list[Sequence[int]]:
    """``pks`` in the pieces one statement takes: all of them on PostgreSQL (one array
    parameter), :data:`CHUNK` at a time on SQLite (its bound on placeholders)."""
    step = (len(pks) if _postgres(session) else CHUNK) or 1
    return [pks[start : start + step] for start in range(0, len(pks), step)]


def revoke_rows(
    session: Session, pks: Sequence[int], now: datetime, actor: str, *, locked: bool = False
) -> list[tuple[str, str]]:
    """Lock (:func:`lock_keys`; ``locked``: the caller already holds them, taken in pk order)
    and revoke the keys among ``pks`` that are still unrevoked (the rule "only active keys",
    checked again under the lock); the (ID, name) of each key revoked, in pk order. The one
    way every bulk revoke writes (revoke_keys, remove_user)."""
    if not locked:
        lock_keys(session, pks)
    done: list[tuple[str, str]] = []
    for piece in _per_statement(session, sorted(set(pks))):
        result = session.execute(
            update(Key)
            .where(among(session, Key.pk, piece), UNREVOKED)
            .values(revoked_at=now, revoked_by=actor, updated_at=now)
            .returning(Key.pk, Key.key_id, Key.name)
            .execution_options(synchronize_session=False)
        )
        done += [(row.key_id, row.name) for row in sorted(result, key=lambda row: row.pk)]
    return done


def delete_rows(session: Session, pks: Sequence[int]) -> None:
    """Delete the keys ``pks``, already locked by the caller (:func:`lock_keys`), and their
    verifications by hour (a flush running meanwhile may add a row back: no key reads it, and
    it is pruned with its hour)."""
    for piece in _per_statement(session, sorted(set(pks))):
        session.execute(
            delete(KeyUsage)
            .where(KeyUsage.key_id.in_(select(Key.key_id).where(among(session, Key.pk, piece))))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(Key)
            .where(among(session, Key.pk, piece))
            .execution_options(synchronize_session=False)
        )


Deliver = Callable[[IssuedKey], None]


def _because(reason: str) -> dict[str, str]:
    """The ``reason`` entry of a change's event details; none when no reason was given."""
    return {"reason": reason} if reason else {}


def _deliver(deliver: Deliver | None, issued: IssuedKey) -> None:
    """Hand the new secret to whoever asked (print it, write it to a file), inside the
    transaction that makes it, before it commits: if ``deliver`` raises, the change is rolled
    back, so no key (and no replacement that kills the old secret) stands whose secret reached
    no one. The error names what failed, never the secret."""
    if deliver is None:
        return
    try:
        deliver(issued)
    except Exception as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise NotDelivered(
            f"the new secret could not be written ({reason}); nothing was changed"
        ) from None


class KeyWritesMixin(ServiceBase):
    """create, replace, rename, revoke and delete keys, for KeyService."""

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
        deliver: Deliver | None = None,
    ) -> IssuedKey:
        """A new key; its secret is in the result and nowhere else, ever.

        ``expires``: ``None``/``"never"``, ``"90d"``, ``"YYYY-MM-DD"`` or a datetime; left out,
        the installation's maximum expiry (or never, when there is none). ``deliver``: see
        :func:`_deliver` (the key stands only if it returns).
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
                    creator = self._require(session, "create", owner)
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
                    # FOR SHARE: remove_role (FOR UPDATE) waits for this key, or we for it.
                    role_row = session.scalars(
                        select(KeyRole).where(KeyRole.name == role).with_for_update(read=True)
                    ).first()
                    if role_row is None:
                        raise NotFound(f"no key role {shown(role)}; see: keytui roles list", "role")
                    if creator.role != "admin" and not role_row.developers:
                        raise PermissionDenied(
                            f"a {creator.role} may not create keys with the role {role}, only "
                            "with roles an admin lets developers grant (see: keytui roles list)",
                            "role",
                        )
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
                        .where(Key.owner == owner, status_filter("active", now))
                    )
                    most = settings.max_keys_per_user
                    if (active or 0) >= most:
                        raise LimitReached(
                            f"{owner} already has {active} active keys, the maximum per user "
                            f"({most}); revoke one or ask an admin to raise it",
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
                        expires_at=iso_utc(expires_at),
                        allowed_hosts=hosts,
                    )
                    issued = IssuedKey(key_info(row, now), secret)
                    _deliver(deliver, issued)
                    return issued
            except IntegrityError:
                continue  # the random ID was taken: draw another
        raise DatabaseError("could not find a free key ID; try again")

    def _default_role(self, session: Session) -> str:
        role = default_role(list(session.scalars(select(KeyRole.name).order_by(KeyRole.name))))
        if role is None:
            raise NotFound(
                "this installation has no key roles; an admin can add one with: "
                "keytui roles add NAME"
            )
        return role

    def check(self, action: str, key_id: str | None = None) -> KeyInfo | None:
        """Would ``action`` (create, rename, replace, revoke, delete; settings, users, roles
        without a key) be allowed now, on ``key_id``? Raises what the action itself would
        (PermissionDenied, NotFound, NotActive, keys disabled) and changes nothing: a face asks
        before it opens the action's dialog, so nobody fills in a form that will be refused.
        Returns the key as it is now."""
        now = self.now()
        with self.db.read() as session:
            if key_id is None:
                self._require(session, action)
                if action == "create" and not self._settings(session).keys_enabled:
                    raise LimitReached(
                        "API keys are disabled in this installation; an admin "
                        "can enable them with: keytui settings set --enable"
                    )
                return None
            row = self._key(session, key_id)
            self._require(session, action, row.owner)
            status = status_of(row.revoked_at, row.expires_at, now)
            if action in ("replace", "revoke") and status != "active":
                raise NotActive(f"key {row.key_id} is {status}; only active keys can be {action}d")
            return key_info(row, now)

    def replace_key(
        self, key_id: str, *, reason: str | None = None, deliver: Deliver | None = None
    ) -> IssuedKey:
        """A new secret for the same key ID; the old one fails on the very next verify.
        ``reason``: stored in its event (see ServiceBase._reason). ``deliver``: see
        :func:`_deliver` (the replacement stands only if it returns)."""
        now = self.now()
        with validate.field("reason"):
            validate.reason(reason)
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
            why = self._reason(session, "replace", reason)
            row.secret_hash = secret_hash
            row.updated_at = now
            session.flush()
            self._event(session, "key.replace", key_id, name=row.name, **_because(why))
            issued = IssuedKey(key_info(row, now), secret)
            _deliver(deliver, issued)
            return issued

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
        self, session: Session, key_ids: Sequence[str], now: datetime, *, lock: bool = False
    ) -> tuple[list[Any], list[Skipped]]:
        """The rows of the keys among ``key_ids`` that may be revoked now, and the rest with
        the reason. Plain rows: a 10,000-key revoke spent most of its time building objects.
        ``lock``: the rows are read locked, in pk order (what :func:`lock_keys` takes), so
        the read is the lock and a revoke needs no second statement for it."""
        user = self._require(session, "revoke")
        wanted = list(dict.fromkeys(validate.key_ref(k) for k in key_ids if isinstance(k, str)))
        shaped = [key_id for key_id in wanted if keyformat.is_key_id(key_id)]
        rows = (
            {
                row.key_id: row
                for row in _info_rows(session, among(session, Key.key_id, shaped), lock=lock)
            }
            if shaped
            else {}
        )
        revocable: list[Any] = []
        skipped: list[Skipped] = []
        for key_id in wanted:
            row = rows.get(key_id)
            if row is None:
                skipped.append(Skipped(key_id, SkipReason.NOT_FOUND))
                continue
            status = status_of(row.revoked_at, row.expires_at, now)
            if status == "revoked":
                skipped.append(Skipped(key_id, SkipReason.ALREADY_REVOKED, name=row.name))
            elif status == "expired":
                skipped.append(Skipped(key_id, SkipReason.EXPIRED, name=row.name))
            elif not permits(user.role, user.login, "revoke", row.owner):
                if user.role == "developer":
                    skipped.append(Skipped(key_id, SkipReason.NOT_YOURS, row.owner, row.name))
                else:
                    skipped.append(Skipped(key_id, SkipReason.NOT_PERMITTED, name=row.name))
            else:
                revocable.append(row)
        return revocable, skipped

    def plan_revoke(self, key_ids: Sequence[str]) -> RevokePlan:
        """What ``revoke_keys(key_ids)`` would do now, for a confirmation dialog: also whether
        a reason is required and whether the keys are every active key of the installation."""
        now = self.now()
        with self.db.read() as session:
            revocable, skipped = self._revoke_candidates(session, key_ids, now)
            required = bool(self._settings(session).require_reason)
            active = (
                session.scalar(
                    select(func.count()).select_from(Key).where(status_filter("active", now))
                )
                if revocable
                else None
            )
        return RevokePlan(
            tuple(key_info(row, now) for row in revocable),
            tuple(skipped),
            reason_required=required,
            every_active=active == len(revocable),
        )

    def revoke_keys(self, key_ids: Sequence[str], *, reason: str | None = None) -> RevokePlan:
        """Revoke the active keys among ``key_ids`` in one transaction; report the rest.
        ``reason``: stored in every ``key.revoke`` event (see ServiceBase._reason)."""
        now = self.now()
        with validate.field("reason"):
            validate.reason(reason)
        with self.db.write() as session:
            revocable, skipped = self._revoke_candidates(session, key_ids, now, lock=True)
            why = _because(self._reason(session, "revoke", reason)) if revocable else {}
            done = {
                key_id
                for key_id, _name in revoke_rows(
                    session, [row.pk for row in revocable], now, self.actor, locked=True
                )
            }
            revoked = []
            for row in revocable:
                if row.key_id in done:
                    revoked.append(row)
                else:  # revoked by another since our read (a guard: the read is locked)
                    skipped.append(Skipped(row.key_id, SkipReason.ALREADY_REVOKED, name=row.name))
            self._events(
                session,
                [("key.revoke", row.key_id, {"name": row.name, **why}) for row in revoked],
                at=now,
            )
        return RevokePlan(
            tuple(key_info(row, now, revoked_by=self.actor) for row in revoked), tuple(skipped)
        )

    def revoke_key(self, key_id: str, *, reason: str | None = None) -> KeyInfo:
        """Revoke one key, or say why not (not found, not permitted, not active)."""
        plan = self.revoke_keys([key_id], reason=reason)
        if plan.revoke:
            return plan.revoke[0]
        skipped = plan.skipped[0]
        if skipped.why is SkipReason.NOT_FOUND:
            raise NotFound(f"no key with ID {validate.shown_ref(key_id)}")
        if skipped.why in (SkipReason.NOT_YOURS, SkipReason.NOT_PERMITTED):
            with self.db.read() as session:
                self._require(session, "revoke", self._key(session, key_id).owner)
        state = "revoked" if skipped.why is SkipReason.ALREADY_REVOKED else skipped.why.value
        raise NotActive(f"key {skipped.id} is {state}; only active keys can be revoked")

    def delete_keys(
        self, key_ids: Sequence[str], *, reason: str | None = None
    ) -> tuple[KeyInfo, ...]:
        """Remove keys entirely; all or none. Their events stay. ``reason``: stored in every
        ``key.delete`` event (see ServiceBase._reason)."""
        now = self.now()
        wanted = list(dict.fromkeys(validate.key_ref(k) for k in key_ids))
        if not wanted:
            raise InvalidInput("name at least one key to delete")
        with validate.field("reason"):
            validate.reason(reason)
        shaped = [key_id for key_id in wanted if keyformat.is_key_id(key_id)]
        with self.db.write() as session:
            found = (
                list(session.scalars(select(Key.pk).where(among(session, Key.key_id, shaped))))
                if shaped
                else []
            )
            lock_keys(session, found)
            # Read again, locked: a key deleted meanwhile is not found, all or none.
            rows = (
                {row.key_id: row for row in _info_rows(session, among(session, Key.pk, found))}
                if found
                else {}
            )
            for key_id in wanted:
                if key_id not in rows:
                    raise NotFound(f"no key with ID {validate.shown_ref(key_id)}")
            for owner in dict.fromkeys(rows[key_id].owner for key_id in wanted):
                self._require(session, "delete", owner)
            chosen = [rows[key_id] for key_id in wanted]
            why = _because(self._reason(session, "delete", reason))
            deleted = tuple(key_info(row, now) for row in chosen)
            delete_rows(session, [row.pk for row in chosen])
            self._events(
                session,
                [
                    ("key.delete", row.key_id, {"name": row.name, "owner": row.owner, **why})
                    for row in chosen
                ],
                at=now,
            )
            return deleted
