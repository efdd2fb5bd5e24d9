"""Start the app for the CLI; imported only when the app is wanted, so scripts stay light."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

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
        return

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


def run_app_on(service: KeyService, *, read_only: bool = False) -> None:
    """The app on a service already open (``keytui demo``: its new database goes unsaid)."""
    from .app import make_app

    make_app(service, read_only=read_only).run()
