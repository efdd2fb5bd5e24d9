"""Start the app for the CLI; imported only when the app is wanted, so scripts stay light."""

from __future__ import annotations

from ..core.service import KeyService


def run_app(service: KeyService, *, read_only: bool = False) -> None:
    from .app import make_app

    make_app(service, read_only=read_only).run()
