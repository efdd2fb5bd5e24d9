"""Keys that arrive in one read (a burst over SSH, a paste, a fast typist) are handled in the order
typed, focus changes and new screens included, on every screen; keys typed before the app can
run them run afterwards as the commands they are.

A burst is posted to the app all at once, as the terminal driver posts one read's keys; Pilot's
own ``press`` waits for each key in turn, which is why it never showed the bug. Each burst is
repeated over several rounds: the misordering was a race, not a certainty.
"""

from __future__ import annotations

import threading
import time

import pytest
from textual import events
from textual.widgets import Input, Select

from keytui.core.first_window import read_first_window
from keytui.core.service import KeyService
from keytui.core.values import KeyQuery
from keytui.tui.app import KeytuiApp, make_app
from keytui.tui.screens.events import EventsScreen
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.new_key import NewKeyModal
from keytui.tui.screens.rename import RenameModal
from keytui.tui.screens.settings import SettingsScreen
from keytui.tui.window import WINDOW

from .test_tui import SIZE, modal, started, tui, until

ROUNDS = 4
NAMES = {"/": "slash", "\r": "enter", "\t": "tab", " ": "space", "\x1b": "escape"}


def burst(app: KeytuiApp, keys: str) -> None:
    """Post every key at once, as the driver posts the keys of one read from the terminal."""
    for char in keys:
        app.post_message(events.Key(NAMES.get(char, char), char))


async def dealt_with(app: KeytuiApp, pilot) -> None:
    """Until every key posted has been handed on and what it set off has been handled."""
    await pilot.pause()
    await until(pilot, lambda: not app.typed.busy, "the keys to be dealt with")
    await pilot.pause()


def value(screen, selector: str) -> str:
    return screen.query_one(selector, Input).value


@pytest.fixture
def service(make_sqlite_service) -> KeyService:
    """alice, the database's admin, with a few keys."""
    service = make_sqlite_service("alice", face="tui")
    for name in ("billing worker", "search gateway", "mailer batch"):
        service.create_key(name)
    return service


@tui
async def test_tab_in_a_burst_moves_on_before_the_next_letters_in_the_new_key_form(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for round_ in range(ROUNDS):
            await pilot.press("n")
            form = await modal(app, pilot, NewKeyModal)
            burst(app, f"alpha{round_}\tbeta{round_}")
            await dealt_with(app, pilot)
            assert value(form, "#name") == f"alpha{round_}"
            assert value(form, "#description") == f"beta{round_}"
            burst(app, "\x1by")  # esc on a filled-in form asks; y discards
            await dealt_with(app, pilot)
            assert app.screen is main


@tui
async def test_one_burst_from_the_main_screen_opens_the_form_and_fills_it_in_order(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for round_ in range(ROUNDS):
            # n opens the form; the letters after it are its name, not the table's keys (a
            # would mark every key, e would rename); enter moves on as tab does
            burst(app, f"nalpha{round_}\rbeta{round_}")
            await dealt_with(app, pilot)
            form = app.screen
            assert isinstance(form, NewKeyModal)
            assert value(form, "#name") == f"alpha{round_}"
            assert value(form, "#description") == f"beta{round_}"
            assert not main.marks
            burst(app, "\x1by")
            await dealt_with(app, pilot)
            assert app.screen is main


@tui
async def test_a_burst_in_the_rename_dialog_keeps_its_order(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for round_ in range(ROUNDS):
            key = main.table.current
            assert key is not None
            burst(app, f"e\tnote {round_}")
            await dealt_with(app, pilot)
            dialog = app.screen
            assert isinstance(dialog, RenameModal)
            assert value(dialog, "#name") == key.name  # nothing typed into the name
            assert value(dialog, "#description").endswith(f"note {round_}")
            burst(app, "\x1by")  # esc on an edited rename asks; y discards
            await dealt_with(app, pilot)
            assert app.screen is main


@tui
async def test_keys_after_a_submitted_search_act_on_the_rows_it_finds(service, monkeypatch):
    """``/billing`` ``enter`` ``e`` in one burst renames billing worker, not the row that was
    under the cursor before the search's rows came (seen in tmux on a loaded machine)."""
    read = service.list_keys

    def slow_search(query):
        if query.search:
            time.sleep(0.3)  # a busy database: the rows come well after the keys
        return read(query)

    monkeypatch.setattr(service, "list_keys", slow_search)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for round_, name in enumerate(("billing worker", "search gateway")):
            assert main.table.current is not None and main.table.current.name != name
            burst(app, f"/{name.split()[0]}\re\tnote {round_}")
            await dealt_with(app, pilot)
            dialog = app.screen
            assert isinstance(dialog, RenameModal)
            assert value(dialog, "#name") == name
            assert value(dialog, "#description").endswith(f"note {round_}")
            app.post_message(events.Key("ctrl+s", None))
            await until(pilot, lambda: app.screen is main, "the rename to be saved")
            await dealt_with(app, pilot)
            assert {k.name: k.description for k in read(KeyQuery()).keys}[name].endswith(
                f"note {round_}"
            )
            burst(app, "\x1b")  # clears the search: every key again
            await dealt_with(app, pilot)
            await until(pilot, lambda: len(main.table.rows) == 3, "every key again")


@tui
async def test_keys_after_mark_all_act_on_the_marks(service, monkeypatch):
    """``a`` ``x`` in one burst revokes the marked keys, not the row under the cursor (the
    marks are read in a worker: ``x`` waits for them)."""
    matching = service.matching_ids

    def slow(*args, **kwargs):
        time.sleep(0.3)  # a busy database: the marks come well after the keys
        return matching(*args, **kwargs)

    monkeypatch.setattr(service, "matching_ids", slow)
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        burst(app, "ax")
        await dealt_with(app, pilot)
        assert len(main.marks) == 3
        assert app.screen.title_text == "Revoke 3 keys"


@tui
async def test_a_burst_in_the_events_filters_keeps_its_order(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("E")
        screen = await modal(app, pilot, EventsScreen)
        for round_ in range(ROUNDS):
            burst(app, f"/create{round_}\tkey{round_}")
            await dealt_with(app, pilot)
            assert value(screen, "#event-search") == f"create{round_}"
            assert value(screen, "#event-key") == f"key{round_}"
            for selector in ("#event-search", "#event-key"):
                screen.query_one(selector, Input).value = ""
            screen.query_one("#events").focus()
            await pilot.pause()


@tui
async def test_a_burst_in_the_settings_keeps_its_order(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("S")
        screen = await modal(app, pilot, SettingsScreen)
        await until(pilot, lambda: screen.shown is not None, "the settings")
        for round_ in range(ROUNDS):
            screen.query_one("#max-expiry", Input).focus()
            await pilot.pause()
            burst(app, f"3{round_}\t{round_ + 5}")  # tab selects the limit, typing replaces it
            await dealt_with(app, pilot)
            assert value(screen, "#max-expiry") == f"3{round_}"
            assert value(screen, "#max-keys") == f"{round_ + 5}"
            screen.query_one("#max-expiry", Input).value = ""


@tui
async def test_keys_typed_before_the_app_is_ready_run_as_commands(service):
    """Started with a service: the user and the first window are read in a worker."""
    for keys, check in (
        ("n", lambda app: isinstance(app.screen, NewKeyModal)),
        ("/abc", lambda app: value(app.screen, "#search") == "abc"),
        ("3", lambda app: app.screen.window.status == "expired"),
    ):
        app = make_app(service)
        async with app.run_test(size=SIZE) as pilot:
            burst(app, keys)  # before the first window of keys is there
            await until(pilot, lambda app=app: app.user is not None, "the user to be read")
            await dealt_with(app, pilot)
            main = app.screen_stack[1]
            assert isinstance(main, MainScreen) and main.window.loaded
            assert check(app), keys
            if keys != "/abc":
                assert value(main, "#search") == "", keys  # never turned into a search


@tui
async def test_keys_typed_while_the_service_opens_wait_for_it(service, sqlite_url, clock):
    """Started from the first window (painted before the service opens): the keys typed in
    that first half second run once the service is there, in order."""
    release = threading.Event()

    def opener() -> KeyService:
        release.wait(10)
        return KeyService.open(sqlite_url, actor="alice", face="tui", clock=clock)

    first = read_first_window(sqlite_url, "alice", clock(), WINDOW)
    app = make_app(None, clock=clock, opener=opener, first=first, actor="alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.window.loaded)
        main = app.screen
        burst(app, "nearly\tkeys")
        await pilot.pause(0.2)
        assert app.screen is main and value(main, "#search") == ""  # held, not typed anywhere
        assert not main.marks
        release.set()
        await until(pilot, lambda: isinstance(app.screen, NewKeyModal), "the form")
        await dealt_with(app, pilot)
        form = app.screen
        assert value(form, "#name") == "early"
        assert value(form, "#description") == "keys"
        assert value(main, "#search") == ""
        # the form still works as ever: its choices came in from the service
        await until(pilot, lambda: len(form.query_one("#expires", Select)._options) > 2)
    app.close_service()
