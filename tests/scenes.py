"""The pictures of keytui: one list of scenes for the snapshot tests and scripts/screenshots.py.

Each scene builds the app with make_app() on the fixed fixture database (frozen clock, seeded
keys, fixed IDs) and drives it with Pilot to the state it shows.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Select

from keytui.core import keyformat
from keytui.core.service import IssuedKey
from keytui.tui.app import KeytuiApp, make_app
from keytui.tui.screens.confirm import ReasonModal
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.events import EventsScreen
from keytui.tui.screens.help import HelpScreen
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.new_key import NewKeyModal
from keytui.tui.screens.reveal import RevealModal
from keytui.tui.screens.settings import SettingsScreen
from keytui.tui.widgets.field_error import FieldError

from .fixture_db import fixture_service


async def settle(pilot, timeout: float = 60.0) -> None:
    """Wait until no database worker is pending or running and the screen has caught up with
    their results (a worker's result may start another worker: the counts follow the first
    window). A worker just made is pending, not running, until its thread starts: on a loaded
    machine a picture taken then showed rows added after it was judged settled, unsized.
    Fails after a generous ``timeout`` rather than taking a picture of a screen not settled."""

    def busy() -> bool:
        return any(not worker.is_finished for worker in pilot.app.workers)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steady_cursors(pilot)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not busy():
            await pilot.pause()
            if not busy() and tables_sized(pilot):
                steady_cursors(pilot)
                return
    raise AssertionError("the screen did not settle: a worker still runs or a table is unsized")


def tables_sized(pilot) -> bool:
    """Every table on screen has measured its rows: a DataTable sizes its columns to new rows
    when it is next idle, and on a loaded machine a picture taken before then shows them
    squeezed into the headers' widths (Textual keeps this state private)."""
    return not any(
        table._require_update_dimensions or table._updated_cells
        for table in pilot.app.screen.query(DataTable)
    )


def steady_cursors(pilot) -> None:
    """Cursor blink off: a text cursor shows steadily, whenever the picture is taken (it blinked
    every 0.5 s, so a picture taken later on a loaded machine could catch it hidden)."""
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False


async def until(pilot, condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Wait for the state a picture shows, never for a time: on a loaded machine a key may be
    handled long after it was sent. Then settle. Fails after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)
    await settle(pilot)


async def loaded(pilot) -> None:
    """The main screen with its first window of keys and the header's counts."""

    def ready() -> bool:
        screen = pilot.app.screen
        return (
            isinstance(screen, MainScreen)
            and screen.window.loaded
            and screen.window.counts is not None
        )

    await until(pilot, ready, "the main screen to load")


async def search(pilot) -> None:
    await loaded(pilot)
    await pilot.press("slash", *"billing")
    screen = pilot.app.screen

    def filtered() -> bool:
        keys = screen.table.keys
        return (
            screen.window.search == "billing"
            and bool(keys)
            and all("billing" in f"{k.name} {k.id} {k.owner}".lower() for k in keys)
        )

    await until(pilot, filtered, "the search to filter the table")
    await pilot.press("enter")
    await until(pilot, lambda: pilot.app.focused is screen.table, "the table to take the focus")


async def bulk_revoke(pilot) -> None:
    await loaded(pilot)
    screen = pilot.app.screen
    await pilot.press("space", "space", "space")
    await until(pilot, lambda: len(screen.marks) == 3, "three marks")
    # mark a revoked key too, so the dialog lists what it skips
    revoked = next(k for k in screen.table.keys if k.status == "revoked")
    screen._toggle(revoked.id)
    await pilot.press("x")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReasonModal), "the dialog")


REASON = "offboarding #123"


async def bulk_revoke_all(pilot) -> None:
    """Every key marked (a), the revoke dialog at 80x24: the list by owner, the warning that
    these are all the active keys, the skipped ones, and a reason typed in its box."""
    await loaded(pilot)
    screen = pilot.app.screen
    await pilot.press("a")
    every = pilot.app.service.count_keys()
    await until(pilot, lambda: len(screen.marks) == every, "every key marked")
    await pilot.press("x")
    await until(pilot, lambda: isinstance(pilot.app.screen, ReasonModal), "the dialog")
    await pilot.press("r", *REASON)
    box = pilot.app.screen.query_one("#reason", Input)
    await until(pilot, lambda: box.value == REASON, "the reason to be typed")


def pressing(*keys: str, shows: type) -> Callable[..., Awaitable[None]]:
    """A scene that loads, presses ``keys`` and waits for the screen ``shows`` (and its data)."""

    async def run(pilot) -> None:
        await loaded(pilot)
        await pilot.press(*keys)
        await until(pilot, lambda: isinstance(pilot.app.screen, shows), shows.__name__)

    return run


async def too_small_shown(pilot) -> None:
    """Below 80x24 the too-small screen covers the main one (which loads behind it)."""
    from keytui.tui.screens.too_small import TooSmallScreen

    await until(pilot, lambda: isinstance(pilot.app.screen, TooSmallScreen), "TooSmallScreen")


NEW_NAME = "billing worker (prod)"


def name_input(pilot) -> Input:
    return pilot.app.screen.query_one("#name", Input)


async def new_key(pilot) -> None:
    await pressing("n", shows=NewKeyModal)(pilot)
    await pilot.press(*NEW_NAME)
    await until(pilot, lambda: name_input(pilot).value == NEW_NAME, "the name to be typed")


async def new_key_expiry(pilot) -> None:
    """The expiry's list open: inside the dialog's border (it was drawn over it)."""
    await new_key(pilot)
    select = pilot.app.screen.query_one("#expires", Select)
    await until(pilot, lambda: select.value == "90d", "the expiry choices")
    select.focus()
    await pilot.press("enter")
    await until(pilot, lambda: select.expanded, "the expiry list to open")


async def new_key_error(pilot) -> None:
    await new_key(pilot)
    for _ in range(len(NEW_NAME)):
        await pilot.press("backspace")
    await until(pilot, lambda: name_input(pilot).value == "", "the name to be erased")
    await pilot.press("ctrl+s")
    error = pilot.app.screen.query_one("#name-error", FieldError)
    await until(pilot, lambda: error.has_class("-shown"), "the error beside the name")


EXAMPLE_SECRET_BODY = f"{keyformat.PREFIX}deploy0001_" + "EXAMPLEsecretNOTaREALkey00000000"
EXAMPLE_SECRET = EXAMPLE_SECRET_BODY + keyformat.checksum(EXAMPLE_SECRET_BODY)


async def reveal(pilot) -> None:
    """The reveal modal, showing an example secret that no key has (a real one must never be
    in a picture)."""
    await loaded(pilot)
    key = pilot.app.service.get_key("deploy0001")
    await pilot.app.push_screen(RevealModal(IssuedKey(key, EXAMPLE_SECRET)))
    await until(pilot, lambda: isinstance(pilot.app.screen, RevealModal), "the reveal modal")


async def reveal_copied(pilot) -> None:
    await reveal(pilot)
    await pilot.press("c")
    button = pilot.app.screen.query_one("#copy", Button)
    await until(pilot, lambda: str(button.label) == "Copied!", "the copy to be confirmed")


async def keys_off(pilot) -> None:
    """Settings: keys switched off, and the question before it is saved."""
    await settle(pilot)
    await pilot.press("S")
    await settle(pilot)
    pilot.app.screen.query_one("#enabled").focus()
    await pilot.press("space", "ctrl+s")
    await settle(pilot)


@dataclass(frozen=True)
class Scene:
    name: str
    size: tuple[int, int]
    run_before: Callable[..., Awaitable[None]]
    keys: int = 60
    read_only: bool = False


SCENES = (
    Scene("main", (120, 36), loaded),
    Scene("main_80x24", (80, 24), loaded),
    Scene("empty", (120, 36), loaded, keys=0),
    Scene("search", (120, 36), search),
    Scene("bulk_revoke", (120, 36), bulk_revoke),
    Scene("bulk_revoke_80x24", (80, 24), bulk_revoke_all),
    Scene("replace", (120, 36), pressing("r", shows=ReasonModal)),
    Scene("delete", (120, 36), pressing("down", "d", shows=ReasonModal)),
    Scene("new_key", (120, 36), new_key),
    Scene("new_key_error", (120, 36), new_key_error),
    Scene("new_key_expiry_80x24", (80, 24), new_key_expiry),
    Scene("reveal", (120, 36), reveal),
    Scene("reveal_copied", (80, 24), reveal_copied),
    Scene("details", (120, 36), pressing("enter", shows=KeyDetailsScreen)),
    Scene("events", (120, 36), pressing("E", shows=EventsScreen)),
    Scene("settings", (120, 36), pressing("S", shows=SettingsScreen)),
    Scene("keys_off", (120, 36), keys_off),
    Scene("help", (120, 36), pressing("question_mark", shows=HelpScreen)),
    Scene("help_80x24_scrolled", (80, 24), pressing("question_mark", "pagedown", shows=HelpScreen)),
    Scene("settings_80x24", (80, 24), pressing("S", shows=SettingsScreen)),
    Scene("too_small_60x20", (60, 20), too_small_shown),
    Scene("read_only", (120, 36), loaded, read_only=True),
)


def scene_app(scene: Scene, directory: Path) -> KeytuiApp:
    """The app for ``scene`` on a fixture database at a fixed path (the header shows it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{scene.name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    service = fixture_service(str(path), keys=scene.keys)
    return make_app(service, read_only=scene.read_only)
