"""The events screen says whether the audit chain holds."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from keytui.core.models import Event
from keytui.tui.app import make_app

from .scenes import settle


def open_events(service) -> tuple[str, list[str]]:
    """Open the app, press E: the chain line and the action column, as shown."""

    async def run() -> tuple[str, list[str]]:
        app = make_app(service)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("E")
            await settle(pilot)
            table = app.screen.query_one("#events")
            return (
                str(app.screen.query_one("#chain").render()),
                [str(table.get_row_at(i)[2]) for i in range(table.row_count)],
            )

    return asyncio.run(run())


def test_events_screen_shows_an_intact_chain(admin):
    admin.create_key("one")
    chain, actions = open_events(admin)
    assert "Audit chain intact" in chain
    assert actions[:2] == ["key.create", "user.add"]


def test_events_screen_names_the_altered_event(admin):
    admin.create_key("one")
    admin.create_key("two")
    with admin.db.write() as session:  # someone with write access edits history
        first = session.scalar(select(func.min(Event.id)).where(Event.action == "key.create"))
        session.execute(update(Event).where(Event.id == first).values(actor="mallory"))
    chain, _actions = open_events(admin)
    assert f"AUDIT CHAIN BROKEN at event {first}:" in chain
