"""One event, whole: every field and its details as indented JSON (a table row cuts them)."""

from __future__ import annotations

import json

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ...core.values import EventInfo
from ..format import text


class EventModal(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,enter,q", "close", "Close", id="close"),
        Binding("j,down", "scroll('down')", "Scroll down", show=False),
        Binding("k,up", "scroll('up')", "Scroll up", show=False),
        Binding("pagedown", "scroll('page_down')", "Page down", show=False),
        Binding("pageup", "scroll('page_up')", "Page up", show=False),
    ]

    def __init__(self, event: EventInfo) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        event = self.event
        fields = Table.grid(padding=(0, 1))
        fields.add_column(style="bold", no_wrap=True)
        fields.add_column()
        fields.add_row("When", Text(event.at.strftime("%Y-%m-%d %H:%M:%S UTC")))
        fields.add_row("Who", text(event.actor))
        fields.add_row("Action", Text(event.action))
        fields.add_row("Key", Text(event.key_id or "-", style="cyan"))
        fields.add_row("Face", Text(event.face))
        details = json.dumps(event.details, ensure_ascii=True, sort_keys=True, indent=2)
        fields.add_row("Details", Text(details))  # ASCII-escaped: data, never markup
        with Vertical(classes="dialog event"):
            yield Label(Text(f"Event {event.id}"), classes="dialog-title")
            with VerticalScroll(classes="dialog-body", id="event-body"):
                yield Static(fields)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#event-body", VerticalScroll).focus()

    def action_scroll(self, where: str) -> None:
        getattr(self.query_one("#event-body", VerticalScroll), f"scroll_{where}")(animate=False)

    def on_button_pressed(self) -> None:
        self.dismiss()

    def action_close(self) -> None:
        self.dismiss()
