"""Every key, made from the main screen's BINDINGS, so help, footer and palette agree."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "space": "space",
    "escape": "esc",
    "enter": "enter",
}
EXTRA = (
    ("j / k, ↓ / ↑", "Move down / up (here: scroll this help)"),
    ("pgdn / pgup", "Page down / up"),
    ("ctrl+p", "Command palette: every action by name"),
    ("click a header", "Sort by it"),
    ("click [ ]", "Mark a key"),
)


# The search box's filter language (core/filter.py), as the README's "Filters" section says it.
FILTER_HELP = (
    ("billing prod", "free words: each in the name, ID or owner (all must match)"),
    ('"billing worker"', "quotes keep spaces (and colons) in one word or value"),
    ("owner:bob  role:ci", "exactly this owner's login / this role"),
    ("status:active", "active, expired or revoked"),
    ("name:TEXT  host:TEXT", "in the name only / in one of the allowed hosts"),
    ("id:3f9k", "IDs that start so (a pasted secret finds its key: kt_<id>_…)"),
    ("created:<2026-01-01", "dates (UTC days) with < <= > >=, or a date alone for that day"),
    ("created:>30d", "more than 30 days ago (h, d, w, y); expires:<7d: within 7 days"),
    ("used:>30d  unused:45d", "last used over 30 days ago / not in 45 days, never-used too"),
    ("uses:>1000", "used more than 1000 times (< <= > >= or an exact count)"),
    (
        "is:heavy",
        "active keys used over 10x their usual hourly rate (and over 100) this hour or the last",
    ),
    ("is:refused", "active keys that saw 20 or more wrong secrets this hour or the last"),
    ("-term  !term", "keys the term does not match"),
)


def key_label(key: str) -> str:
    return " / ".join(KEY_NAMES.get(k, k) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="close"),
        Binding("j,down", "scroll('down')", "Scroll down", show=False),
        Binding("k,up", "scroll('up')", "Scroll up", show=False),
        Binding("pagedown,space", "scroll('page_down')", "Page down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", show=False),
        Binding("g,home", "scroll('home')", "Top", show=False),
        Binding("G,end", "scroll('end')", "Bottom", show=False),
    ]

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        lines = Table.grid(padding=(0, 2))  # a long description wraps beside its key
        lines.add_column(justify="right", style="bold cyan", no_wrap=True)
        lines.add_column()
        seen: set[str] = set()
        for binding in self.for_screen.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in seen or binding.key in ("j", "k"):
                continue
            seen.add(binding.action)
            state = self.for_screen.check_action(binding.action.split("(")[0], ())
            line = Text(binding.tooltip or binding.description, style="" if state else "dim")
            if state is None:
                line.append("  (not allowed for your role)", style="dim italic")
            elif state is False:
                line.append("  (hidden: read-only)", style="dim italic")
            lines.add_row(key_label(binding.key), line)
        for key, description in EXTRA:
            lines.add_row(key, description)
        with Vertical(classes="dialog help"):
            yield Label("keytui keys", classes="dialog-title")
            with VerticalScroll(classes="dialog-body", id="help-body"):
                yield Static(lines)
                filters = Table.grid(padding=(0, 2))
                filters.add_column(style="bold cyan", no_wrap=True)
                filters.add_column()
                for term, meaning in FILTER_HELP:
                    filters.add_row(term, meaning)
                yield Label("Search and filter (/): terms AND together", id="filter-help-title")
                yield Static(filters, id="filter-help")
            yield Static(
                Text(
                    "Marked keys: x revokes all of them at once, after a list of what "
                    "will be revoked and what skipped. j/k, pgdn/pgup scroll; esc closes.",
                    style="dim",
                )
            )

    def on_mount(self) -> None:
        self.query_one("#help-body", VerticalScroll).focus()

    def action_scroll(self, where: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        getattr(body, f"scroll_{where}")(animate=False)

    def action_close(self) -> None:
        self.dismiss()
