"""Opening a database: SQLite by default (WAL, busy timeout, mode 0600) or PostgreSQL by URL.

The schema is made and upgraded by the Alembic migrations in ``migrations/``, applied on open.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .errors import BadDatabaseURL, DatabaseError, MissingDriver
from .location import HEAD_REVISION, check_directory, resolve_url

if TYPE_CHECKING:
    from alembic.config import Config

BUSY_TIMEOUT_MS = 10_000
# PostgreSQL: how long keytui's own statements wait for a lock another session holds, and how
# long a session of keytui's may sit idle inside a transaction (a hung or stopped client) before
# the server ends it and frees its locks. A wait past LOCK_TIMEOUT_S is one line: try again.
LOCK_TIMEOUT_S = 5
IDLE_IN_TRANSACTION_S = 60
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of "canceling statement due to lock timeout"
MIGRATION_LOCK = int.from_bytes(b"keytuimg", "big", signed=True)  # pg_advisory_xact_lock key


def _prepare_sqlite_file(path: Path) -> bool:
    """Create the file 0600 before SQLite does (SQLite would honour the umask, often 0644).
    True when this call created it (so a failed open removes it again)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:  # another first opener made it a moment ago
        return False
    os.close(fd)
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as new:  # WAL from the start (see above)
        new.execute("PRAGMA journal_mode = WAL")
    return True


def _clip(text: str, limit: int) -> str:
    """A driver's or user's text on one bounded line."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _remove_new_file(path: Path) -> None:
    """Take back a database file this open created, and SQLite's companions, after it failed."""
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            leftover.unlink()
        except OSError:
            pass


def access_warning(path: Path) -> str | None:
    """What to tell the user when users other than the file's owner and group can read or
    write the database (its group is how the README shares it among admins: that is fine)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if not mode & (stat.S_IROTH | stat.S_IWOTH):
        return None
    what = {stat.S_IROTH: "read", stat.S_IWOTH: "write"}
    can = " and ".join(word for bit, word in what.items() if mode & bit)
    return (
        f"{path} is open to every user on this machine (others may {can} it); "
        f"run: chmod o-rwx {path}"
    )


class Database:
    """One engine and the sessions made from it. Reads and writes are separate doors."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._reader = sessionmaker(engine, expire_on_commit=False)
        writer_engine = engine.execution_options(keytui_write=True) if self.is_sqlite else engine
        self._writer = sessionmaker(writer_engine, expire_on_commit=False)
        self._identity = self._file_identity()  # the SQLite file this opened, by inode

    def _file_identity(self) -> tuple[int, int] | None:
        path = self.sqlite_path
        if path is None:
            return None
        try:
            found = path.stat()
        except OSError:
            return None
        return (found.st_dev, found.st_ino)

    def file_gone(self) -> bool:
        """Was the SQLite file this database opened deleted (or replaced by another file) since?
        Then this process would go on writing into a file no one else can open, while the next
        opener makes a new, empty database at the path. Always False for PostgreSQL."""
        return self._identity is not None and self._file_identity() != self._identity

    @property
    def display(self) -> str:
        """The URL without a password, fit for a header line."""
        url = make_url(self.url)
        if url.drivername.startswith("sqlite"):
            return url.database or ":memory:"
        return url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        database = make_url(self.url).database
        return Path(database) if database and database != ":memory:" else None

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that takes SQLite's write lock at BEGIN, so it never fails half-way
        with "database is locked" when it would upgrade a read lock."""
        with self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        # Let SQLAlchemy, not pysqlite, say when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # Ask first: setting it needs the write lock, which a first opener's migration may hold
        # (the creator of a new file sets it before anyone else can open it). SQLite may
        # answer "locked" at once here, without waiting out the busy timeout (two first openers
        # of a new file, now and then in CI): asked again until the timeout has passed.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    cursor.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("keytui_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _install_postgres_hooks(engine: Engine) -> None:
    """A timestamptz that Python cannot hold ('infinity', a year past 9999: only a hand-made
    change writes one) reads as clock.DAMAGED_TIME instead of failing the whole query."""
    import psycopg
    from psycopg import DataError
    from psycopg.abc import AdaptContext
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    from .clock import DAMAGED_TIME

    # The driver's own loader (its C one when installed, which cannot be subclassed): the
    # pure-Python one cost a 10,000-key revoke a tenth of a second on its 30,000 times.
    oid = psycopg.postgres.types["timestamptz"].oid
    found = psycopg.adapters.get_loader(oid, Format.TEXT)
    assert found is not None
    driver_loader = found

    class DamageTolerantTimestamptzLoader(Loader):
        def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
            super().__init__(oid, context)
            self._load = driver_loader(oid, context).load

        def load(self, data: Any) -> Any:
            try:
                return self._load(data)
            except DataError:
                return DAMAGED_TIME

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.adapters.register_loader("timestamptz", DamageTolerantTimestamptzLoader)


def open_database(
    target: str | os.PathLike[str] | None = None, *, migrate: bool = True
) -> Database:
    """Open (and if needed create and upgrade) the database at ``target``.

    Raises :class:`DatabaseError` with a one-line reason on any failure.
    """
    check_directory(target)
    url = resolve_url(target)
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - parsed lazily: 'postgresql://u@[::1/x' fails here
    except (ArgumentError, ValueError) as exc:  # never echo it: it may hold a password
        raise BadDatabaseURL(
            "not a database path or URL (check its scheme, host, port and brackets)"
        ) from exc
    created: Path | None = None
    try:
        if parsed.drivername.startswith("sqlite"):
            if parsed.query:
                options = "&".join(sorted(parsed.query))
                raise BadDatabaseURL(
                    f"a SQLite URL takes no options here (got ?{_clip(options, 60)}); give the "
                    "path alone (keytui sets its own timeout; for read-only use --read-only)"
                )
            if parsed.database and parsed.database != ":memory:":
                if _prepare_sqlite_file(Path(parsed.database)):
                    created = Path(parsed.database)
            engine = create_engine(url)
            _install_sqlite_hooks(engine)
        else:
            if parsed.drivername in ("postgresql", "postgres"):
                parsed = parsed.set(drivername="postgresql+psycopg")
                url = parsed.render_as_string(hide_password=False)
            # Ours first, so any options the URL sets itself come later and win.
            options = (
                f"-c lock_timeout={LOCK_TIMEOUT_S}s "
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_S}s "
                + str(parsed.query.get("options", ""))
            ).strip()
            engine = create_engine(url, pool_pre_ping=True, connect_args={"options": options})
            if engine.dialect.driver == "psycopg":
                _install_postgres_hooks(engine)
    except (ArgumentError, ImportError, OSError, ValueError, TypeError) as exc:
        if created is not None:
            _remove_new_file(created)
        if isinstance(exc, ImportError) and parsed.get_driver_name() == "psycopg":
            raise MissingDriver(
                "PostgreSQL needs the psycopg driver: pip install 'keytui[postgres]'"
            ) from exc
        raise DatabaseError(
            f"cannot open database {parsed.render_as_string()}: {_clip(str(exc), 200)}"
        ) from exc
    database = Database(url, engine)
    if migrate:
        try:
            upgrade(database)
        except (SQLAlchemyError, ValueError, TypeError) as exc:  # bad driver options, too
            engine.dispose()
            if created is not None:
                _remove_new_file(created)
            reason = short_reason(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            raise DatabaseError(
                f"cannot open database {database.display}: {_clip(reason, 200)}"
            ) from exc
    return database


def short_reason(exc: BaseException) -> str:
    """The driver's own reason, on one line, without SQL or bound parameters."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        context = getattr(getattr(orig, "diag", None), "context", None) or ""
        table = re.search(r'relation "([^"]+)"', context)
        what = f"the {table.group(1)} table" if table else "what this change needs"
        return (
            f"another keytui holds a lock on {what} (waited {LOCK_TIMEOUT_S} s); "
            "nothing was changed, try again"
        )
    reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    for known, hint in HINTS.items():
        if known in reason:
            return f"{reason} ({hint})"
    return reason


# What a user can do about the driver's commonest reasons; nothing was written in each case.
HINTS = {
    "database is locked": f"another process held it for over {BUSY_TIMEOUT_MS // 1000} s; "
    "nothing was changed, try again",
    "database or disk is full": "free some disk space; nothing was changed",
    "attempt to write a readonly database": "the file or its directory is read-only for you",
    "unable to open database file": "check that the file and its directory exist and are "
    "writable by you",
    "file is not a database": "the file is damaged or not a keytui database",
}


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:
            return None
        return row[0] if row else None


def upgrade(database: Database, revision: str = "head") -> None:
    if revision == "head" and current_revision(database) == HEAD_REVISION:
        return
    from alembic import command

    config = alembic_config(database)
    # SQLite: BEGIN IMMEDIATE, so two openers queue on the write lock (two deferred BEGINs
    # that both read and then write would make one fail at once with "database is locked").
    engine = database.engine.execution_options(keytui_write=True)
    with engine.begin() as connection:
        if database.is_sqlite:
            connection.exec_driver_sql("SELECT 1")
        else:  # two openers of one PostgreSQL database take turns; the second finds it done
            # (a migration may take longer than the lock timeout that bounds everyday writes)
            connection.execute(text("SET LOCAL lock_timeout = '10min'"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def alembic_config(database: Database) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    return config
