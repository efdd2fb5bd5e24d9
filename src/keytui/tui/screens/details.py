"""Everything about one key: its fields, how it is used (the last 24 hours and 30 days as
sparklines, every verification by outcome, the last use and refusal and where from), its
events."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Sparkline, Static

from ...core.keyformat import mask
from ...core.values import EventInfo, KeyActivity, KeyInfo, KeyUsageReport
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
        with VerticalScroll(id="details-top"):
            with Horizontal(id="details"):
                with Vertical(id="fields"):
                    yield Label("Key", classes="section-title")
                    yield Static(id="field-table")
                with Vertical(id="usage"):
                    yield Label("Usage", classes="section-title")
                    yield Static(id="usage-text")
            with Horizontal(id="usage-charts"):
                with Vertical(id="sparklines"):
                    yield Label("Uses, the last 24 hours", id="hours-label")
                    yield Sparkline([], id="hours")
                    yield Label("Uses, the last 30 days", id="days-label")
                    yield Sparkline([], id="days")
                yield Static(id="outcomes")
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

        def fetch() -> tuple[KeyInfo, list[EventInfo], KeyUsageReport]:
            key = service.get_key(key_id)
            return key, service.list_events(key_id=key_id, limit=200), service.key_usage(key_id)

        self.app.run_db(fetch, self._show, failed=self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.app.report_error(exc)
        self.dismiss()

    def _show(self, loaded: tuple[KeyInfo, list[EventInfo], KeyUsageReport]) -> None:
        key, events, usage = loaded
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
            ("Status", badge(status_badge(key, now, KeyActivity(0, usage.heavy, usage.refused)))),
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
        self._show_usage(usage)
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

    def _show_usage(self, usage: KeyUsageReport) -> None:
        now = self.app.now()
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("Last used", _when_from(usage.last_used_at, usage.last_used_host, now))
        grid.add_row(
            "Uses",
            f"{usage.uses_24h:,} in 24 h · {usage.uses_30d:,} in 30 days · "
            f"{usage.use_count:,} in all",
        )
        grid.add_row("Usual rate", f"{usage.usual:,}/h; {usage.peak:,}/h this hour or the last")
        if usage.last_refused_at:
            grid.add_row(
                "Last refused", _when_from(usage.last_refused_at, usage.last_refused_host, now)
            )
        parts: list[Text | Table] = [grid]
        if usage.heavy:
            parts.append(
                Text(
                    f"Heavy use: {usage.peak:,} in an hour, over 10x its usual rate (is:heavy)",
                    style="bold white on red",
                )
            )
        if usage.refused:
            parts.append(
                Text(
                    f"{usage.wrong_peak:,} wrong secrets in an hour (is:refused)",
                    style="bold magenta",
                )
            )
        parts.append(
            Text("Counts are written in batches, so the newest minute may be missing.", "dim")
        )
        for part in parts:
            if isinstance(part, Text):
                part.no_wrap, part.overflow = False, "fold"
        self.query_one("#usage-text", Static).update(Group(*parts))
        self.query_one("#hours", Sparkline).data = list(usage.hours)
        self.query_one("#days", Sparkline).data = list(usage.days)
        self.query_one("#hours-label", Label).update(
            f"Uses, the last 24 hours by hour (most: {max(usage.hours):,})"
        )
        self.query_one("#days-label", Label).update(
            f"Uses, the last 30 days by day (most: {max(usage.days):,})"
        )
        outcomes = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        outcomes.add_column("Verifications")
        outcomes.add_column("24 h", justify="right")
        outcomes.add_column("30 days", justify="right")
        for outcome, label in OUTCOME_LABELS:
            last_day, last_month = usage.outcomes_24h[outcome], usage.outcomes_30d[outcome]
            style = "" if last_month else "dim"
            outcomes.add_row(label, f"{last_day:,}", f"{last_month:,}", style=style)
        self.query_one("#outcomes", Static).update(outcomes)


def badge(word: Text) -> Text:
    """A status word styled as a span: the whole cell is not painted with its background."""
    return Text.assemble((word.plain, word.style))


def _when_from(at: datetime | None, host: str | None, now: datetime) -> Text:
    """``2026-11-22 12:00 UTC (just now) from 10.0.0.7``: the host as stored data, never markup."""
    if at is None:
        return Text("never")
    line = Text(f"{stamp(at)} ({ago(at, now)})")
    if host:
        line.append(" from ")
        line.append_text(text(host, "cyan"))
    return line


OUTCOME_LABELS = (
    ("valid", "valid"),
    ("wrong_secret", "wrong secret"),
    ("throttled", "throttled (flood)"),
    ("host_denied", "host not allowed"),
    ("expired", "expired"),
    ("revoked", "revoked"),
    ("disabled", "keys disabled"),
)
