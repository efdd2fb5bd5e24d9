"""Read-only mode hides the changing actions even when there is no key to act on."""

from __future__ import annotations

import asyncio

from keytui.tui.app import make_app

from .scenes import settle


def test_read_only_on_an_empty_database_hides_changing_keys(admin):
    async def run() -> set[str]:
        app = make_app(admin, read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            return {b.binding.action for b in app.screen.active_bindings.values()}

    actions = asyncio.run(run())
    assert not actions & {"new_key", "rename", "replace", "revoke", "delete", "settings"}
    assert {"search", "help", "quit"} <= actions
