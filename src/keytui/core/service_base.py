"""The plumbing every part of KeyService shares: the database, the acting user, the clock,
events, permission checks, and the verifier (see verify.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self

from argon2 import PasswordHasher
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from . import audit, changes, keyformat, validate
from .clock import Clock, seconds_clock, system_clock
from .db import Database, short_reason
from .errors import (
    DatabaseError,
    NotFound,
    PermissionDenied,
    ReadOnly,
    ReasonRequired,
    UnknownUser,
)
from .hashing import DEFAULT_HASHER
from .identity import current_login
from .models import Key, Settings, User
from .search import KeySearch
from .values import VerifyResult, permits
from .verify import Verifier

# pg_advisory_xact_lock key for "making the first user of a new database" (b"keytuibs").
BOOTSTRAP_LOCK = int.from_bytes(b"keytuibs", "big", signed=True)


class ServiceBase:
    """The state and helpers of a KeyService; its operations live in the mixins on top."""

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
        read_only: bool = False,
        warm: bool | None = None,
    ) -> None:
        self.db = database
        self.created = False  # did bootstrap() find a new database (and make its admin)?
        self.read_only = read_only  # refuses every change (keys, users, roles, settings)
        self.actor = actor or current_login()
        self.face = face
        self.clock = clock
        self.hasher = hasher
        self._find = KeySearch(database.is_sqlite)
        self.verifier = Verifier(
            database,
            now=self.now,
            seconds=seconds_clock(clock),
            hasher=hasher,
            write_events=self._events,
            watch=lambda on_change: self.watch(on_change, wait=0),
            warm=warm,
            flush_seconds=usage_flush_seconds,
            cache_size=cache_size,
        )
        self._watchers: list[changes.ChangeWatcher] = []
        self._closing = False

    def close(self) -> None:
        self._closing = True
        for watcher in list(self._watchers):
            watcher.stop()
        self.verifier.close()  # the background flush stops; what is left is written
        self.db.dispose()

    def watch(
        self, on_change: Callable[[changes.Change], None], *, wait: float = 5.0
    ) -> changes.ChangeWatcher:
        """Call ``on_change`` (from a thread of its own) after every change anyone makes to this
        database; see :mod:`keytui.core.changes`. Waits up to ``wait`` seconds for the first
        subscription. Stopped by :meth:`close` (or its ``stop``)."""
        watcher = changes.ChangeWatcher(self.db, on_change)
        # Known before it starts: a close() while it subscribes (an app quit at once) stops
        # it too, and its connection is not left open when the process ends.
        self._watchers.append(watcher)
        if self._closing:  # closed meanwhile, after its loop over the watchers
            watcher.stop()
        return watcher.start(wait)

    def __enter__(self) -> Self:
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
        events: Iterable[tuple[str, str | None, dict[str, Any]]],
        at: datetime | None = None,
    ) -> None:
        """Append events to the hash-chained audit log (the only way any event is written).

        What they change is dropped from this service's verify memory at once, and again when
        the transaction commits (other services hear it through the change signal), so a
        verify after a revoke here returns REVOKED: a verify on another thread that read the
        row before the commit and kept it meanwhile is dropped, and one still reading cannot
        keep what it read (the second drop moves the epoch it compares)."""
        at = at or self.now()
        events = list(events)
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
        change = changes.Change.from_events(
            ((0, action, key_id) for action, key_id, _ in events), 0
        )
        self.verifier.forget(change)
        event.listen(session, "after_commit", lambda _s: self.verifier.forget(change), once=True)

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

    def _writable(self) -> None:
        """May this service change anything? Not when opened read-only, nor when its SQLite
        file was deleted or replaced since it opened it (the change would land in a file no
        one can open again, and the next opener makes a new database at the path)."""
        if self.read_only:
            raise ReadOnly("opened read-only (--read-only): nothing was changed")
        if self.db.file_gone():
            raise DatabaseError(
                f"the database file {self.db.display} was deleted or replaced since keytui "
                "opened it; nothing was written (restore the file, or open the new one)"
            )

    def _require(self, session: Session, action: str, key_owner: str | None = None) -> User:
        """The acting user, if they may do ``action`` (every change passes here first)."""
        self._writable()
        user = self._user(session)
        if not permits(user.role, user.login, action, key_owner):
            if key_owner is not None and user.role == "developer":
                raise PermissionDenied(
                    f"you may only {action} your own keys; this one belongs to {key_owner}"
                )
            what = {
                "create_for_others": "create keys for others",
                "settings": "change settings",
                "users": "manage users",
                "roles": "manage key roles",
            }.get(action, f"{action} keys")
            raise PermissionDenied(f"a {user.role} may not {what}; ask an admin")
        return user

    def _key(self, session: Session, key_id: str, *, lock: bool = False) -> Key:
        key_id = validate.key_ref(key_id)  # a secret here is refused without echoing it
        if not keyformat.is_key_id(key_id):  # not even the shape of an ID: no query
            raise NotFound(f"no key with ID {validate.shown_ref(key_id)}")
        statement = select(Key).where(Key.key_id == key_id)
        if lock:
            statement = statement.with_for_update()
        row = session.scalars(statement).first()
        if row is None:
            raise NotFound(f"no key with ID {validate.shown_ref(key_id)}")
        return row

    def _settings(self, session: Session) -> Settings:
        settings = session.get(Settings, 1)
        if settings is None:  # a database whose settings row was removed by hand
            settings = Settings(
                id=1,
                keys_enabled=True,
                max_expiry_days=None,
                max_keys_per_user=100,
                require_reason=False,
            )
            session.add(settings)
        return settings

    def _reason(
        self, session: Session, action: str, reason: str | None, *, lock: bool = True
    ) -> str:
        """``reason`` as the events of a revoke, replace or delete store it (validated; ``""``
        for none), if the installation allows it: when an admin set "require a reason", none is
        refused. The one place that rule lives; inside a write, the settings row is read FOR
        SHARE, so a change of the setting waits for this change or this one sees it."""
        with validate.field("reason"):
            text = validate.reason(reason)
        if text:
            return text
        statement = select(Settings.require_reason).where(Settings.id == 1)
        if lock and not self.db.is_sqlite:
            statement = statement.with_for_update(read=True)
        if session.scalar(statement):
            raise ReasonRequired(
                f"this installation requires a reason to {action} keys (an admin's setting); "
                "say why",
                "reason",
            )
        return text

    def created_notice(self) -> str | None:
        """What a face says once when opening made a new database (a mistyped path would
        otherwise pass unseen): where it is and who its admin is. None for an existing one."""
        if not self.created:
            return None
        return f"created a new keytui database at {self.db.display}; {self.actor} is its admin"

    def bootstrap(self) -> None:
        """The first login to open a new database becomes its admin."""
        try:
            with self.db.read() as session:
                if session.scalar(select(func.count()).select_from(User)):
                    return
            with self.db.write() as session:
                # Two first openers take turns here, so the second counts the first's user.
                # SQLite's write transaction already holds the database's write lock.
                if not self.db.is_sqlite:
                    session.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": BOOTSTRAP_LOCK}
                    )
                if session.scalar(select(func.count()).select_from(User)):
                    return
                session.add(User(login=self.actor, role="admin", created_at=self.now()))
                self.created = True
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

    # -- verify (see verify.py) ------------------------------------------------------------

    def verify(self, secret: str, host: str | None = None) -> VerifyResult:
        """Is ``secret`` a current, active key allowed from ``host``? (:class:`Verifier`: from
        memory while the change signal is live, once this service has verified twice)"""
        return self.verifier.verify(secret, host)

    def flush_usage(self) -> None:
        """Write buffered use counts and ``key.verify_failed`` events (:meth:`Verifier.flush`)."""
        self.verifier.flush()
