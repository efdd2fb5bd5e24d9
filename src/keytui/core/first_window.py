"""The app's first window of keys, read with the standard library alone.

Importing SQLAlchemy, the ORM and argon2 costs more than painting the whole screen, so the app
starts with this: for an SQLite database already at this code's schema revision, it reads the
acting user and the newest keys (exactly what ``KeyService.list_keys(KeyQuery(limit=n))``
returns, a test checks it) and the app paints them while the service loads in the background.
Anything unusual (PostgreSQL, a missing or older database, an unknown user, any error) answers
None, and the app opens the service first as before.

It only reads: no rule is decided here (the user's role is shown, and every action still goes
through the service, which checks it again).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from urllib.parse import quote

from .clock import sqlite_time, sqlite_time_or_damaged
from .location import HEAD_REVISION, SQLITE_PREFIX, resolve_url
from .values import KeyPage, UserInfo, key_info

_KEY_COLUMNS = (
    "key_id",
    "name",
    "description",
    "owner",
    "role",
    "created_at",
    "updated_at",
    "expires_at",
    "revoked_at",
    "revoked_by",
    "last_used_at",
    "use_count",
    "allowed_hosts",
)
_TIMES = ("created_at", "updated_at", "expires_at", "revoked_at", "last_used_at")


@dataclass(frozen=True)
class FirstWindow:
    path: str  # the SQLite file, as the header shows it
    user: UserInfo
    page: KeyPage  # the newest keys, offset 0


def _time(value: str | None) -> datetime | None:
    """SQLite keeps naive UTC text: read as models.UTCDateTime reads it."""
    return None if value is None else sqlite_time_or_damaged(value)


def read_first_window(
    target: str | os.PathLike[str] | None, actor: str, now: datetime, limit: int
) -> FirstWindow | None:
    """The acting user and the ``limit`` newest keys of the SQLite database at ``target``, or
    None when only the full service can say (see the module's docstring)."""
    url = resolve_url(target)
    if not url.startswith(SQLITE_PREFIX):
        return None
    path = url[len(SQLITE_PREFIX) :]
    if not os.path.isfile(path):
        return None
    try:
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        with connection:  # one read transaction: the user and the keys from one snapshot
            connection.execute("BEGIN")
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            if revision is None or revision[0] != HEAD_REVISION:
                return None
            user = connection.execute(
                "SELECT login, role, created_at FROM users WHERE login = ?", (actor,)
            ).fetchone()
            if user is None:
                return None
            rows = connection.execute(
                f"SELECT {', '.join(_KEY_COLUMNS)} FROM keys ORDER BY pk DESC LIMIT ?", (limit + 1,)
            ).fetchall()
        keys = []
        for row in rows[:limit]:
            values = dict(zip(_KEY_COLUMNS, row, strict=True))
            for name in _TIMES:
                values[name] = _time(values[name])
            keys.append(key_info(SimpleNamespace(**values), now))
        return FirstWindow(
            path,
            UserInfo(user[0], user[1], sqlite_time(user[2])),
            KeyPage(tuple(keys), 0, len(rows) > limit),
        )
    except (sqlite3.Error, ValueError, TypeError):  # anything odd: the service will say
        return None
    finally:
        connection.close()
