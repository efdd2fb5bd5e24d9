"""The main screen: header, search, status filter, the key table, and every key action."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.markup import escape
from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static, Tab, Tabs
from textual.worker import get_current_worker

from ...core.first_window import FirstWindow
from ...core.values import (
    Counts,
    IssuedKey,
    KeyInfo,
    KeyPage,
    KeyQuery,
    RevokePlan,
    SettingsInfo,
    Status,
    UserInfo,
)
from ..app import KeytuiApp
from ..format import text
from ..widgets.key_table import COLUMNS, KeyTable

WINDOW = 100  # rows the table holds at once
STEP = 50  # rows a window moves by at its edge
SEARCH_DELAY = 0.15  # seconds to wait for the next keystroke before querying
COUNT_CAP = 10_000  # a search counts its matches up to here ("of more than 10,000")
STATUS_TABS: tuple[tuple[str, str, Status | None], ...] = (
    ("all", "All", None),
    ("active", "Active", "active"),
    ("expired", "Expired", "expired"),
    ("revoked", "Revoked", "revoked"),
)
# Actions that call the service from the event loop: greyed until it has opened.
NEEDS_SERVICE = frozenset(
    {
        "details",
        "new_key",
        "rename",
        "replace",
        "revoke",
        "delete",
        "mark_all",
        "events",
        "settings",
    }
)
SORT_CYCLE = [c.sort for c in COLUMNS if c.sort]
SORT_LABELS = {c.sort: c.label for c in COLUMNS if c.sort}


@dataclass(frozen=True)
class Loaded:
    query: KeyQuery
    page: KeyPage
    total: int | None  # above COUNT_CAP for a search: "more than"; None: not counted yet
    cursor: int
    tail: int | None = None  # set: the window ends this many rows before the last one


def uncounted(page: KeyPage) -> int | None:
    """The total of a first window before any count: exact when the window holds them all."""
    return None if page.has_more else len(page.keys)


class MainScreen(Screen[None]):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help"),
        Binding(
            "slash",
            "search",
            "Search",
            id="search",
            tooltip="Search name, ID and owner as you type; enter keeps it, esc clears",
        ),
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="mark",
            tooltip="Mark or unmark the key under the cursor",
        ),
        Binding(
            "n", "new_key", "New", id="new", tooltip="Create a new key; its secret is shown once"
        ),
        Binding("e", "rename", "Rename", id="rename", tooltip="Change the name and description"),
        Binding(
            "r",
            "replace",
            "Replace",
            id="replace",
            tooltip="Rotate: a new secret at once; the old one stops working",
        ),
        Binding(
            "x",
            "revoke",
            "Revoke",
            id="revoke",
            tooltip="Revoke the marked keys, or the one under the cursor (irreversible)",
        ),
        Binding(
            "d",
            "delete",
            "Delete",
            id="delete",
            tooltip="Delete the key under the cursor; its events stay",
        ),
        Binding(
            "enter",
            "details",
            "Details",
            id="details",
            show=False,
            tooltip="Every field, usage and events of the key",
        ),
        Binding("a", "mark_all", "Mark all matching", id="mark_all", show=False),
        Binding("u", "unmark_all", "Unmark all", id="unmark_all", show=False),
        Binding("E", "events", "Events", id="events", tooltip="The audit log"),
        Binding(
            "S",
            "settings",
            "Settings",
            id="settings",
            show=False,
            tooltip="Keys switch, limits, users and key roles (admins)",
        ),
        Binding("s", "cycle_sort", "Sort by next column", id="sort", show=False),
        Binding("o", "flip_order", "Reverse sort order", id="order", show=False),
        Binding("1", "status('all')", "All keys", id="status_all", show=False),
        Binding("2", "status('active')", "Active keys", id="status_active", show=False),
        Binding("3", "status('expired')", "Expired keys", id="status_expired", show=False),
        Binding("4", "status('revoked')", "Revoked keys", id="status_revoked", show=False),
        Binding("g", "top", "Top", id="top", show=False),
        Binding("G", "bottom", "Bottom", id="bottom", show=False),
        Binding("escape", "clear_search", "Clear search", id="clear", show=False),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, first: FirstWindow | None = None) -> None:
        """``first``: the window read before the service opened, painted on mount."""
        super().__init__()
        self.first = first
        self.search = ""
        self.status: Status | None = None
        self.sort = "created_at"
        self.descending = True
        self.window_start = 0
        self.tail: int | None = None  # the window counted from the end (after G), not the start
        self.match_count: int | None = 0  # None: the first window's count is on its way
        self.marks: set[str] = set()
        self.counts: Counts | None = None
        self.settings: SettingsInfo | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(id="search-row"):
            yield Input(
                placeholder="/ to search name, ID or owner",
                id="search",
                compact=True,
                select_on_focus=False,
            )  # keys typed before the focus lands stay
            yield Tabs(
                *(Tab(label, id=f"tab-{tab_id}") for tab_id, label, _ in STATUS_TABS), id="status"
            )
        yield Static(id="problem")
        yield KeyTable(id="keys")
        yield Static(id="info")
        # The footer (a dozen widgets, each styled) is mounted just after the first paint:
        # it cost a sixth of the time to the first window of keys on screen.

    @property
    def table(self) -> KeyTable:
        return self.query_one(KeyTable)

    def on_mount(self) -> None:
        self.query_one(Tabs).can_focus = False
        self.table.search_box = self.query_one("#search", Input)
        self.table.focus()
        self.table.fit_columns(self.size.width or self.app.size.width, self.sort, self.descending)
        self.call_after_refresh(self._mount_footer)
        first = self.first
        if first is None:
            self.app.run_db(lambda: self.app.service.whoami(), self._got_user)
            return
        # Read before the service loaded (core/first_window.py): paint it in this very frame.
        self.app.user = first.user
        self._paint_header()
        self.update_footer()
        self._loaded(Loaded(self.current_query(0), first.page, uncounted(first.page), 0))

    async def _mount_footer(self) -> None:
        if not (self.is_mounted and self.is_attached):  # the app ended in its first frame
            return
        await self.mount(Footer())
        self.refresh_bindings()  # the footer shows the bindings as of its first update

    def user_confirmed(self, user: UserInfo | None) -> None:
        """The service's own reading of the acting user, after a start from the first window."""
        if user is None:
            self._got_user(None)
        else:
            self.update_footer()

    def _got_user(self, user: UserInfo | None) -> None:
        self.app.user = user
        if user is None:
            login = self.app.actor
            message = (
                f"{login!r} is not a keytui user of this database. An admin can add you "
                f"with: keytui users add {login} --role developer"
            )
            self.app.user_error = message
            problem = self.query_one("#problem", Static)
            problem.update(Text(message))
            problem.display = True
            self.query_one("#info", Static).update("")
            self._paint_header()
            return
        self._paint_header()
        self.update_footer()
        self.reload(offset=0, cursor=0)  # the header's counts follow the first window

    # -- loading ---------------------------------------------------------------------------------

    def current_query(self, offset: int) -> KeyQuery:
        return KeyQuery(
            search=self.search,
            status=self.status,
            sort=self.sort,
            descending=self.descending,
            limit=WINDOW,
            offset=max(0, offset),
        )

    def reload(
        self,
        offset: int | None = None,
        cursor: int | Callable[[int], int] | None = None,
        delay: float = 0.0,
        *,
        tail: int | None = None,
        recount: bool = True,
    ) -> None:
        """Fetch one window of keys in a worker; a newer reload supersedes this one.

        ``cursor``: the row to put the cursor on, or a function of the rows fetched that gives it.
        ``tail`` counts the window from the end instead (the reversed order from a small offset,
        so ``G`` costs no OFFSET of a million rows). ``recount=False`` (paging) keeps the count.
        A search is counted up to COUNT_CAP; without one, the status counts give the total."""
        if self.app.user is None:
            return
        if offset is None and tail is None:
            offset, tail = (self.window_start, None) if self.tail is None else (0, self.tail)
        query = self.current_query(offset or 0)
        cursor = self.table.cursor_row if cursor is None else cursor
        app, known, counts = self.app, self.match_count, self.counts

        def fetch() -> Loaded | None:
            if delay:
                time.sleep(delay)
                if get_current_worker().is_cancelled:
                    return None
            service = app.service  # in the worker: it may still be loading (see KeytuiApp)
            if tail is None:
                page = service.list_keys(query)
            else:
                flipped = service.list_keys(
                    replace(query, offset=tail, descending=not query.descending)
                )
                page = replace(flipped, keys=flipped.keys[::-1])
            first = tail is None and query.offset == 0
            total: int | None
            if not recount and known is not None:
                total = known
            elif query.search and first:
                # The window goes on screen now; _count_matches brings the count right after
                # (counting a search's matches can cost more than finding the first hundred).
                total = uncounted(page)
            elif query.search:
                total = service.count_keys(query.search, query.status, cap=COUNT_CAP)
            elif counts is not None:  # the header's counts (refresh_counts keeps them current)
                total = getattr(counts, query.status) if query.status else counts.total
            elif first:
                # The first window, before the header's counts: paint the keys now; the
                # counts (refresh_counts, started by _loaded) bring the total right after.
                total = uncounted(page)
            elif query.status:  # index-only counts, where a filtered count would scan
                total = getattr(service.counts(), query.status)
            else:
                total = service.count_keys()
            at = cursor(len(page.keys)) if callable(cursor) else cursor
            return Loaded(query, page, total, at, tail)

        self.app.run_db(fetch, self._loaded, group="keys", exclusive=True)

    def _loaded(self, result: Loaded | None) -> None:
        if result is None:
            return
        query = result.query
        if query.search != self.search or query.status != self.status or query.sort != self.sort:
            return  # the user typed on meanwhile: a newer result is on its way
        if not result.page.keys and (query.offset > 0 or result.tail) and result.total:
            # The window fell off the end (keys were revoked out of a filter): step back.
            self.reload(tail=0, cursor=WINDOW)
            return
        self.tail = result.tail
        self.match_count = result.total
        if result.tail is None:
            self.window_start = query.offset
        else:  # known exactly unless the count was capped (a tail is never fetched uncounted)
            total = result.total or 0
            self.window_start = max(0, total - result.tail - len(result.page.keys))
        self.loaded = True
        table = self.table
        if result.tail is None:
            table.more_above, table.more_below = query.offset > 0, result.page.has_more
        else:
            table.more_above, table.more_below = result.page.has_more, result.tail > 0
        table.show_keys(list(result.page.keys), self.marks, self.app.now(), result.cursor)
        self._paint_info()
        self.update_footer()
        if self.counts is None:
            self.refresh_counts()
        if result.total is None and query.search:
            self._count_matches(query)

    def _count_matches(self, query: KeyQuery) -> None:
        """Count a search's matches (up to COUNT_CAP) once its first window is on screen."""
        app = self.app

        def count() -> int:
            return app.service.count_keys(query.search, query.status, cap=COUNT_CAP)

        def done(total: int) -> None:
            if (query.search, query.status) != (self.search, self.status):
                return  # the user typed on: that search counts its own
            if self.match_count is None:
                self.match_count = total
                self._paint_info()

        self.app.run_db(count, done, group="count", exclusive=True)

    def refresh_counts(self) -> None:
        app = self.app

        def fetch() -> tuple[Counts, SettingsInfo]:
            service = app.service  # in the worker: it may still be loading (see KeytuiApp)
            return service.counts(), service.get_settings()

        def done(result: tuple[Counts, SettingsInfo]) -> None:
            self.counts, self.settings = result
            self._paint_header()
            if self.loaded and not self.search:  # counts after a change: the total is theirs
                c = self.counts
                self.match_count = getattr(c, self.status) if self.status else c.total
                self._paint_info()

        self.app.run_db(fetch, done, group="counts", exclusive=True)

    def _paint_header(self) -> None:
        app = self.app
        line = Text()
        line.append(" keytui ", style="bold reverse")
        line.append("  ")
        who = f"{app.actor} ({app.role or 'not a user'})"
        line.append_text(text(who, "bold"))
        if app.read_only:
            line.append("  read-only", style="bold magenta")
        if self.counts:
            c = self.counts
            line.append("   ")
            line.append(f"{c.active:,} active", style="green")
            line.append(" · ")
            line.append(f"{c.expired:,} expired", style="yellow")
            line.append(" · ")
            line.append(f"{c.revoked:,} revoked", style="red")
        if self.settings and not self.settings.keys_enabled:
            line.append("   KEYS DISABLED", style="bold white on red")
        line.append("   ")
        line.append_text(text(app.db_display, "dim"))
        self.query_one("#header", Static).update(line, layout=False)  # one line, fixed height

    def _paint_info(self) -> None:
        rows = len(self.table.keys)
        parts = Text()
        if self.match_count == 0:
            what = "No keys match" if self.search or self.status else "No keys yet"
            hint = "" if self.search or self.status else " · press n to create one"
            parts.append(what + hint, style="bold")
        elif self.match_count is None:  # the first window, its count on the way
            parts.append(f"Keys 1–{rows:,} of …" + (" matching" if self.search else ""))
        elif self.match_count > COUNT_CAP and self.search:
            if self.tail is None:
                parts.append(f"Keys {self.window_start + 1:,}–{self.window_start + rows:,}")
            elif self.tail == 0:
                parts.append(f"The last {rows:,} keys")
            else:
                parts.append(f"Keys {self.tail + rows:,}–{self.tail + 1:,} from the end")
            parts.append(f" of more than {COUNT_CAP:,} matching")
        else:
            first = self.window_start + 1
            parts.append(f"Keys {first:,}–{self.window_start + rows:,} of {self.match_count:,}")
            if self.search or self.status:
                parts.append(" matching")
        parts.append(
            f" · sorted by {SORT_LABELS[self.sort]} {'▼' if self.descending else '▲'}", style="dim"
        )
        if self.marks:
            parts.append(f" · {len(self.marks):,} marked", style="bold magenta")
        self.query_one("#info", Static).update(parts, layout=False)  # one line, fixed height

    def on_resize(self) -> None:
        if self.table.fit_columns(self.size.width, self.sort, self.descending) and self.loaded:
            self.table.show_keys(self.table.keys, self.marks, self.app.now(), self.table.cursor_row)

    # -- search and filters -----------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.search = event.value.strip()
        self.reload(offset=0, cursor=0, delay=SEARCH_DELAY)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.table.focus()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""  # Input.Changed reloads
        self.table.focus()

    @on(Tabs.TabActivated, "#status")
    def _tab(self, event: Tabs.TabActivated) -> None:
        tab_id = (event.tab.id or "tab-all").removeprefix("tab-")
        status = dict((t, s) for t, _, s in STATUS_TABS)[tab_id]
        if status != self.status:
            self.status = status
            self.reload(offset=0, cursor=0)

    def action_status(self, tab_id: str) -> None:
        self.query_one(Tabs).active = f"tab-{tab_id}"

    def _sort_by(self, sort: str, descending: bool) -> None:
        self.sort, self.descending = sort, descending
        self.table.fit_columns(self.size.width, self.sort, self.descending)
        self.reload(offset=0, cursor=0)

    def action_cycle_sort(self) -> None:
        following = SORT_CYCLE[(SORT_CYCLE.index(self.sort) + 1) % len(SORT_CYCLE)]
        self._sort_by(
            following, following in ("created_at", "updated_at", "last_used_at", "expires_at")
        )

    def action_flip_order(self) -> None:
        self._sort_by(self.sort, not self.descending)

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        column = next((c for c in COLUMNS if c.key == event.column_key.value), None)
        if column is None or column.sort is None:
            return
        descending = not self.descending if column.sort == self.sort else True
        self._sort_by(column.sort, descending)

    # -- moving ---------------------------------------------------------------------------------

    @on(KeyTable.Edge)
    def _edge(self, event: KeyTable.Edge) -> None:
        row = self.table.cursor_row
        if self.tail is not None:  # counted from the end: move the tail, not the offset
            shown_rows = self.table.row_count
            if event.direction > 0:
                new_tail = max(0, self.tail - STEP)
                self.reload(tail=new_tail, cursor=row - (self.tail - new_tail) + 1, recount=False)
            else:  # the row above the old first row, wherever it lands in the new window
                self.reload(
                    tail=self.tail + STEP,
                    recount=False,
                    cursor=lambda rows: max(0, STEP + rows - shown_rows - 1),
                )
        elif event.direction > 0:
            self.reload(offset=self.window_start + STEP, cursor=row - STEP + 1, recount=False)
        else:
            new_offset = max(0, self.window_start - STEP)
            self.reload(
                offset=new_offset, cursor=row + (self.window_start - new_offset) - 1, recount=False
            )

    def action_top(self) -> None:
        if self.window_start == 0 and self.tail is None:
            self.table.move_cursor(row=0)
        else:
            self.reload(offset=0, cursor=0, recount=False)

    def action_bottom(self) -> None:
        if self.tail == 0 or (self.tail is None and not self.table.more_below):
            self.table.move_cursor(row=self.table.row_count - 1)
        else:  # the reversed order from offset 0: no OFFSET of a million rows
            self.reload(tail=0, cursor=WINDOW, recount=False)

    @on(DataTable.RowHighlighted)
    def _moved(self) -> None:
        self.update_footer()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_details()

    # -- marks ---------------------------------------------------------------------------------

    def _toggle(self, key_id: str) -> None:
        if key_id in self.marks:
            self.marks.discard(key_id)
        else:
            self.marks.add(key_id)
        self.table.set_mark(key_id, key_id in self.marks)
        self._paint_info()
        self.update_footer()

    def action_toggle_mark(self) -> None:
        key = self.table.current
        if key is not None:
            self._toggle(key.id)
            self.table.action_cursor_down()

    @on(KeyTable.MarkClicked)
    def _mark_clicked(self, event: KeyTable.MarkClicked) -> None:
        self._toggle(event.key_id)

    def action_mark_all(self) -> None:
        service, search, status = self.app.service, self.search, self.status

        def done(ids: list[str]) -> None:
            self.marks.update(ids)
            self._repaint_marks()
            self.notify(f"Marked {len(ids):,} matching keys.")

        self.app.run_db(lambda: service.matching_ids(search, status), done)

    def action_unmark_all(self) -> None:
        self.marks.clear()
        self._repaint_marks()

    def _repaint_marks(self) -> None:
        with self.app.batch_update():
            for key in self.table.keys:
                self.table.set_mark(key.id, key.id in self.marks)
        self._paint_info()
        self.update_footer()

    # -- who may do what (the rule is the service's; this only sets the footer) ---------------

    FOOTER_ACTIONS = tuple(sorted(NEEDS_SERVICE))  # the ones whose state can change

    def update_footer(self) -> None:
        """Refresh the footer only when what it shows would change: rebuilding it costs more
        than repainting the whole table, and moving the cursor rarely changes it."""
        state = tuple(self.check_action(action, ()) for action in self.FOOTER_ACTIONS)
        if state != getattr(self, "_footer_state", None):
            self._footer_state = state
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.app
        if action in NEEDS_SERVICE and not app.service_ready:
            return None  # greyed for the first half second, while the service opens
        if action in ("rename", "replace", "delete", "revoke", "details"):
            key = self.table.current if self.is_mounted else None
            if action == "details":
                return True if key is not None else None
            if action == "revoke" and self.marks:
                return app.may("revoke")
            if key is None:  # nothing to act on: greyed, or hidden in read-only mode
                return False if app.may(action) is False else None
            return app.may(action, key.owner)
        if action in ("new_key", "settings"):
            return app.may(action)
        if action in ("toggle_mark", "mark_all", "unmark_all") and app.read_only:
            return False
        return True

    # -- key actions ----------------------------------------------------------------------------

    def action_details(self) -> None:
        key = self.table.current
        if key is not None:
            from .details import KeyDetailsScreen

            self.app.push_screen(KeyDetailsScreen(key.id))

    def action_new_key(self) -> None:
        from .new_key import NewKeyModal

        self.app.push_screen(NewKeyModal(), self._issued)

    def _issued(self, issued: IssuedKey | None) -> None:
        if issued is None:
            return
        from .reveal import RevealModal

        self.reload(offset=0, cursor=0)
        self.refresh_counts()
        self.app.push_screen(RevealModal(issued))

    def action_rename(self) -> None:
        key = self.table.current
        if key is not None:
            from .rename import RenameModal

            def renamed(changed: bool | None) -> None:
                if changed:
                    self.reload()

            self.app.push_screen(RenameModal(key), renamed)

    def action_replace(self) -> None:
        key = self.table.current
        if key is None:
            return
        from .confirm import ConfirmModal

        body = [
            Text.assemble("Replace ", text(key.name, "bold"), f" ({key.id})?"),
            Text(
                "Replacing takes effect at once: apps using the old key will fail on "
                "their next request."
            ),
            Text("The new secret is shown once, on the next screen."),
        ]
        service = self.app.service

        def go(confirmed: bool | None) -> None:
            if confirmed:
                self.app.run_db(lambda: service.replace_key(key.id), self._issued)

        self.app.push_screen(ConfirmModal("Replace key", body, "Replace"), go)

    def action_revoke(self) -> None:
        ids = (
            sorted(self.marks)
            if self.marks
            else ([self.table.current.id] if self.table.current else [])
        )
        if ids:
            service = self.app.service
            self.app.run_db(lambda: service.plan_revoke(ids), self._confirm_revoke)

    def _confirm_revoke(self, plan: RevokePlan) -> None:
        from .confirm import ConfirmModal

        if not plan.revoke:
            reasons = ", ".join(sorted({s.reason for s in plan.skipped})) or "nothing marked"
            self.notify(escape(f"Nothing to revoke: {reasons}."), severity="warning")
            return
        count = len(plan.revoke)
        body: list[Text] = [
            Text(
                f"Revoking is irreversible. {count:,} key{'s' if count > 1 else ''} will stop "
                "working at once and stay listed as revoked:",
                style="bold",
            ),
        ]
        for key in plan.revoke[:8]:
            body.append(Text.assemble("  • ", text(key.name), (f"  {key.id}", "dim")))
        if count > 8:
            body.append(Text(f"  … and {count - 8:,} more"))
        if plan.skipped:
            body.append(Text(f"{len(plan.skipped):,} marked key(s) will be skipped:", style="bold"))
            for skipped in plan.skipped[:6]:
                body.append(Text(f"  • {skipped.id}: {skipped.reason}", style="dim"))
            if len(plan.skipped) > 6:
                body.append(Text(f"  … and {len(plan.skipped) - 6:,} more", style="dim"))
        ids = [key.id for key in plan.revoke]
        service = self.app.service

        def go(confirmed: bool | None) -> None:
            if confirmed:
                self.app.run_db(lambda: service.revoke_keys(ids), self._revoked)

        title = f"Revoke {count:,} key{'s' if count > 1 else ''}"
        self.app.push_screen(ConfirmModal(title, body, "Revoke"), go)

    def _revoked(self, result: RevokePlan) -> None:
        done = {key.id for key in result.revoke}
        self.marks.clear()  # the batch is dealt with: revoked, or skipped for the reason shown
        message = f"Revoked {len(done):,} key{'s' if len(done) != 1 else ''}."
        if result.skipped:
            message += f" Skipped {len(result.skipped):,}."
        self.notify(message)
        self.reload()
        self.refresh_counts()

    def action_delete(self) -> None:
        key = self.table.current
        if key is None:
            return
        from .confirm import ConfirmModal

        body = [
            Text.assemble("Delete ", text(key.name, "bold"), f" ({key.id})?"),
            Text(
                "Deleting removes the key entirely: it disappears from the list and apps "
                "using it fail. Its events stay in the audit log. This cannot be undone."
            ),
        ]
        service = self.app.service

        def go(confirmed: bool | None) -> None:
            if confirmed:

                def deleted(_keys: tuple[KeyInfo, ...]) -> None:
                    self.marks.discard(key.id)
                    self.notify(escape(f"Deleted key {key.id}."))
                    self.reload()
                    self.refresh_counts()

                self.app.run_db(lambda: service.delete_keys([key.id]), deleted)

        self.app.push_screen(ConfirmModal("Delete key", body, "Delete"), go)

    def action_events(self) -> None:
        from .events import EventsScreen

        self.app.push_screen(EventsScreen())

    def action_settings(self) -> None:
        from .settings import SettingsScreen

        def back(_result: object) -> None:
            self.refresh_counts()
            self.reload()

        self.app.push_screen(SettingsScreen(), back)

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def action_quit(self) -> None:
        self.app.exit()
