"""The key table's fast cell painting gives what DataTable's own (slower) path gives."""

from __future__ import annotations

import asyncio

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from keytui.core.demo import seed_demo
from keytui.tui.app import make_app
from keytui.tui.widgets.key_table import cut_middle

from .scenes import settle


def cells(lines) -> list[tuple[str, Style | None]]:
    """Each character with its style, whatever the grouping into segments."""
    return [(char, segment.style) for line in lines for segment in line for char in segment.text]


def test_fast_cells_match_datatable_cells(admin):
    seed_demo(admin, 30)
    admin.create_key("[b]x and a long name that will not fit in its column at all", expires="3d")

    async def run() -> None:
        app = make_app(admin)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            table = app.screen.table
            compared = 0
            for row in range(table.row_count):
                for column, spec in enumerate(table.ordered_columns):
                    for cursor in (False, True):
                        table._cell_render_cache.clear()
                        fast = table._render_cell(row, column, Style(), spec.width + 2, cursor)
                        table._cell_render_cache.clear()
                        slow = DataTable._render_cell(
                            table, row, column, Style(), spec.width + 2, cursor
                        )
                        name = table.keys[row].name
                        if spec.key.value == "name" and len(name) > spec.width:
                            # cut on purpose in the middle (DataTable cuts the end): the
                            # same cells but for the text, which keeps the name's end
                            inner = spec.width
                            want = " " + cut_middle(Text(name), inner).plain + " "
                            assert "".join(c for c, _ in cells(fast)) == want
                            assert [st for _, st in cells(fast)] == [st for _, st in cells(slow)]
                        else:
                            assert cells(fast) == cells(slow), (row, spec.key)
                        compared += 1
            assert compared > 500

    asyncio.run(run())
