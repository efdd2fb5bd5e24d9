"""Every key, made from the main screen's BINDINGS, so help, footer and palette agree."""

from __future__ import annotations

from typing import Any

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
    ("j / k, ↓ / ↑", "Move down / up"),
    ("pgdn / pgup", "Page down / up"),
    ("ctrl+p", "Command palette: every action by name"),
    ("click a header", "Sort by it"),
    ("click [ ]", "Mark a key"),
)


def key_label(key: str) -> str:
    return " / ".join(KEY_NAMES.get(k, k) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="close")]

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        lines = Text()
        seen: set[str] = set()
        for binding in self.for_screen.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in seen or binding.key in ("j", "k"):
                continue
            seen.add(binding.action)
            state = self.for_screen.check_action(binding.action.split("(")[0], ())
            style = "" if state else "dim"
            lines.append(f"{key_label(binding.key):>14}  ", style="bold cyan")
            lines.append(binding.tooltip or binding.description, style=style)
            if state is None:
                lines.append("  (not allowed for your role)", style="dim italic")
            elif state is False:
                lines.append("  (hidden: read-only)", style="dim italic")
            lines.append("\n")
        for key, description in EXTRA:
            lines.append(f"{key:>14}  ", style="bold cyan")
            lines.append(description + "\n")
        with Vertical(classes="dialog help"):
            yield Label("keytui keys", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(lines)
            yield Static(
                Text(
                    "Marked keys: x revokes all of them at once, after a list of what "
                    "will be revoked and what skipped. esc closes this help.",
                    style="dim",
                )
            )

    def action_close(self) -> None:
        self.dismiss()
