"""The key table: a window of rows from the service, never the whole table.

The table holds at most one window of keys. Moving past its last row (or above its first) asks
the screen for the neighbouring window, so a hundred thousand keys open as fast as a hundred.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from ...core.values import KeyActivity, KeyInfo
from ..format import ago, compact, day, expires_cell, status_badge, text


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    extra: int  # 0: always shown; else shown in this order while the name keeps NAME_ROOM
    sort: str | None  # the service's sort column, or None


USES_WIDTH = 8

COLUMNS = (
    Column("mark", " ", 3, 0, None),
    Column("name", "Name", 0, 0, "name"),  # width 0: takes what is left
    Column("id", "ID", 10, 0, "key_id"),
    Column("owner", "Owner", 8, 0, "owner"),
    Column("role", "Role", 11, 3, "role"),
    Column("created", "Created", 10, 4, "created_at"),
    Column("updated", "Updated", 10, 5, "updated_at"),
    Column("expires", "Expires", 10, 0, "expires_at"),
    Column("used", "Last used", 10, 1, "last_used_at"),
    Column("uses", "Uses 24h", USES_WIDTH, 2, "uses_24h"),  # valid uses: this hour, 23 before
    Column("status", "Status", 8, 0, "status"),
)
#: The name's width below which no extra column is added: names tell keys apart, so the
#: spare width goes to them first (a demo name is up to ~30 characters).
NAME_ROOM = 30
NAME_MIN = 12


def cut_middle(value: Text, width: int) -> Text:
    """``value`` cut to ``width`` cells in the middle, keeping its end, where names differ
    (``auth-proxy ga…(staging)``); text with wide characters is cut at its end instead."""
    plain = value.plain
    if value.cell_len <= width:
        return value
    if width < 5 or len(plain) != value.cell_len:
        cut = value.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    tail = (width - 1) // 2
    head = width - 1 - tail
    cut = value[:head]
    cut.append("…")
    cut.append_text(value[len(plain) - tail :])
    return cut


def fit(width: int) -> tuple[tuple[Column, ...], int]:
    """The columns shown on a screen ``width`` wide, and the name's width: the essential
    columns, then the extra ones in order while the name keeps NAME_ROOM; the name takes the
    rest."""

    def name_width(columns: list[Column]) -> int:
        fixed = sum(c.width + 2 for c in columns if c.width) + 2 + 2  # padding, name, scrollbar
        return width - fixed

    chosen = [c for c in COLUMNS if not c.extra]
    for extra in sorted((c for c in COLUMNS if c.extra), key=lambda c: c.extra):
        if name_width([*chosen, extra]) < NAME_ROOM:
            break
        chosen.append(extra)
    shown = tuple(c for c in COLUMNS if c in chosen)
    return shown, max(NAME_MIN, name_width(chosen))


def uses_cell(activity: KeyActivity | None) -> Text:
    """Uses in the last 24 h, right-aligned; blank until read (the first window)."""
    if activity is None:
        return Text("")
    cell = Text(compact(activity.uses_24h).rjust(USES_WIDTH))  # body cells are not justified
    if activity.heavy:
        cell.stylize("bold red")
    elif not activity.uses_24h:
        cell.stylize("dim")
    return cell


MARKED = Text("[x]", style="bold")
UNMARKED = Text("[ ]", style="dim")


class KeyTable(DataTable[Text | str]):
    """Rows keyed by key ID. Edges of the window post :class:`KeyTable.Edge`."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    class Edge(Message):
        """The cursor tried to leave the window: ``direction`` is +1 (down) or -1 (up)."""

        def __init__(self, direction: int) -> None:
            super().__init__()
            self.direction = direction

    class MarkClicked(Message):
        def __init__(self, key_id: str) -> None:
            super().__init__()
            self.key_id = key_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.keys: list[KeyInfo] = []
        self.activity: dict[str, KeyActivity] = {}  # by key ID: uses in 24 h, flags
        self.shown: tuple[Column, ...] = ()
        self.more_below = False
        self.more_above = False

    # -- a fast path for painting body cells -------------------------------------------------

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """DataTable renders each cell through Rich's Padding and Styled; our body cells are
        one line of Text, so they are cut and padded here directly: the same segments, a
        fraction of the cost (a screenful of a new window is ~400 cells)."""
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None or self.rows[row_key].height != 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        cell = self._get_row_renderables(row_index).cells[column_index]
        text = cell if isinstance(cell, Text) else Text(str(cell))
        pad = self.cell_padding
        inner = max(0, width - 2 * pad)
        if text.cell_len > inner:  # cut a copy: the row keeps its full text
            if column_key.value == "name":
                text = cut_middle(text, inner)
            else:
                text = text.copy()
                text.truncate(inner, overflow="ellipsis")
        component_style, post_style = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        style = base_style + Style.from_meta({"row": row_index, "column": column_index})
        console = self.app.console
        own = console.get_style(text.style) if isinstance(text.style, str) else text.style
        body = Segment.apply_style(text.render(console), own)  # render() leaves out text.style
        fill = inner - text.cell_len
        segments = [
            Segment(" " * pad),
            *body,
            *([Segment(" " * fill)] if fill > 0 else []),
            Segment(" " * pad),
        ]
        lines = [list(Segment.apply_style(segments, style + component_style, post_style))]
        self._cell_render_cache[cache_key] = lines
        return lines

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Every column has a fixed width and every row one line, so nothing needs measuring
        (DataTable measures each new cell for auto-width columns): only the size changes."""
        rows = self.rows
        if any(column.auto_width for column in self.columns.values()) or any(
            rows[key].auto_height for key in new_rows if key in rows
        ):
            super()._update_dimensions(new_rows)
            return
        width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(
            width + self._row_label_column_width, self._total_row_height + header
        )

    # -- columns that fit ----------------------------------------------------------------------

    def fit_columns(self, width: int, sort: str, descending: bool) -> bool:
        """Choose the columns for a screen ``width`` wide; True when they changed."""
        shown, name_width = fit(width)
        key = (shown, name_width, sort, descending)
        if key == getattr(self, "_fitted", None):
            return False
        self._fitted = key
        self.shown = shown
        self.clear(columns=True)
        for column in shown:
            label = column.label
            if column.sort == sort:
                label += " ▼" if descending else " ▲"
            self.add_column(label, key=column.key, width=column.width or name_width)
        return True

    @property
    def sort_cycle(self) -> list[str]:
        """The sort columns shown, in order: what ``s`` cycles through."""
        return [c.sort for c in self.shown if c.sort]

    # -- rows ---------------------------------------------------------------------------------

    def cells(self, key: KeyInfo, marked: bool, now: datetime) -> list[Text | str]:
        activity = self.activity.get(key.id)
        values: dict[str, Text | str] = {
            "mark": MARKED if marked else UNMARKED,
            "name": text(key.name),
            "id": Text(key.id, style="cyan"),
            "owner": text(key.owner),
            "role": text(key.role),
            "created": day(key.created_at),
            "updated": day(key.updated_at),
            "expires": expires_cell(key, now),
            "used": ago(key.last_used_at, now),
            "uses": uses_cell(activity),
            "status": status_badge(key, now, activity),
        }
        return [values[c.key] for c in self.shown]

    def show_keys(
        self,
        keys: list[KeyInfo],
        marks: set[str],
        now: datetime,
        cursor: int,
        activity: dict[str, KeyActivity] | None = None,
    ) -> None:
        """Show ``keys``; ``activity`` (uses in 24 h, flags), when given, replaces what is known."""
        self.keys = list(keys)
        if activity is not None:
            self.activity = activity
        with self.app.batch_update():
            self.clear()
            for key in keys:
                self.add_row(*self.cells(key, key.id in marks, now), key=key.id)
            if self._require_update_dimensions and not self._updated_cells:
                # Settle the size now (it costs nothing here: no measuring), so the cursor
                # can be scrolled into view in this frame, not in a second paint after it.
                self._require_update_dimensions = False
                new_rows = self._new_rows.copy()
                self._new_rows.clear()
                self._update_dimensions(new_rows)
            if keys:
                self.move_cursor(row=max(0, min(cursor, len(keys) - 1)), animate=False, scroll=True)

    def set_mark(self, key_id: str, marked: bool) -> None:
        if key_id in self.rows and any(c.key == "mark" for c in self.shown):
            self.update_cell(key_id, "mark", MARKED if marked else UNMARKED)

    @property
    def current(self) -> KeyInfo | None:
        if not self.keys or self.cursor_row < 0 or self.cursor_row >= len(self.keys):
            return None
        return self.keys[self.cursor_row]

    # -- the window's edges ---------------------------------------------------------------------

    def _at_edge(self, direction: int) -> bool:
        """At the window's last (first) row with more beyond it: ask for the next window."""
        if direction > 0:
            edge = self.more_below and self.cursor_row >= self.row_count - 1
        else:
            edge = self.more_above and self.cursor_row <= 0
        if edge:
            self.post_message(self.Edge(direction))
        return edge

    def action_cursor_down(self) -> None:
        if not self._at_edge(+1):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if not self._at_edge(-1):
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self._at_edge(+1):
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self._at_edge(-1):
            super().action_page_up()

    async def _on_click(self, event: events.Click) -> None:
        """A click on a row's ``[ ]`` marks it. Any other click is DataTable's own: Textual
        calls its ``_on_click`` after this one (calling it here too sorted twice per header
        click, which reversed the order at once)."""
        meta = event.style.meta
        if meta.get("column") == 0 and meta.get("row", -1) >= 0 and self.shown:
            row = meta["row"]
            if row < len(self.keys):
                self.move_cursor(row=row)
                self.post_message(self.MarkClicked(self.keys[row].id))
                event.stop()
                event.prevent_default()  # not DataTable's: it would select the row too
