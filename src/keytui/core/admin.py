"""Installation settings, keytui users, key roles and the audit log: the administration half
of KeyService (a mixin; every method checks its rule through ``_require``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import audit, validate
from .errors import Conflict, InvalidInput, NotFound
from .models import Event, Key, KeyRole, Settings, User
from .service_base import ServiceBase
from .validate import shown
from .values import UNSET, EventInfo, SettingsInfo, UserInfo


class AdminMixin(ServiceBase):
    """Settings, users, key roles and events, for KeyService."""

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
