"""Where the database is, and which schema revision this code expects: the standard library
only, so the app can find its first window before SQLAlchemy has loaded."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "KEYTUI_DATABASE_URL"
# The newest migration; a test checks it against Alembic's own idea of "head", so opening an
# up-to-date database costs one SELECT and never imports Alembic.
HEAD_REVISION = "0003"
SQLITE_PREFIX = "sqlite:///"


def default_path() -> Path:
    from platformdirs import user_data_path

    return user_data_path("keytui", appauthor=False) / "keytui.db"


def resolve_url(target: str | os.PathLike[str] | None) -> str:
    """``--db`` takes a path or a URL; nothing given means $KEYTUI_DATABASE_URL, else the
    default."""
    if target is None or str(target) == "":
        target = os.environ.get(ENV_VAR) or default_path()
    target = str(target)
    if "://" in target:
        return target
    return SQLITE_PREFIX + str(Path(target).expanduser().resolve())
