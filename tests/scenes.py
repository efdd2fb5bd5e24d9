"""The pictures of keytui: one list of scenes for the snapshot tests and scripts/screenshots.py.

Each scene builds the app with make_app() on the fixed fixture database (frozen clock, seeded
keys, fixed IDs) and drives it with Pilot to the state it shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import Input

from keytui.core import keyformat
from keytui.core.service import IssuedKey
from keytui.tui.app import KeytuiApp, make_app

from .fixture_db import fixture_service


async def settle(pilot) -> None:
    """Wait until database workers are done and the screen has caught up; then stop the text
    cursors blinking, so a picture taken more than half a second after the last key (a loaded
    machine) still shows the cursor, as one taken at once does."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # the cursor stays shown on the focused field
    await pilot.pause()


async def loaded(pilot) -> None:
    await settle(pilot)


async def search(pilot) -> None:
    await settle(pilot)
    await pilot.press("slash", *"billing")
    await pilot.pause(0.3)
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def bulk_revoke(pilot) -> None:
    await settle(pilot)
    await pilot.press("space", "space", "space")
    await settle(pilot)
    # mark a revoked key too, so the dialog lists what it skips
    table = pilot.app.screen.table
    revoked = next(k for k in table.keys if k.status == "revoked")
    pilot.app.screen._toggle(revoked.id)
    await pilot.press("x")
    await settle(pilot)


def pressing(*keys: str) -> Callable[..., Awaitable[None]]:
    """A scene that settles, presses ``keys`` and settles again (a dialog or a screen open)."""

    async def run(pilot) -> None:
        await settle(pilot)
        await pilot.press(*keys)
        await settle(pilot)

    return run


async def new_key(pilot) -> None:
    await settle(pilot)
    await pilot.press("n")
    await settle(pilot)
    await pilot.press(*"billing worker (prod)")
    await settle(pilot)


async def new_key_error(pilot) -> None:
    await new_key(pilot)
    for _ in range(len("billing worker (prod)")):
        await pilot.press("backspace")
    await pilot.press("ctrl+s")
    await settle(pilot)


EXAMPLE_SECRET_BODY = f"{keyformat.PREFIX}deploy0001_" + "EXAMPLEsecretNOTaREALkey00000000"
EXAMPLE_SECRET = EXAMPLE_SECRET_BODY + keyformat.checksum(EXAMPLE_SECRET_BODY)


async def reveal(pilot) -> None:
    """The reveal modal, showing an example secret that no key has (a real one must never be
    in a picture)."""
    await settle(pilot)
    from keytui.tui.screens.reveal import RevealModal

    key = pilot.app.service.get_key("deploy0001")
    await pilot.app.push_screen(RevealModal(IssuedKey(key, EXAMPLE_SECRET)))
    await settle(pilot)


async def reveal_copied(pilot) -> None:
    await reveal(pilot)
    await pilot.press("c")
    await settle(pilot)


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
    Scene("replace", (120, 36), pressing("r")),
    Scene("delete", (120, 36), pressing("down", "d")),
    Scene("new_key", (120, 36), new_key),
    Scene("new_key_error", (120, 36), new_key_error),
    Scene("reveal", (120, 36), reveal),
    Scene("reveal_copied", (80, 24), reveal_copied),
    Scene("details", (120, 36), pressing("enter")),
    Scene("events", (120, 36), pressing("E")),
    Scene("settings", (120, 36), pressing("S")),
    Scene("keys_off", (120, 36), keys_off),
    Scene("help", (120, 36), pressing("question_mark")),
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
