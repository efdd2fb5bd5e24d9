"""The audit log: newest first, searchable, filterable by key and action."""

from __future__ import annotations

import json
import time
from typing import Protocol

from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Select, Static
from textual.worker import get_current_worker

from ...core.validate import visible
from ...core.values import EVENT_ACTIONS, EventInfo
from ..app import KeytuiApp
from ..format import text

PAGE = 200


class ChainReport(Protocol):
    """What the screen reads of ``KeyService.verify_event_chain()``'s answer (its class lives in
    ``core.audit``, which the faces do not import)."""

    @property
    def ok(self) -> bool: ...
    @property
    def count(self) -> int: ...
    @property
    def first_bad_id(self) -> int | None: ...
    @property
    def reason(self) -> str: ...


def event_cells(event: EventInfo) -> tuple[Text, ...]:
    details = json.dumps(event.details, ensure_ascii=True, sort_keys=True, separators=(", ", ": "))
    return (
        Text(event.at.strftime("%Y-%m-%d %H:%M:%S")),
        text(event.actor),
        Text(event.action, style="bold red" if "revoke" in event.action else ""),
        Text(event.key_id or "-", style="cyan"),
        Text(event.face, style="dim"),
        text(details),
    )


class EventsScreen(Screen[None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("slash", "search", "Search", id="search"),
        Binding("escape", "back", "Back", id="back"),
        Binding("q", "back", "Back", show=False),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, key_id: str | None = None) -> None:
        super().__init__()
        self.key_id = key_id
        self.shown: dict[str, EventInfo] = {}

    @on(DataTable.RowSelected, "#events")
    def _open(self, selected: DataTable.RowSelected) -> None:
        """``enter`` on an event: the event whole (its details are cut in the table)."""
        event = self.shown.get(selected.row_key.value or "")
        if event is not None:
            from .event import EventModal

            self.app.push_screen(EventModal(event))

    def compose(self) -> ComposeResult:
        yield Label(
            Text(
                "Audit log" + (f" of key {self.key_id}" if self.key_id else "") + " — newest first"
            ),
            classes="section-title",
        )
        with Horizontal(id="events-filters"):
            yield Input(
                placeholder="/ search who, action, key or details", id="event-search", compact=True
            )
            yield Input(
                self.key_id or "", placeholder="ID or its start", id="event-key", compact=True
            )
            yield Select(
                [(a, a) for a in EVENT_ACTIONS],
                prompt="any action",
                id="event-action",
                compact=True,
            )
        yield Static(id="chain")
        yield DataTable(id="events", cursor_type="row")
        yield Static(id="events-info")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        table.add_columns("When (UTC)", "Who", "Action", "Key", "Face", "Details")
        table.focus()
        self.reload()
        self.check_chain()

    def check_chain(self) -> None:
        """Walk the hash chain (in a worker) and say whether the log holds."""

        def done(status: ChainReport) -> None:
            if status.ok:
                line = Text(
                    f"Audit chain intact: {status.count:,} event{'s' if status.count != 1 else ''}"
                    ", none altered, removed "
                    "or reordered.",
                    style="green",
                )
            else:
                line = Text(
                    f"AUDIT CHAIN BROKEN at event {status.first_bad_id}: {visible(status.reason)}",
                    style="bold white on red",
                )
            self.query_one("#chain", Static).update(line)

        self.app.run_db(self.app.service.verify_event_chain, done, group="chain")

    def reload(self, delay: float = 0.0) -> None:
        search = self.query_one("#event-search", Input).value
        key_id = self.query_one("#event-key", Input).value.strip() or None
        action = self.query_one("#event-action", Select).selection  # None: any action
        service = self.app.service

        def fetch() -> list[EventInfo] | None:
            if delay:
                time.sleep(delay)
                if get_current_worker().is_cancelled:
                    return None
            return service.list_events(key_id=key_id, action=action, search=search, limit=PAGE)

        self.app.run_db(fetch, self._show, group="events", exclusive=True)

    def refresh_from_database(self) -> None:
        """The database changed: the newest events, as filtered."""
        self.reload()

    def _show(self, events: list[EventInfo] | None) -> None:
        if events is None:
            return
        table = self.query_one("#events", DataTable)
        self.shown = {str(event.id): event for event in events}
        with self.app.batch_update():
            table.clear()
            for event in events:
                table.add_row(*event_cells(event), key=str(event.id))
        more = " (the newest; narrow the search to see older ones)" if len(events) == PAGE else ""
        count = f"{len(events):,} event{'s' if len(events) != 1 else ''}"
        self.query_one("#events-info", Static).update(f"{count}{more}")

    @on(Input.Changed)
    def _changed(self) -> None:
        self.reload(delay=0.15)

    @on(Select.Changed)
    def _action(self) -> None:
        self.reload()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.query_one("#events", DataTable).focus()

    def action_search(self) -> None:
        self.query_one("#event-search", Input).focus()

    def action_down(self) -> None:
        self.query_one("#events", DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one("#events", DataTable).action_cursor_up()

    def action_back(self) -> None:
        if isinstance(self.focused, Input) and self.focused.value:
            self.focused.value = ""
            return
        self.dismiss()
