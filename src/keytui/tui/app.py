"""The keytui app: one service, a main screen, and a few rooms off it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from rich.markup import escape
from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import get_current_worker

from ..core.clock import Clock
from ..core.errors import KeytuiError, is_sqlalchemy_error
from ..core.first_window import FirstWindow
from ..core.values import UserInfo, permits
from .typed_keys import TypedKeys

if TYPE_CHECKING:
    from ..core.changes import Change, ChangeWatcher
    from ..core.service import KeyService

T = TypeVar("T")

#: Actions that change something: hidden entirely in ``--read-only`` mode.
CHANGING_ACTIONS = frozenset({"new_key", "rename", "replace", "revoke", "delete", "settings"})


REFRESH_DELAY = 0.25  # seconds of changes gathered into one refresh of the screens


class ChangesHeard(Message):
    """The database changed (``change``), or the change signal could not start (``problem``)."""

    def __init__(self, change: Change | None, problem: str | None = None) -> None:
        super().__init__()
        self.change = change
        self.problem = problem


def describe_error(exc: BaseException) -> str:
    """One line for the user, never a traceback (and never a secret: the service's messages
    hold IDs, names and logins only)."""
    if isinstance(exc, KeytuiError):
        return str(exc)
    if is_sqlalchemy_error(exc):
        from ..core.db import short_reason

        return f"database error: {short_reason(exc)}"
    return f"unexpected error: {type(exc).__name__}"


class KeytuiApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "keytui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(
        self,
        service: KeyService | None,
        *,
        clock: Clock | None = None,
        read_only: bool = False,
        opener: Callable[[], KeyService] | None = None,
        first: FirstWindow | None = None,
        actor: str | None = None,
        announce_created: bool = False,
    ) -> None:
        """Either a ``service``, or an ``opener`` that makes one in the background while the
        ``first`` window (read without it) is painted: see core/first_window.py.
        ``announce_created``: say so if opening made a new database (``keytui`` itself; not the
        demo's throwaway, nor a test's)."""
        super().__init__()
        if service is not None:
            self.actor: str = service.actor
            self.clock: Clock = clock or service.clock
        elif opener is None or first is None or actor is None or clock is None:
            raise ValueError("give a service, or an opener with its first window, actor, clock")
        else:
            self.actor, self.clock = actor, clock
        self._service = service
        self._opener = opener
        self._opened = threading.Event()
        self._open_error: BaseException | None = None
        self._first = first  # handed to the main screen, which paints it
        self.read_only = read_only
        self.announce_created = announce_created
        self._started = False  # resizes before the main screen is pushed wait for it
        self._too_small: Screen[None] | None = None
        self.user: UserInfo | None = None
        self.user_error: str | None = None
        if service is not None:
            self._opened.set()
        # Keys reach the widgets in the order typed (see typed_keys.py); those typed before the
        # app can run them (the service opening, the user not yet read) wait for it.
        self._watcher: ChangeWatcher | None = None
        self._refresh_timer: Timer | None = None
        self.typed = TypedKeys(self, super().on_event)
        self._pastes: set[asyncio.Future[None]] = set()  # pastes waiting for the keys before them
        self.typed.hold()
        self._keys_waiting = True

    @property
    def service(self) -> KeyService:
        """The service. Until the background open is done (the first half second after a
        start with a first window) this waits for it: only workers ask for it then, as the
        actions that need it are greyed out until ``service_ready``."""
        if self._service is None:
            self._opened.wait()
            if self._service is None:
                raise self._open_error or RuntimeError("the service did not open")
        return self._service

    @property
    def db_display(self) -> str:
        if self._service is not None:
            return self._service.db.display
        assert self._first is not None  # no service yet: the app started from a first window
        return self._first.path

    # -- start -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        from .screens.main import MainScreen

        self.push_screen(MainScreen(self._first))
        self._started = True
        self.fit_terminal(*self.size)
        if self._service is None:
            self.run_worker(self._open_service, thread=True, group="open", exit_on_error=False)
        else:
            self._service_opened()

    def on_resize(self, event: events.Resize) -> None:
        if self._started:
            self.fit_terminal(event.size.width, event.size.height)

    def fit_terminal(self, width: int, height: int) -> None:
        """Below 80x24 a word instead of a cut screen (statuses cut to ``expi``); the screen
        below comes back as it was once the terminal is large enough again."""
        from .screens.too_small import TooSmallScreen, too_small

        small = too_small(width, height)
        if small and self._too_small is None:
            self._too_small = TooSmallScreen()
            self.push_screen(self._too_small)
        elif not small and self._too_small is not None:
            if self.screen is self._too_small:
                self.pop_screen()
            self._too_small = None

    def _open_service(self) -> None:
        """In a thread: import and open the service (SQLAlchemy, migrations check, argon2)."""
        opener = self._opener
        assert opener is not None  # on_mount starts this only for an app without a service
        try:
            self._service = opener()
        except Exception as exc:  # noqa: BLE001 - the app ends, and run_app says why
            self._open_error = exc
            self.call_from_thread(self.exit, None, 1)
            return
        finally:
            self._opened.set()  # whatever happened: nobody waits for ever
        self.call_from_thread(self._service_opened)

    @property
    def service_ready(self) -> bool:
        """Is the service open? Until it is, screens grey out what needs it (see
        MainScreen.check_action), so the event loop never waits for it."""
        return self._service is not None

    def close_service(self) -> None:
        """After the app: close the service it opened itself (usage buffered, engine)."""
        if self._opener is not None and self._service is not None:
            self._service.close()

    def raise_open_error(self) -> None:
        """After the app: the reason the background open failed, as the CLI reports errors."""
        if self._open_error is None:
            return
        if isinstance(self._open_error, KeytuiError):
            raise self._open_error
        from ..core.errors import DatabaseError

        raise DatabaseError(describe_error(self._open_error)) from self._open_error

    def _service_opened(self) -> None:
        from ..core.db import access_warning

        if self._opener is not None:  # started from the first window: now the real thing
            self.run_db(self.service.whoami, self._user_confirmed)
        # Changes made by other processes: heard in the background, after the first paint
        self.run_worker(self._watch_changes, thread=True, group="watch", exit_on_error=False)
        notice = self.service.created_notice() if self.announce_created else None
        if notice:  # a new database, made by this start: say so once
            self.notify(escape(notice), title="New database", timeout=15)
        path = self.service.db.sqlite_path
        warning = access_warning(path) if path is not None else None
        if warning:
            self.notify(
                escape(warning),
                title="Database file",
                severity="warning",
                timeout=15,
            )

    # -- what is on screen is what is in the database --------------------------------------------

    def _watch_changes(self) -> None:
        """In a thread: subscribe to the database's change signal (core/changes.py)."""
        try:
            watcher = self.service.watch(self._heard)
        except Exception as exc:  # noqa: BLE001 - the app works on; ctrl+r still refreshes
            self.post_message(ChangesHeard(None, problem=describe_error(exc)))
            return
        if not self.is_running:  # the app ended while it subscribed
            watcher.stop()
            return
        self._watcher = watcher

    def _heard(self, change: Change) -> None:
        """From the watcher's thread. ``post_message`` (thread-safe) rather than
        ``call_from_thread``: that one waits for the event loop, which never answers once
        the app is ending, and the watcher's thread would hang on it."""
        self.post_message(ChangesHeard(change))

    def on_changes_heard(self, message: ChangesHeard) -> None:
        if message.problem:
            self.notify(
                escape(
                    f"Changes by others will not show by themselves ({message.problem}); "
                    "ctrl+r refreshes."
                ),
                severity="warning",
            )
            return
        if self._refresh_timer is None:  # a burst of changes is one refresh
            self._refresh_timer = self.set_timer(REFRESH_DELAY, self.refresh_screens)

    def refresh_screens(self) -> None:
        """Read again what every open screen shows (their reads run in workers)."""
        self._refresh_timer = None
        for screen in self.screen_stack:
            refresh = getattr(screen, "refresh_from_database", None)
            if callable(refresh):
                refresh()

    def on_unmount(self) -> None:
        """Stop hearing changes (in a thread: the event loop is ending, and waits for none)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            threading.Thread(target=watcher.stop, name="keytui-unwatch", daemon=True).start()

    def _user_confirmed(self, user: UserInfo | None) -> None:
        """The acting user as the service reads them (the role may have changed since the
        first window was read); the screen's keys follow what it may now do."""
        from .screens.main import MainScreen

        self.user = user
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.user_confirmed(user)
        self.keys_ready()

    def keys_ready(self) -> None:
        """The service is open, the user read and their keys shown (or the reason they are
        not): the keys typed so far run now, in order."""
        if self._keys_waiting and self.service_ready:
            self._keys_waiting = False
            self.typed.release()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self.typed.take(event)  # in order, one after the other (typed_keys.py)
            return
        if isinstance(event, events.Paste) and self.typed.busy:
            # a paste that follows keys still on their way (`/` moving the focus to the search
            # box) goes where they leave the focus, after them
            waiting = asyncio.ensure_future(self._paste_after_keys(event.text))
            self._pastes.add(waiting)  # held until done (a task only weakly referenced may vanish)
            waiting.add_done_callback(self._pastes.discard)
            return
        await super().on_event(event)

    async def _paste_after_keys(self, text: str) -> None:
        await self.typed.drained()
        self.post_message(events.Paste(text))

    async def _press_keys(self, keys: Iterable[str]) -> None:
        """Pilot's way in (tests): its keys are dealt with before it looks at the screen."""
        await super()._press_keys(keys)
        await self.typed.drained()

    def now(self) -> datetime:
        return self.clock()

    @property
    def role(self) -> str | None:
        return self.user.role if self.user else None

    def may(self, action: str, owner: str | None = None) -> bool | None:
        """For ``check_action``: False hides (read-only mode), None greys out, True allows.

        The answer comes from the service's own rule (``permits``); the service checks it again
        on every call, so this only decides what the footer shows."""
        if self.read_only and action in CHANGING_ACTIONS:
            return False
        if action == "settings":
            return True if self.role == "admin" else None
        service_action = {"new_key": "create"}.get(action, action)
        return True if permits(self.role, self.actor, service_action, owner) else None

    # -- database work off the event loop ----------------------------------------------------

    def run_db(
        self,
        call: Callable[[], T],
        done: Callable[[T], Any] | None = None,
        *,
        failed: Callable[[BaseException], Any] | None = None,
        group: str = "db",
        exclusive: bool = False,
        hold_keys: bool = False,
    ) -> None:
        """Run ``call`` (service work) in a thread worker; hand its result to ``done`` on the
        event loop, or its error to ``failed`` (default: a one-line notification). A result
        from a worker that was cancelled (superseded by a newer exclusive one) is dropped.

        ``hold_keys``: the keys typed meanwhile wait for what comes of it (the dialog it
        prepares, or the screen after a save), so they go where they were meant to."""
        if hold_keys:
            self.typed.hold()

            def released(handler: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
                def handle(value: Any) -> None:
                    try:
                        if handler is not None:
                            handler(value)
                    finally:
                        self.typed.release()

                return handle

            done, failed = released(done), released(failed or self.report_error)
        self._db_worker(call, done, failed, group=group, exclusive=exclusive)

    def _db_worker(
        self,
        call: Callable[[], T],
        done: Callable[[T], Any] | None,
        failed: Callable[[BaseException], Any] | None,
        *,
        group: str,
        exclusive: bool,
    ) -> None:
        @work(thread=True, group=group, exclusive=exclusive, exit_on_error=False)
        def job(app: KeytuiApp) -> None:
            worker = get_current_worker()
            try:
                result = call()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a message
                if not worker.is_cancelled:
                    app.call_from_thread(failed or app.report_error, exc)
                return
            if not worker.is_cancelled and done is not None:
                app.call_from_thread(done, result)

        job(self)

    def report_error(self, exc: BaseException) -> None:
        self.notify(escape(describe_error(exc)), severity="error", timeout=8)
        self.keys_ready()  # had the start failed here, the keys typed meanwhile run anyway

    # -- command palette: our actions, and no screenshot while a secret may be on screen ------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title.lower() not in ("screenshot", "maximize"):
                yield command
        from .screens.help import key_label

        # The screen's own actions, once each, with their keys: not the focused table's
        # internals (cursor left, copy selected text, a second Bottom).
        own = {b.action for b in screen.BINDINGS if isinstance(b, Binding)}
        seen: set[str] = set()
        for active in screen.active_bindings.values():
            binding = active.binding
            if active.node is not screen or binding.action not in own:
                continue
            if not active.enabled or not binding.description:
                continue
            if binding.action in seen or binding.action in ("quit", "command_palette"):
                continue
            seen.add(binding.action)
            keys = key_label(binding.key)
            about = binding.tooltip if binding.tooltip else binding.description
            yield SystemCommand(
                binding.description,
                f"key: {keys} · {about}",
                self._runner(active.node, binding.action),
            )

    def _runner(self, node: DOMNode, action: str) -> Callable[[], Any]:
        async def run() -> None:
            await self.run_action(action, node)

        return run

    def deliver_screenshot(self, *args: Any, **kwargs: Any) -> str | None:
        """Screenshots are refused: a secret may be on screen, and it must never land in a
        file. (Tests and the screenshot script render through their own path.)"""
        self.notify("Screenshots are disabled in keytui.", severity="warning")
        return None

    def action_screenshot(self, *args: Any, **kwargs: Any) -> None:
        self.deliver_screenshot()


def make_app(
    service: KeyService | None, *, clock: Clock | None = None, read_only: bool = False, **start: Any
) -> KeytuiApp:
    """The one factory: the CLI, the tests and the screenshot script all build the app here
    (``start``: the opener, first window and actor of a start before the service, see
    ``KeytuiApp``)."""
    return KeytuiApp(service, clock=clock, read_only=read_only, **start)
