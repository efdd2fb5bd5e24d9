"""KeyService: the one door to keys, users, roles, settings and events.

The TUI, the CLI and the tests all go through these methods. Every rule (who may do what, limits,
which key states allow which change) is checked here and nowhere else, and every change writes an
event in the same transaction as the change itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import keyformat
from .admin import AdminMixin
from .db import open_database
from .errors import InvalidInput, KeytuiError, NotFound
from .key_writes import KeyWritesMixin
from .models import Event, Key, KeyRole, Settings, User
from .search import SAMPLE_ROWS, SEARCH_PAD, UNREVOKED, key_order, status_filter
from .usage_reads import UsageReadsMixin
from .validate import shown
from .values import (  # re-exported: the faces import the service's values from here too
    DEFAULT_EXPIRY,
    MAX_PAGE,
    SORTABLE,
    STATUSES,
    UNSET,
    Counts,
    EventInfo,
    IssuedKey,
    KeyDefaults,
    KeyInfo,
    KeyPage,
    KeyQuery,
    RevokePlan,
    SettingsInfo,
    Skipped,
    SkipReason,
    Status,
    UserInfo,
    VerifyCode,
    VerifyResult,
    default_expiry_days,
    default_role,
    key_info,
    permits,
)

ALL_KEYS = KeyQuery()  # the first page of every key, newest first


class KeyService(KeyWritesMixin, AdminMixin, UsageReadsMixin):
    """Every operation keytui offers, for one acting user, on one database.

    The parts: ``ServiceBase`` (plumbing, verify), ``KeyWritesMixin`` (key changes),
    ``AdminMixin`` (settings, users, roles, events), ``UsageReadsMixin`` (how keys are used);
    reading keys is here.
    """

    @classmethod
    def open(cls, target: str | None = None, **kwargs: Any) -> KeyService:
        """Open the database at ``target`` (path, URL, or the default) and bootstrap it."""
        service = cls(open_database(target), **kwargs)
        service.bootstrap()
        return service

    # -- who am I ------------------------------------------------------------------------------

    def whoami(self) -> UserInfo | None:
        with self.db.read() as session:
            user = session.get(User, self.actor)
            return UserInfo(user.login, user.role, user.created_at) if user else None

    def permits(self, action: str, key: KeyInfo | None = None, role: str | None = UNSET) -> bool:
        """Would the acting user be allowed ``action`` (on ``key``)? For faces that grey out
        what the user may not do; the methods below enforce the same rule on every call."""
        if self.read_only:
            return False
        if role is UNSET:
            me = self.whoami()
            role = me.role if me else None
        return permits(role, self.actor, action, key.owner if key else None)

    def key_defaults(self) -> KeyDefaults:
        """The role and expiry a new key gets unless its creator picks others: the same in the
        app's form and the CLI's ``keys create`` (see values.default_expiry_days)."""
        with self._read() as session:
            settings = session.get(Settings, 1)
            roles = self._grantable(session)
        limit = settings.max_expiry_days if settings is not None else None
        return KeyDefaults(default_role(roles), default_expiry_days(limit))

    def grantable_roles(self) -> list[str]:
        """The key roles the acting user may give a new key, by name: every role for an admin,
        the roles marked for developers (``roles set NAME --developers``) for a developer."""
        with self._read() as session:
            return self._grantable(session)

    def _grantable(self, session: Session) -> list[str]:
        statement = select(KeyRole.name).order_by(KeyRole.name)
        if self._user(session).role != "admin":
            statement = statement.where(KeyRole.developers.is_(True))
        return list(session.scalars(statement))

    # -- reading keys --------------------------------------------------------------------------

    def list_keys(self, query: KeyQuery = ALL_KEYS) -> KeyPage:
        """One page of keys, filtered, sorted and paged in SQL."""
        if query.sort not in SORTABLE:
            raise InvalidInput(f"cannot sort by {shown(query.sort)}; choose {', '.join(SORTABLE)}")
        if not (1 <= query.limit <= MAX_PAGE and 0 <= query.offset <= MAX_PAGE):
            raise InvalidInput(
                f"a page needs a limit of 1 to {MAX_PAGE:,} and an offset of 0 to {MAX_PAGE:,}"
            )
        now = self.now()
        with self._read() as session:
            where = self._find.filters(query.search, query.status, query.owner, now, session)
            if query.sort == "uses_24h":  # the used keys, then the rest (see usage_reads)
                rows = self._by_uses(session, where, query, now)
            else:
                statement = (
                    select(Key)
                    .where(*where)
                    .order_by(*key_order(query.sort, query.descending, now))
                    .limit(query.limit + 1)
                    .offset(query.offset)
                )
                rows = list(session.scalars(statement).all())
        return KeyPage(
            tuple(key_info(row, now) for row in rows[: query.limit]),
            query.offset,
            len(rows) > query.limit,
        )

    def iter_keys(self, query: KeyQuery = ALL_KEYS, page_size: int = 500) -> Iterable[KeyInfo]:
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
        with self._read() as session:
            statement = self._find.count(search, status, owner, now, session, cap)
            return int(session.scalar(statement) or 0)

    def counts(self) -> Counts:
        """How many keys are active, expired and revoked: three counts that read indexes only
        (migration 0003's on revoked_at, expires_at), in one transaction."""
        now = self.now()

        def count(*where: Any) -> Any:
            return select(func.count()).select_from(Key).where(*where)

        with self._read() as session:
            total = int(session.scalar(count()) or 0)
            revoked = int(session.scalar(count(status_filter("revoked", now))) or 0)
            expired = int(
                session.scalar(count(UNREVOKED, Key.expires_at.is_not(None), Key.expires_at <= now))
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
                .where(*self._find.filters(search, status, owner, self.now(), session))
                .order_by(Key.pk.desc())
                .limit(limit)
            )
            return list(session.scalars(statement))

    def get_key(self, key_id: str) -> KeyInfo:
        with self._read() as session:
            return key_info(self._key(session, key_id), self.now())

    # -- reasons -------------------------------------------------------------------------------

    def check_reason(self, action: str, reason: str | None) -> str:
        """``reason`` as a revoke, replace or delete (``action``) would store it, or the refusal
        that change would raise (a bad reason; none where the installation requires one).
        Changes nothing: a face asks before its confirmation, so nobody confirms a change
        that will be refused. The change itself checks again, in its transaction."""
        if action not in ("revoke", "replace", "delete"):
            raise InvalidInput(f"no reason is asked for {shown(str(action))}")
        with self._read() as session:
            return self._reason(session, action, reason, lock=False)

    def revocation_reason(self, key_id: str) -> str | None:
        """Why the key was revoked, as its ``key.revoke`` event says (None: not revoked, or
        revoked without a reason)."""
        with self._read() as session:
            row = self._key(session, key_id)
            if row.revoked_at is None:
                return None
            details = session.scalar(
                select(Event.details)
                .where(Event.key_id == row.key_id, Event.action == "key.revoke")
                .order_by(Event.id.desc())
                .limit(1)
            )
        try:
            reason = json.loads(details or "{}").get("reason")
        except (ValueError, AttributeError, RecursionError):  # changed outside keytui
            return None
        return reason if isinstance(reason, str) and reason else None

    # -- from a leaked secret to its key -------------------------------------------------------

    def identify(self, secret: str) -> KeyInfo:
        """The key a secret belongs to, by the ID inside it, after its checksum is checked.

        A read, for anyone who may read keys: no use is counted, no argon2 runs and no event is
        written. It names the key; it does not say whether ``secret`` is the key's *current*
        secret (a replaced key's old secret names it too): :meth:`verify` does, and counts a use.
        """
        key_id = keyformat.key_id_of(secret) if isinstance(secret, str) else None
        if key_id is None:
            raise InvalidInput(keyformat.secret_problem(secret))
        with self._read() as session:
            row = session.scalars(select(Key).where(Key.key_id == key_id)).first()
            if row is None:
                raise NotFound(f"{keyformat.elided(key_id)} is not a key of this database")
            return key_info(row, self.now())

    def find_keys(self, key_ids: Iterable[str]) -> dict[str, KeyInfo]:
        """The keys among ``key_ids`` that exist, by ID (one query per 500 IDs): for a scan
        that found secrets and asks, once per distinct ID, what their keys are."""
        wanted = sorted({k for k in key_ids if keyformat.is_key_id(k)})
        found: dict[str, KeyInfo] = {}
        now = self.now()
        with self._read() as session:
            for chunk in range(0, len(wanted), 500):
                rows = session.scalars(
                    select(Key).where(Key.key_id.in_(wanted[chunk : chunk + 500]))
                )
                found.update((row.key_id, key_info(row, now)) for row in rows)
        return found


__all__ = [
    "DEFAULT_EXPIRY",
    "SAMPLE_ROWS",
    "SEARCH_PAD",
    "SORTABLE",
    "STATUSES",
    "UNSET",
    "Counts",
    "EventInfo",
    "IssuedKey",
    "KeyDefaults",
    "KeyInfo",
    "KeyPage",
    "KeyQuery",
    "KeyService",
    "KeytuiError",
    "RevokePlan",
    "SettingsInfo",
    "SkipReason",
    "Skipped",
    "UserInfo",
    "VerifyCode",
    "VerifyResult",
    "permits",
]
