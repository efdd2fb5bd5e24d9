"""The events screen says whether the audit chain holds."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from keytui.core.models import Event
from keytui.tui.app import make_app

from .scenes import settle


def chain_line(app) -> str:
    return str(app.screen.query_one("#chain").render())


def test_events_screen_shows_an_intact_chain(admin):
    asyncio.run(_intact(admin))


async def _intact(admin):
    admin.create_key("one")
    app = make_app(admin)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("E")
        await settle(pilot)
        assert "Audit chain intact" in chain_line(app)
        table = app.screen.query_one("#events")
        actions = [str(table.get_row_at(i)[2]) for i in range(table.row_count)]
        assert actions[:2] == ["key.create", "user.add"]


def test_events_screen_names_the_altered_event(admin):
    asyncio.run(_altered(admin))


async def _altered(admin):
    admin.create_key("one")
    admin.create_key("two")
    with admin.db.write() as session:  # someone with write access edits history
        session.execute(update(Event).where(Event.action == "key.create")
                        .values(actor="mallory"))
    app = make_app(admin)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("E")
        await settle(pilot)
        assert "AUDIT CHAIN BROKEN at event" in chain_line(app)
