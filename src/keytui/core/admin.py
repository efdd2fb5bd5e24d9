"""Installation settings, keytui users, key roles and the audit log: the administration half
of KeyService (a mixin; every method checks its rule through ``_require``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import audit, validate
from .errors import Conflict, InvalidInput, NotFound
from .key_writes import revoke_rows
from .models import Event, Key, KeyRole, Settings, User
from .search import status_filter
from .service_base import ServiceBase
from .validate import shown
from .values import MAX_PAGE, UNSET, EventInfo, SettingsInfo, UserInfo, event_info


class AdminMixin(ServiceBase):
    """Settings, users, key roles and events, for KeyService."""

    # -- settings ------------------------------------------------------------------------------

    def get_settings(self) -> SettingsInfo:
        with self._read() as session:
            settings = session.get(Settings, 1)
            if settings is None:
                return SettingsInfo(True, None, 100, False)
            return SettingsInfo(
                settings.keys_enabled,
                settings.max_expiry_days,
                settings.max_keys_per_user,
                settings.require_reason,
            )

    def update_settings(
        self,
        *,
        keys_enabled: bool | None = None,
        max_expiry_days: int | None = UNSET,
        max_keys_per_user: int | None = None,
        require_reason: bool | None = None,
    ) -> SettingsInfo:
        if max_expiry_days is not UNSET:
            validate.max_expiry_days(max_expiry_days)
        if max_keys_per_user is not None:
            validate.max_keys_per_user(max_keys_per_user)
        if require_reason is not None and not isinstance(require_reason, bool):
            raise InvalidInput("require a reason is on or off (true or false)")
        with self.db.write() as session:
            self._require(session, "settings")
            settings = self._settings(session)
            changes: dict[str, Any] = {}
            for column, value in (
                ("keys_enabled", keys_enabled),
                ("max_expiry_days", max_expiry_days),
                ("max_keys_per_user", max_keys_per_user),
                ("require_reason", require_reason),
            ):
                if value is UNSET or (value is None and column != "max_expiry_days"):
                    continue
                if getattr(settings, column) != value:
                    changes[column] = [getattr(settings, column), value]
                    setattr(settings, column, value)
            if changes:
                self._event(session, "settings.update", **changes)
            return SettingsInfo(
                settings.keys_enabled,
                settings.max_expiry_days,
                settings.max_keys_per_user,
                settings.require_reason,
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

    def _lock_admins(self, session: Session, login: str) -> tuple[User | None, int]:
        """Lock every admin's row and ``login``'s, in login order (the one order every writer of
        users takes), before reading them: "the last admin" then holds when two admins demote or
        remove each other at once (the second waits, and reads the first one's outcome). Returns
        ``login``'s row and how many admins there are besides."""
        rows = session.scalars(
            select(User)
            .where(or_(User.role == "admin", User.login == login))
            .order_by(User.login)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
        user = next((row for row in rows if row.login == login), None)
        return user, sum(1 for row in rows if row.role == "admin" and row.login != login)

    def set_user_role(self, login: str, role: str) -> UserInfo:
        role, login = validate.user_role(role), validate.term(login, "a login")
        with self.db.write() as session:
            user, other_admins = self._lock_admins(session, login)
            self._require(session, "users")
            if user is None:
                raise NotFound(f"no user {shown(login)}")
            if user.role == "admin" and role != "admin" and not other_admins:
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

    def remove_user(self, login: str, *, revoke_keys: bool = False) -> int:
        """Remove ``login`` from keytui. Their keys stay theirs and keep working, unless
        ``revoke_keys``: then their active keys are revoked in the same transaction (a
        ``key.revoke`` event each). Returns how many active keys they had."""
        login = validate.term(login, "a login")
        now = self.now()
        with self.db.write() as session:
            # Their row is locked here (with the admins'): create_key locks the owner's row, so
            # no key of theirs can appear between this count and the commit.
            user, other_admins = self._lock_admins(session, login)
            self._require(session, "users")
            if user is None:
                raise NotFound(f"no user {shown(login)}")
            if user.role == "admin" and not other_admins:
                raise Conflict(f"{login} is the last admin; make someone else admin first")
            active = list(
                session.scalars(
                    select(Key.pk).where(Key.owner == login, status_filter("active", now))
                )
            )
            revoked: list[tuple[str, str | None, dict[str, Any]]] = []
            if revoke_keys and active:
                revoked = [
                    ("key.revoke", key_id, {"name": name, "reason": "owner removed"})
                    for key_id, name in revoke_rows(session, active, now, self.actor)
                ]
            session.delete(user)
            details: dict[str, Any] = {"login": login, "role": user.role}
            if revoke_keys:
                details["revoked_keys"] = len(revoked)
            else:
                details["active_keys"] = len(active)
            self._events(session, [*revoked, ("user.remove", None, details)], at=now)
            return len(active)

    # -- key roles -----------------------------------------------------------------------------

    def list_roles(self) -> list[str]:
        with self._read() as session:
            return list(session.scalars(select(KeyRole.name).order_by(KeyRole.name)))

    def list_role_grants(self) -> list[tuple[str, bool]]:
        """Every key role by name, with whether developers may grant it."""
        with self._read() as session:
            return [
                (row.name, row.developers)
                for row in session.execute(
                    select(KeyRole.name, KeyRole.developers).order_by(KeyRole.name)
                )
            ]

    def add_role(self, name: str, *, developers: bool = False) -> str:
        """A new key role; ``developers``: developers may create keys with it (else admins
        only)."""
        name = validate.key_role(name)
        with self.db.write() as session:
            self._require(session, "roles")
            if session.get(KeyRole, name) is not None:
                raise Conflict(f"the key role {name} already exists")
            session.add(KeyRole(name=name, created_at=self.now(), developers=bool(developers)))
            if developers:
                self._event(session, "role.add", role=name, developers=True)
            else:
                self._event(session, "role.add", role=name)
            return name

    def set_role_developers(self, name: str, allowed: bool) -> None:
        """Let developers create keys with the role ``name`` (or stop them: keys they made
        with it keep it)."""
        name = validate.term(name, "a role name")
        with self.db.write() as session:
            self._require(session, "roles")
            role = session.get(KeyRole, name)
            if role is None:
                raise NotFound(f"no key role {shown(name)}")
            if role.developers != bool(allowed):
                role.developers = bool(allowed)
                self._event(
                    session, "role.update", role=name, developers=[not allowed, bool(allowed)]
                )

    def remove_role(self, name: str) -> None:
        name = validate.term(name, "a role name")
        with self.db.write() as session:
            self._require(session, "roles")
            # Locked before counting its holders: a key being created with it holds it FOR
            # SHARE (see create_key) until it commits, so the count below sees that key, or the
            # creator waits and then finds the role gone.
            role = self._removable_role(session, name, lock=True)
            session.delete(role)
            self._event(session, "role.remove", role=name)

    def check_remove_role(self, name: str) -> None:
        """Would removing the key role ``name`` be allowed now? Raises what ``remove_role``
        would (PermissionDenied, NotFound, Conflict while unrevoked keys grant it) and changes
        nothing: a face asks before its question, so nobody confirms a refused removal."""
        name = validate.term(name, "a role name")
        with self.db.read() as session:
            self._require(session, "roles")
            self._removable_role(session, name, lock=False)

    def _removable_role(self, session: Session, name: str, *, lock: bool) -> KeyRole:
        query = select(KeyRole).where(KeyRole.name == name)
        role = session.scalars(query.with_for_update() if lock else query).first()
        if role is None:
            raise NotFound(f"no key role {shown(name)}")
        holders = session.scalar(
            select(func.count()).select_from(Key).where(Key.role == name, Key.revoked_at.is_(None))
        )
        if holders:
            keys = "1 unrevoked key grants" if holders == 1 else f"{holders} unrevoked keys grant"
            them = "it" if holders == 1 else "them"
            raise Conflict(f"{keys} the role {name}; revoke or delete {them} first")
        return role

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
        if not (1 <= limit <= MAX_PAGE and 0 <= offset <= MAX_PAGE):
            raise InvalidInput(
                f"a page needs a limit of 1 to {MAX_PAGE:,} and an offset of 0 to {MAX_PAGE:,}"
            )
        statement = select(Event).order_by(Event.id.desc()).limit(limit).offset(offset)
        key_id, action = validate.term(key_id, "a key ID"), validate.term(action, "an action")
        search = validate.term(search)
        if key_id and key_id.strip():  # an ID or the start of one, as the main search takes
            prefix = validate.key_ref(key_id)
            statement = statement.where(Event.key_id.startswith(prefix, autoescape=True))
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
            return [event_info(e) for e in session.scalars(statement)]
