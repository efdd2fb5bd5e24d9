"""The main screen's bottom line: which keys are shown of how many, the sort, the marks."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from ..window import PagingWindow
from .key_table import COLUMNS

SORT_LABELS = {c.sort: c.label for c in COLUMNS if c.sort}


class InfoLine(Static):
    def paint(
        self, window: PagingWindow, rows: int, marked: int, problem: str | None = None
    ) -> None:
        """``rows`` keys shown of the ``window``'s list, ``marked`` of them (or beyond) marked;
        or, while the search box holds no filter, the ``problem`` with it (one line)."""
        parts = Text()
        if problem:
            parts.append(problem, style="bold red")
            self.update(parts, layout=False)
            return
        if marked:  # first: nothing on the right (a notification, a narrow screen) cuts it
            parts.append(f"{marked:,} marked", style="bold magenta")
            parts.append(" · ", style="dim")
        parts.append(window.position(rows), style="bold" if window.match_count == 0 else "")
        arrow = "▼" if window.descending else "▲"
        parts.append(f" · sorted by {SORT_LABELS[window.sort]} {arrow}", style="dim")
        self.update(parts, layout=False)  # one line, fixed height
