"""What is on screen is what is in the database: changes made by another process (the real CLI)
show in the open app without a keypress, the cursor and the marks staying; ctrl+r refreshes by
hand; the info line's total and the header's counts always agree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keytui.core.identity import current_login
from keytui.core.service import KeyService
from keytui.tui.app import KeytuiApp, make_app
from keytui.tui.screens.confirm import ReasonModal
from keytui.tui.screens.details import KeyDetailsScreen
from keytui.tui.screens.main import MainScreen
from keytui.tui.screens.new_key import NewKeyModal
from keytui.tui.screens.reveal import RevealModal
from keytui.tui.widgets.header import HeaderLine
from keytui.tui.widgets.info_line import InfoLine

from .test_tui import SIZE, go_to, modal, plain, screen_text, started, tui, until

pytestmark = pytest.mark.clock  # the real CLI, in its own process (the same database, the
# environment's clock: what it changes is revoked, renamed or created whatever the date)

KEYTUI = Path(sys.executable).parent / "keytui"
DEADLINE = 20.0  # seconds: generous, for a loaded machine; the app hears within ~0.3 s


@pytest.fixture
def service(make_sqlite_service) -> KeyService:
    """alice admin of a SQLite file with a few keys; this OS login an admin too (the CLI)."""
    service = make_sqlite_service("alice", face="tui")
    service.add_user(current_login(), "admin")
    for name in ("billing worker", "search gateway", "mailer batch", "audit reader"):
        service.create_key(name)
    return service


def cli(service: KeyService, *args: str) -> None:
    """The real keytui command line, in its own process, on the same database."""
    path = service.db.sqlite_path
    assert path is not None
    env = {k: v for k, v in os.environ.items() if k != "KEYTUI_DATABASE_URL"}
    env["XDG_DATA_HOME"] = str(path.parent / "data")  # never anyone's default database
    done = subprocess.run(
        [str(KEYTUI), "--db", str(path), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def status_cell(screen: MainScreen, key_id: str) -> str:
    value = screen.table.get_cell(key_id, "status")
    return value.plain if hasattr(value, "plain") else str(value)


def header(screen: MainScreen) -> str:
    return plain(screen.query_one(HeaderLine))


def info(screen: MainScreen) -> str:
    return plain(screen.query_one(InfoLine))


@tui
async def test_a_revoke_from_the_cli_shows_without_a_keypress(service):
    keys = {k.name: k for k in service.list_keys().keys}
    target, marked = keys["search gateway"], keys["audit reader"]
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await until(pilot, lambda: app._watcher is not None, "the change signal", DEADLINE)
        main._toggle(marked.id)
        await go_to(pilot, main, target.id)
        row = main.table.cursor_row
        assert "4 active" in header(main)

        cli(service, "keys", "revoke", target.id, "--yes")
        await until(
            pilot, lambda: status_cell(main, target.id) == "revoked", "the revoke", DEADLINE
        )
        await until(pilot, lambda: "3 active" in header(main), "the header's counts", DEADLINE)
        assert "1 revoked" in header(main)
        assert main.table.current.id == target.id and main.table.cursor_row == row
        assert main.marks == {marked.id}
        assert main.table.get_cell(marked.id, "mark").plain == "[x]"

        # a key created elsewhere comes in on top; the cursor stays on its key
        cli(service, "keys", "create", "--name", "from the cli")
        await until(
            pilot, lambda: "from the cli" in [k.name for k in main.table.keys], "", DEADLINE
        )
        assert main.table.current.id == target.id
        assert "Keys 1–5 of 5" in info(main)


@tui
async def test_an_open_details_screen_follows_the_database(service):
    key = next(k for k in service.list_keys().keys if k.name == "mailer batch")
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await until(pilot, lambda: app._watcher is not None, "the change signal", DEADLINE)
        await go_to(pilot, main, key.id)
        await pilot.press("enter")
        details = await modal(app, pilot, KeyDetailsScreen)
        await until(pilot, lambda: "mailer batch" in screen_text(details))
        cli(service, "keys", "rename", key.id, "mailer nightly", "--description", "moved")
        await until(pilot, lambda: "mailer nightly" in screen_text(details), "the rename", DEADLINE)
        cli(service, "keys", "revoke", key.id, "--yes")
        await until(pilot, lambda: "revoked" in screen_text(details), "the revoke", DEADLINE)


@tui
async def test_ctrl_r_refreshes_by_hand(service, monkeypatch):
    monkeypatch.setattr(KeytuiApp, "_watch_changes", lambda self: None)  # no signal at all
    key = next(k for k in service.list_keys().keys if k.name == "billing worker")
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        await go_to(pilot, main, key.id)
        cli(service, "keys", "revoke", key.id, "--yes")
        time.sleep(0.3)
        await pilot.pause(0.3)
        assert status_cell(main, key.id) == "active"  # nothing heard
        await pilot.press("ctrl+r")
        await until(pilot, lambda: status_cell(main, key.id) == "revoked", "ctrl+r", DEADLINE)
        assert "1 revoked" in header(main) and main.table.current.id == key.id


@tui
async def test_after_create_then_delete_the_info_line_and_header_agree(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        main = await started(app, pilot)
        for round_ in range(3):
            await pilot.press("n")
            await modal(app, pilot, NewKeyModal)
            await pilot.press(*f"brief {round_}", "ctrl+s")
            await modal(app, pilot, RevealModal)
            await pilot.press("escape", "escape")
            await until(pilot, lambda: app.screen is main)
            created = next(k for k in service.list_keys().keys if k.name == f"brief {round_}")
            await until(pilot, lambda c=created: c.id in [k.id for k in main.table.keys])
            await go_to(pilot, main, created.id)
            await pilot.press("d")
            await modal(app, pilot, ReasonModal)
            await pilot.press("y")
            await until(pilot, lambda c=created: c.id not in [k.id for k in main.table.keys])
            total = service.counts().total
            await until(
                pilot,
                lambda t=total: (
                    info(main).startswith(f"Keys 1–{t} of {t}") and f"{t} active" in header(main)
                ),
                "the info line and the header to agree",
                DEADLINE,
            )
            assert main.window.match_count == main.window.counts.total == total


@tui
async def test_the_watcher_stops_when_the_app_ends(service):
    app = make_app(service)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await until(pilot, lambda: app._watcher is not None, "the change signal", DEADLINE)
        watcher = app._watcher
        assert watcher.live
    deadline = time.monotonic() + DEADLINE
    while watcher._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not watcher._thread.is_alive()
