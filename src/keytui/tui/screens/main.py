"""The main screen: header, search, status filter, the key table, and every key action."""

from __future__ import annotations

import time

from rich.markup import escape
from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static, Tab, Tabs
from textual.worker import get_current_worker

from ...core import filter as lang
from ...core.errors import InvalidInput
from ...core.first_window import FirstWindow
from ...core.values import (
    Counts,
    KeyActivity,
    KeyQuery,
    SettingsInfo,
    Status,
    UsageFlags,
    UserInfo,
)
from ..app import KeytuiApp
from ..widgets.header import HeaderLine
from ..widgets.info_line import InfoLine
from ..widgets.key_table import COLUMNS, KeyTable
from ..window import COUNT_CAP, Cursor, Loaded, Move, PagingWindow, uncounted
from ..window import fetch as fetch_window
from .key_actions import KeyActions
from .main_keys import MAIN_BINDINGS, NEEDS_SERVICE

SEARCH_DELAY = 0.15  # seconds to wait for the next keystroke before querying
STATUS_TABS: tuple[tuple[str, str, Status | None], ...] = (
    ("all", "1 All", None),
    ("active", "2 Active", "active"),
    ("expired", "3 Expired", "expired"),
    ("revoked", "4 Revoked", "revoked"),
)


class MainScreen(KeyActions):
    app = getters.app(KeytuiApp)  # typed, so mypy checks self.app.service and the rest

    BINDINGS = MAIN_BINDINGS

    def __init__(self, first: FirstWindow | None = None) -> None:
        """``first``: the window read before the service opened, painted on mount."""
        super().__init__()
        self.first = first
        self.window = PagingWindow()
        self.marks: set[str] = set()
        self.settings: SettingsInfo | None = None
        self.flags: UsageFlags | None = None  # keys in heavy use, keys with wrong secrets
        self._follow: str | None = None  # the key the cursor stays on through a refresh
        self.filter_problem: str | None = None  # the search box's text is no filter: why
        self._awaiting_rows = False  # keys are held until a submitted search's rows are shown

    def compose(self) -> ComposeResult:
        yield HeaderLine(id="header")
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
        yield InfoLine(id="info")
        # The footer (a dozen widgets, each styled) is mounted just after the first paint:
        # it cost a sixth of the time to the first window of keys on screen.

    @property
    def table(self) -> KeyTable:
        return self.query_one(KeyTable)

    def on_mount(self) -> None:
        self.query_one(Tabs).can_focus = False
        window, table = self.window, self.table
        table.focus()
        table.fit_columns(self.size.width or self.app.size.width, window.sort, window.descending)
        self.call_after_refresh(self._mount_footer)
        first = self.first
        if first is None:
            self.app.run_db(lambda: self.app.service.whoami(), self._got_user)
            return
        # Read before the service loaded (core/first_window.py): paint it in this very frame.
        self.app.user = first.user
        self._paint_header()
        self.update_footer()
        self._loaded(Loaded(window.query(0), first.page, uncounted(first.page), 0))

    async def _mount_footer(self) -> None:
        if not (self.is_mounted and self.is_attached):  # the app ended in its first frame
            return
        await self.mount(Footer(compact=True, show_command_palette=False))  # ? lists ctrl+p
        self.refresh_bindings()  # the footer shows the bindings as of its first update

    def user_confirmed(self, user: UserInfo | None) -> None:
        """The service's own reading of the acting user, after a start from the first window."""
        if user is None:
            self._got_user(None)
        else:
            self.update_footer()

    def _read_activity(self) -> None:
        """The uses in 24 h and flags of the keys shown (one query, in a worker that waits for
        the service to open), painted in place: for the first window, read without them."""
        app, shown = self.app, [key.id for key in self.table.keys]

        def done(activity: dict[str, KeyActivity]) -> None:
            table = self.table
            if [key.id for key in table.keys] == shown:  # not a newer window meanwhile
                table.show_keys(table.keys, self.marks, app.now(), table.cursor_row, activity)

        if shown:
            self.app.run_db(lambda: app.service.key_activity(shown), done, group="keys")

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
            self.query_one(InfoLine).update("")
            self._paint_header()
            self.app.keys_ready()
            return
        self._paint_header()
        self.update_footer()
        self.reload(offset=0, cursor=0)  # the header's counts follow the first window

    # -- loading ---------------------------------------------------------------------------------

    def reload(
        self,
        offset: int | None = None,
        cursor: Cursor | None = None,
        delay: float = 0.0,
        *,
        tail: int | None = None,
        recount: bool = True,
        fresh: bool = False,
    ) -> None:
        """Fetch one window of keys in a worker; a newer reload supersedes this one.

        ``offset`` or ``tail`` (counted from the end), or neither: the window shown, read again
        (see PagingWindow.request). ``delay``: wait that long for the next keystroke first."""
        if self.app.user is None:
            return
        at = self.table.cursor_row if cursor is None else cursor
        request = self.window.request(offset, at, tail=tail, recount=recount, fresh=fresh)
        app = self.app

        def fetch() -> Loaded | None:
            if delay:
                time.sleep(delay)
                if get_current_worker().is_cancelled:
                    return None
            # in the worker: the service may still be loading (see KeytuiApp)
            return fetch_window(app.service, request)

        self.app.run_db(fetch, self._loaded, failed=self._load_failed, group="keys", exclusive=True)

    def _load_failed(self, exc: BaseException) -> None:
        self._rows_arrived()  # none will: the keys held for them go on
        self.app.report_error(exc)

    def _go(self, move: Move, *, recount: bool = False) -> None:
        self.reload(move.offset, move.cursor, tail=move.tail, recount=recount)

    def _loaded(self, result: Loaded | None) -> None:
        window = self.window
        if result is None or not window.is_current(result.query):
            return  # cancelled, or the user typed on meanwhile: a newer result is on its way
        if window.fell_off(result):
            self._go(window.bottom(), recount=True)
            return
        window.take(result)
        if result.counts is not None:
            self._paint_header()
        table = self.table
        table.more_above, table.more_below = window.more_above, window.more_below
        cursor, follow = result.cursor, self._follow
        self._follow = None
        ids = [key.id for key in result.page.keys]
        if follow in ids:  # a refresh: the cursor stays on its key wherever it moved
            cursor = ids.index(follow)
        table.show_keys(list(result.page.keys), self.marks, self.app.now(), cursor, result.activity)
        self._rows_arrived()
        self._paint_info()
        self.update_footer()
        if result.activity is None:
            self._read_activity()
        self.app.keys_ready()  # the keys typed at the start act on these rows
        if window.counts is None:
            self.refresh_counts()
        if result.total is None and result.query.search:
            self._count_matches(result.query)

    def refresh_from_database(self) -> None:
        """The database changed (another process, or ctrl+r): the window shown and the header's
        counts are read again; the cursor stays on its key, the marks stay."""
        if self.app.user is None or not self.window.loaded:
            return
        current = self.table.current
        self._follow = current.id if current else None
        self.reload(fresh=True)  # the header's counts come with the rows: the two agree
        self.refresh_counts(counts=False)

    def action_refresh(self) -> None:
        self.app.refresh_screens()

    def _count_matches(self, query: KeyQuery) -> None:
        """Count a search's matches (up to COUNT_CAP) once its first window is on screen."""
        app = self.app

        def count() -> int:
            return app.service.count_keys(query.search, query.status, cap=COUNT_CAP)

        def done(total: int) -> None:
            if self.window.counted(query, total):
                self._paint_info()

        self.app.run_db(count, done, group="count", exclusive=True)

    def refresh_counts(self, *, counts: bool = True) -> None:
        """The header's counts (unless ``counts`` is False: a reload brings them), the
        settings and the usage flags, each read in a worker."""
        app = self.app

        def fetch() -> tuple[Counts | None, SettingsInfo]:
            service = app.service  # in the worker: it may still be loading (see KeytuiApp)
            return (service.counts() if counts else None), service.get_settings()

        def done(result: tuple[Counts | None, SettingsInfo]) -> None:
            fresh, self.settings = result
            total_changed = fresh is not None and self.window.set_counts(fresh)
            self._paint_header()
            if total_changed:  # counts after a change: without a search, the total is theirs
                self._paint_info()

        self.app.run_db(fetch, done, group="counts", exclusive=True)

        def flagged(flags: UsageFlags) -> None:
            self.flags = flags
            self._paint_header()

        # keys in heavy use, keys with wrong secrets: beside the counts, never holding them up
        self.app.run_db(lambda: app.service.usage_flags(), flagged, group="flags", exclusive=True)

    def _paint_header(self) -> None:
        app = self.app
        self.query_one(HeaderLine).paint(
            actor=app.actor,
            role=app.role,
            read_only=app.read_only,
            counts=self.window.counts,
            settings=self.settings,
            flags=self.flags,
            database=app.db_display,
        )

    def _paint_info(self) -> None:
        info = self.query_one(InfoLine)
        info.paint(self.window, len(self.table.keys), len(self.marks), self.filter_problem)

    def on_resize(self) -> None:
        window, table = self.window, self.table
        if table.fit_columns(self.size.width, window.sort, window.descending) and window.loaded:
            table.show_keys(table.keys, self.marks, self.app.now(), table.cursor_row)

    # -- search and filters -----------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        safe = lang.shown_safely(event.value)
        if safe != event.value:  # a pasted secret: the box shows kt_<id>_…, which finds it
            event.input.value = safe
            event.input.cursor_position = len(safe)
            return  # the new value's own Changed searches
        try:
            lang.parse(event.value)
        except InvalidInput as bad:  # the last good filter's keys stay; the line says why
            self.filter_problem = str(bad)
            self._paint_info()
            return
        self.filter_problem = None
        self.window.search = event.value.strip()
        self.reload(offset=0, cursor=0, delay=SEARCH_DELAY)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        """``enter``: the search runs now, and the keys typed after it (``/mailer`` ``enter``
        ``e`` in one burst) wait for the rows it finds, so they act on those rows."""
        self.table.focus()
        if self.app.user is None:
            return  # no rows to wait for (reload reads none)
        if not self._awaiting_rows:
            self._awaiting_rows = True
            self.app.typed.hold()
        self.reload(offset=0, cursor=0)

    def _rows_arrived(self) -> None:
        if self._awaiting_rows:
            self._awaiting_rows = False
            self.app.typed.release()

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
        if status != self.window.status:
            self.window.status = status
            self.reload(offset=0, cursor=0)

    def action_status(self, tab_id: str) -> None:
        self.query_one(Tabs).active = f"tab-{tab_id}"

    def _sort_by(self, sort: str, descending: bool) -> None:
        self.window.sort, self.window.descending = sort, descending
        self.table.fit_columns(self.size.width, sort, descending)
        self.reload(offset=0, cursor=0)

    def action_cycle_sort(self) -> None:
        cycle = self.table.sort_cycle  # only the columns on screen: the arrow is always seen
        at = cycle.index(self.window.sort) if self.window.sort in cycle else -1
        following = cycle[(at + 1) % len(cycle)]
        self._sort_by(
            following,
            following in ("created_at", "updated_at", "last_used_at", "expires_at", "uses_24h"),
        )

    def action_flip_order(self) -> None:
        self._sort_by(self.window.sort, not self.window.descending)

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        column = next((c for c in COLUMNS if c.key == event.column_key.value), None)
        if column is None or column.sort is None:
            return
        window = self.window
        descending = not window.descending if column.sort == window.sort else True
        self._sort_by(column.sort, descending)

    # -- moving ---------------------------------------------------------------------------------

    @on(KeyTable.Edge)
    def _edge(self, event: KeyTable.Edge) -> None:
        table = self.table
        self._go(self.window.edge(event.direction, table.cursor_row, table.row_count))

    def action_top(self) -> None:
        if self.window.at_top:
            self.table.move_cursor(row=0)
        else:
            self.reload(offset=0, cursor=0, recount=False)

    def action_bottom(self) -> None:
        if self.window.at_bottom:
            self.table.move_cursor(row=self.table.row_count - 1)
        else:
            self._go(self.window.bottom())

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
        if self.filter_problem:  # the box does not say what the table shows: mark nothing
            self.notify(escape(self.filter_problem), severity="warning")
            return
        service, search, status = self.app.service, self.window.search, self.window.status

        def done(ids: list[str]) -> None:
            self.marks.update(ids)
            self._repaint_marks()
            self.notify(f"Marked {len(ids):,} matching keys.")

        # the keys typed after `a` (`x` in the same burst) act on the marks, so they wait
        self.app.run_db(lambda: service.matching_ids(search, status), done, hold_keys=True)

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
            may = app.may(action, key.owner)
            if may and action in ("replace", "revoke") and key.status != "active":
                return None  # only active keys: greyed (pressed, the service says why)
            return may
        if action in ("new_key", "settings"):
            return app.may(action)
        if action in ("toggle_mark", "mark_all", "unmark_all") and app.read_only:
            return False
        return True

    def action_events(self) -> None:
        from .events import EventsScreen

        self.app.push_screen(EventsScreen())

    def action_settings(self) -> None:
        from .settings import SettingsScreen

        def back(_result: object) -> None:
            self.refresh_counts()
            self.reload()

        self._checked("settings", None, lambda _: self.app.push_screen(SettingsScreen(), back))

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    def action_quit(self) -> None:
        self.app.exit()
