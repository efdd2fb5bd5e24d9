"""Shown instead of a screen cut to pieces while the terminal is smaller than keytui needs."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

#: The smallest terminal every control fits in (columns, rows).
MIN_SIZE = (80, 24)


def too_small(width: int, height: int) -> bool:
    return width < MIN_SIZE[0] or height < MIN_SIZE[1]


class TooSmallScreen(Screen[None]):
    BINDINGS = [Binding("q", "app.quit", "Quit", id="quit")]

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.paint(*self.app.size)

    def on_resize(self, event: events.Resize) -> None:
        self.paint(event.size.width, event.size.height)

    def paint(self, width: int, height: int) -> None:
        need = f"{MIN_SIZE[0]}x{MIN_SIZE[1]}"
        self.query_one("#too-small", Static).update(
            Text.assemble(
                ("The terminal is too small", "bold"),
                f" ({width}x{height}); keytui needs {need}. Make it larger to go on, "
                "or press q to quit.",
            )
        )
