"""Everything about one key: its fields, its usage, its events."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import getters, on
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


def revoke_reason(key: KeyInfo, events: list[EventInfo]) -> str | None:
    """Why ``key`` was revoked: the reason its ``key.revoke`` event (newest first) gives."""
    if key.revoked_at is None:
        return None
    for event in events:
        if event.action == "key.revoke":
            reason = event.details.get("reason")
            return reason if isinstance(reason, str) and reason else None
    return None


class KeyDetailsScreen(Screen[None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("escape", "back", "Back", id="back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, key_id: str) -> None:
        super().__init__()
        self.key_id = key_id
        self.shown: dict[str, EventInfo] = {}

    @on(DataTable.RowSelected, "#key-events")
    def _open(self, selected: DataTable.RowSelected) -> None:
        event = self.shown.get(selected.row_key.value or "")
        if event is not None:
            from .event import EventModal

            self.app.push_screen(EventModal(event))

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
            *((("Reason", text(why)),) if (why := revoke_reason(key, events)) else ()),
            ("Allowed hosts", text(", ".join(key.allowed_hosts) or "any host")),
        ]
        body = Table.grid(padding=(0, 1))  # a long value wraps beside its label, not under it
        body.add_column(style="bold", no_wrap=True)
        body.add_column()
        for label, value in rows:
            value.no_wrap, value.overflow = False, "fold"  # here a value is shown whole
            body.add_row(label, value)
        self.query_one("#field-table", Static).update(body)
        used = (
            Text(f"{stamp(key.last_used_at)} ({ago(key.last_used_at, now)})")
            if key.last_used_at
            else Text("never")
        )
        usage = Table.grid(padding=(0, 1))
        usage.add_column(style="bold", no_wrap=True)
        usage.add_column()
        usage.add_row("Last used", used)
        usage.add_row("Uses", f"{key.use_count:,}")
        note = Text(
            "Counts are written in batches, so the newest minute may be missing.", style="dim"
        )
        self.query_one("#usage-text", Static).update(Group(usage, note))
        table = self.query_one("#key-events", DataTable)
        row = table.cursor_row
        table.clear()  # read again after a change: the rows anew, the cursor where it was
        self.shown = {str(event.id): event for event in events}
        for event in events:
            when, who, action, _key, face, details = event_cells(event)
            table.add_row(when, who, action, face, details, key=str(event.id))
        if events:
            table.move_cursor(row=min(row, len(events) - 1))

    def action_back(self) -> None:
        self.dismiss()
