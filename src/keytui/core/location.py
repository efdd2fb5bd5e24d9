"""Where the database is, and which schema revision this code expects: the standard library
only, so the app can find its first window before SQLAlchemy has loaded."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "KEYTUI_DATABASE_URL"
# The newest migration; a test checks it against Alembic's own idea of "head", so opening an
# up-to-date database costs one SELECT and never imports Alembic.
HEAD_REVISION = "0006"
SQLITE_PREFIX = "sqlite:///"


def default_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("keytui", appauthor=False) / "keytui.db"


def check_directory(target: str | os.PathLike[str] | None) -> None:
    """An explicit SQLite path (``--db`` or $KEYTUI_DATABASE_URL) must be in a directory that
    exists: ``--db /mistyped/dir/keys.db`` is refused, naming it, and nothing is created. Only
    the default path's directory is made on first use."""
    explicit = not (target is None or str(target) == "") or bool(os.environ.get(ENV_VAR))
    url = resolve_url(target)
    if not explicit or not url.startswith(SQLITE_PREFIX):
        return
    path = Path(url[len(SQLITE_PREFIX) :])
    if str(path) == ":memory:" or path.parent.is_dir():
        return
    from .errors import NoSuchDirectory

    raise NoSuchDirectory(
        f"no directory {path.parent} for the database {path}; create it, or check the path "
        "(nothing was created)"
    )


def resolve_url(target: str | os.PathLike[str] | None) -> str:
    """``--db`` takes a path or a URL; nothing given means $KEYTUI_DATABASE_URL, else the
    default."""
    if target is None or str(target) == "":
        target = os.environ.get(ENV_VAR) or default_path()
    target = str(target)
    if "://" in target:
        return target
    return SQLITE_PREFIX + str(Path(target).expanduser().resolve())
