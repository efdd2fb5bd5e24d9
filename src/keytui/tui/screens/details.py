"""Everything about one key: its fields, its usage, its events."""

from __future__ import annotations

from rich.text import Text
from textual import getters
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from ...core.keyformat import mask
from ...core.values import EventInfo, KeyInfo
from ..app import KeytuiApp
from ..format import ago, stamp, status_badge, text
from .events import event_cells


class KeyDetailsScreen(Screen[None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, key_id: str) -> None:
        super().__init__()
        self.key_id = key_id

    def compose(self) -> ComposeResult:
        with Horizontal(id="details"):
            with Vertical(id="fields"):
                yield Label("Key", classes="section-title")
                yield Static(id="field-table")
            with Vertical(id="usage"):
                yield Label("Usage", classes="section-title")
                yield Static(id="usage-text")
        yield Label("Events", classes="section-title")
        yield DataTable(id="key-events", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#key-events", DataTable)
        table.add_columns("When", "Who", "Action", "Face", "Details")
        self.refresh_from_database()

    def refresh_from_database(self) -> None:
        """Read the key and its events (again, when the database changed)."""
        service, key_id = self.app.service, self.key_id

        def fetch() -> tuple[KeyInfo, list[EventInfo]]:
            return service.get_key(key_id), service.list_events(key_id=key_id, limit=200)

        self.app.run_db(fetch, self._show, failed=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.app.report_error(exc)
        self.dismiss()

    def _show(self, loaded: tuple[KeyInfo, list[EventInfo]]) -> None:
        key, events = loaded
        now = self.app.now()
        revoked = (
            Text.assemble(stamp(key.revoked_at), " by ", text(key.revoked_by))
            if key.revoked_at
            else Text("-")
        )
        rows: list[tuple[str, Text]] = [
            ("Name", text(key.name, "bold")),
            ("ID", Text(key.id, style="cyan")),
            ("Secret", Text(f"{mask(key.id)}  (shown only when created or replaced)", "dim")),
            ("Description", text(key.description or "-")),
            ("Status", status_badge(key, now)),
            ("Owner", text(key.owner)),
            ("Role", text(key.role)),
            ("Created", Text(stamp(key.created_at))),
            ("Updated", Text(stamp(key.updated_at))),
            ("Expires", Text(stamp(key.expires_at))),
            ("Revoked", revoked),
            ("Allowed hosts", text(", ".join(key.allowed_hosts) or "any host")),
        ]
        body = Text()
        for label, value in rows:
            body.append(f"{label:<14}", style="bold")
            body.append_text(value)
            body.append("\n")
        self.query_one("#field-table", Static).update(body)
        usage = Text()
        usage.append("Last used   ", style="bold")
        usage.append(f"{stamp(key.last_used_at)} ({ago(key.last_used_at, now)})\n")
        usage.append("Uses        ", style="bold")
        usage.append(f"{key.use_count:,}\n")
        usage.append(
            "Counts are written in batches, so the newest minute may be missing.", style="dim"
        )
        self.query_one("#usage-text", Static).update(usage)
        table = self.query_one("#key-events", DataTable)
        row = table.cursor_row
        table.clear()  # read again after a change: the rows anew, the cursor where it was
        for event in events:
            when, who, action, _key, face, details = event_cells(event)
            table.add_row(when, who, action, face, details, key=str(event.id))
        if events:
            table.move_cursor(row=min(row, len(events) - 1))

    def action_back(self) -> None:
        self.dismiss()
