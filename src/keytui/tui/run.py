"""Start the app for the CLI; imported only when the app is wanted, so scripts stay light."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..core.service import KeyService

FACE = "tui"


def run_app(target: str | os.PathLike[str] | None, *, read_only: bool = False) -> None:
    """The app on the database at ``target``. When the first window can be read without the
    service (core/first_window.py), it is painted at once and the service opens behind it;
    otherwise the service opens first (creating or upgrading the database, or saying why not)."""
    from ..core.clock import system_clock
    from ..core.first_window import read_first_window
    from ..core.identity import current_login
    from .app import make_app
    from .window import WINDOW

    actor = current_login()
    follow_the_terminal()

    def opener() -> KeyService:
        from ..core.service import KeyService

        return KeyService.open(
            None if target is None else os.fspath(target),
            actor=actor,
            face=FACE,
            read_only=read_only,
        )

    first = read_first_window(target, actor, system_clock(), WINDOW)
    if first is None:
        with opener() as service:
            make_app(service, read_only=read_only, announce_created=True).run()
        _leave_at_once()

    app = make_app(
        None,
        clock=system_clock,
        read_only=read_only,
        opener=opener,
        first=first,
        actor=actor,
        announce_created=True,
    )
    try:
        app.run()
    finally:
        app.close_service()
    app.raise_open_error()
    _leave_at_once()


def _leave_at_once() -> NoReturn:
    """The app has ended and its service is closed (usage flushed, engine disposed): leave
    now. Python's own teardown after it (finalising Textual's, Rich's and SQLAlchemy's modules
    and a large heap) kept the shell prompt waiting ~0.5 s after ``q``; nothing in it is
    ours. The exit handlers still run and the output is flushed."""
    import atexit
    import sys

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def follow_the_terminal() -> None:
    """Textual reads the terminal's size through ``shutil.get_terminal_size``, which takes
    ``$COLUMNS`` and ``$LINES`` first when they are set: exported (as some shells, profiles and
    curses programs leave them), they pinned the app to the size they named, so it never saw a
    resize, nor a terminal too small. On a real terminal, the terminal's own size counts."""
    import sys

    stdout = sys.__stdout__
    if stdout is not None and stdout.isatty():
        for name in ("COLUMNS", "LINES"):
            os.environ.pop(name, None)


def run_app_on(service: KeyService, *, read_only: bool = False) -> None:
    """The app on a service already open (``keytui demo``: its new database goes unsaid)."""
    from .app import make_app

    follow_the_terminal()
    make_app(service, read_only=read_only).run()
