"""How each key is used, in the app: the table's "Uses 24h" column (shown where it fits, sorted
by ``s`` only when shown), heavy use and wrong secrets flagged in the table and the header,
``is:heavy`` in the search box, and the details screen's sparklines and counts by outcome."""

from __future__ import annotations

from textual.widgets import Sparkline, Static

from keytui.core import activity
from keytui.core.usage import hour_of
from keytui.tui.app import make_app
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.main import MainScreen
from keytui.tui.widgets.header import HeaderLine

from .test_tui import SIZE, open_as, plain, service, started, tui, until
from .test_usage_hours import put

__all__ = ["open_as", "service"]  # the fixtures, shared with test_tui


def cells(screen, key_id: str) -> dict[str, str]:
    table = screen.table
    row = table.get_row(key_id)
    return {
        column.key: (cell.plain if hasattr(cell, "plain") else str(cell))
        for column, cell in zip(table.shown, row, strict=True)
    }


def usage(service) -> dict[str, str]:
    """Three keys: one in heavy use, one with a burst of wrong secrets, one quiet."""
    hour = hour_of(service.now())
    made = {name: service.create_key(name).key.id for name in ("quiet", "busy", "guessed")}
    put(service, made["quiet"], hour - 5, valid=12)
    for back in range(2, 40):
        put(service, made["busy"], hour - back, valid=30)
    put(service, made["busy"], hour, valid=25_000)
    put(service, made["guessed"], hour - 1, wrong_secret=activity.REFUSED_FLOOR)
    return made


@tui
async def test_the_table_shows_uses_and_flags_and_the_header_counts_them(service):
    made = usage(service)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await until(pilot, lambda: "uses" in {c.key for c in screen.table.shown}, "the column")
        await until(pilot, lambda: cells(screen, made["busy"])["uses"].strip() == "25.7k", "uses")
        assert cells(screen, made["quiet"])["uses"].strip() == "12"
        assert cells(screen, made["busy"])["status"] == "heavy"
        assert cells(screen, made["guessed"])["status"] == "refused"
        assert cells(screen, made["quiet"])["status"] == "active"
        header = screen.query_one(HeaderLine)
        await until(pilot, lambda: "1 key in heavy use" in plain(header), "the header")
        assert "1 key with wrong secrets" in plain(header)

        await pilot.press("slash", *"is:heavy", "enter")
        await until(pilot, lambda: [k.id for k in screen.table.keys] == [made["busy"]], "is:")
        await pilot.press("escape")  # clears the search
        await until(pilot, lambda: len(screen.table.keys) == 3, "all keys again")
        for _ in range(len(screen.table.sort_cycle)):  # s reaches "Uses 24h": most used first
            if screen.window.sort == "uses_24h":
                break
            await pilot.press("s")
        assert screen.window.sort == "uses_24h" and screen.window.descending
        await until(
            pilot,
            lambda: (
                [k.id for k in screen.table.keys] == [made["busy"], made["quiet"], made["guessed"]]
            ),
            "the most used first",
        )


@tui
async def test_a_narrow_table_leaves_the_column_out_of_the_sort_cycle(service):
    usage(service)
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await started(app, pilot)
        assert "uses" not in {c.key for c in screen.table.shown}
        assert "uses_24h" not in screen.table.sort_cycle
        seen = set()
        for _ in range(len(screen.table.sort_cycle) + 1):
            await pilot.press("s")
            await pilot.pause()
            seen.add(screen.window.sort)
        assert "uses_24h" not in seen
        assert "1 key in heavy use" in plain(screen.query_one(HeaderLine))


@tui
async def test_details_show_sparklines_outcomes_and_hosts(service):
    made = usage(service)
    busy = made["busy"]
    service.verify("not a secret")  # counts nothing
    app = make_app(service, clock=service.clock)
    async with app.run_test(size=SIZE) as pilot:
        screen = await started(app, pilot)
        await until(pilot, lambda: screen.table.keys and screen.table.keys[0].id == made["guessed"])
        screen.table.move_cursor(row=1)  # busy
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, KeyDetailsScreen), "the details")
        details = app.screen
        hours = details.query_one("#hours", Sparkline)
        await until(pilot, lambda: hours.data and max(hours.data) == 25_000, "the sparkline")
        report = service.key_usage(busy)
        assert list(hours.data) == list(report.hours)
        assert list(details.query_one("#days", Sparkline).data) == list(report.days)
        text = plain(details.query_one("#usage-text", Static))
        assert "Heavy use" in text and "is:heavy" in text
        outcomes = plain(details.query_one("#outcomes", Static))
        assert "valid" in outcomes and "wrong secret" in outcomes and "25,660" in outcomes


@tui
async def test_a_start_from_the_first_window_reads_the_uses_once_the_service_opens(
    service, sqlite_url
):
    """The first window is read without the service (so without the usage table): its "Uses
    24h" cells are blank, and filled in once the service has opened."""
    from keytui.core.first_window import read_first_window
    from keytui.core.service import KeyService
    from keytui.tui.window import WINDOW

    made = usage(service)
    clock = service.clock
    first = read_first_window(sqlite_url, "alice", clock(), WINDOW)

    def opener() -> KeyService:
        return KeyService.open(sqlite_url, actor="alice", face="tui", clock=clock)

    app = make_app(None, clock=clock, opener=opener, first=first, actor="alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.window.loaded)
        screen = app.screen
        await until(
            pilot, lambda: cells(screen, made["busy"])["uses"].strip() == "25.7k", "the uses"
        )
        assert cells(screen, made["busy"])["status"] == "heavy"
    app.close_service()
