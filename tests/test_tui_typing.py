"""Keys typed faster than the screen (or pasted over SSH) after "/" land in the search box."""

from __future__ import annotations

import asyncio

from textual import events

from keytui.core.demo import seed_demo
from keytui.tui.app import make_app
from keytui.tui.screens.main import MainScreen

from .scenes import settle, until

NAMES = {"/": "slash", "\r": "enter"}


def burst(app, text: str) -> None:
    """Queue every key at once, as one read from a fast terminal delivers them."""
    for char in text:
        app.post_message(events.Key(NAMES.get(char, char), char))


def test_a_burst_after_slash_is_a_search_not_key_bindings(admin):
    seed_demo(admin, 40)

    async def run() -> None:
        app = make_app(admin)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            burst(app, "/billing\r")  # holds n, e, i, l: bindings if they reached the table
            main = app.screen

            def handled() -> bool:  # a dialog opened, or enter took the focus back with the
                if app.screen is not main:  # search's rows shown
                    return True
                keys = main.table.keys
                return (
                    app.focused is main.table
                    and bool(keys)
                    and all("billing" in key.name for key in keys)
                )

            await until(pilot, handled, "the burst to be handled")
            screen = app.screen
            assert isinstance(screen, MainScreen), "a binding opened a dialog"
            assert screen.query_one("#search").value == "billing"
            assert app.focused is screen.table  # enter kept the filter and went back
            burst(app, "j")  # and the table's own keys work again
            await until(pilot, lambda: screen.table.cursor_row == 1, "j to move the cursor")

    asyncio.run(run())
