"""The right database, or a clear word (issue 11): an explicit path in a missing directory is
refused and nothing is made; a new database is announced once, in the CLI and in the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keytui.core.service import KeyService
from keytui.tui.app import make_app

from .test_cli import ME, run
from .test_cli import env as env  # noqa: F401 - a fixture

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

NOTICE = "created a new keytui database at {}; {} is its admin"


def test_an_explicit_path_in_a_missing_directory_is_refused_and_nothing_is_made(env, tmp_path):
    target = tmp_path / "mistyped" / "dir" / "keys.db"
    result = run(env, "--db", str(target), "keys", "list", code=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target.parent) in lines[0], result.stderr
    assert not (tmp_path / "mistyped").exists()
    assert not (tmp_path / "data").exists()  # nor the default database instead
    # the same through $KEYTUI_DATABASE_URL, and for the app itself
    result = run({**env, "KEYTUI_DATABASE_URL": str(target)}, "users", "list", code=2)
    assert str(target.parent) in result.stderr
    run(env, "--db", str(target), code=2)
    assert not (tmp_path / "mistyped").exists()


def test_a_new_database_says_so_once_with_its_path_and_admin(env, tmp_path):
    target = tmp_path / "keys.db"
    first = run(env, "--db", str(target), "keys", "list")
    assert first.stderr.count(NOTICE.format(target, ME)) == 1, first.stderr
    assert "no keys match" in first.stderr  # the list says so on stderr, stdout stays empty
    again = run(env, "--db", str(target), "keys", "list")
    assert "created" not in again.stderr


def test_the_default_database_is_made_in_its_directory_and_announced(env, tmp_path):
    result = run(env, "users", "list")
    made = list((tmp_path / "data").rglob("keytui.db"))
    assert len(made) == 1
    assert NOTICE.format(made[0], ME) in result.stderr


def test_the_app_announces_a_new_database_and_the_demo_does_not(tmp_path):
    async def notices(service: KeyService, **options: object) -> list[str]:
        app = make_app(service, **options)
        async with app.run_test() as pilot:
            for _ in range(50):
                if app.service_ready and app.screen.is_mounted:
                    break
                await pilot.pause(0.05)
            await pilot.pause()
            return [n.message for n in app._notifications]

    target = tmp_path / "new.db"
    with KeyService.open(str(target), face="tui") as service:
        said = asyncio.run(notices(service, announce_created=True))  # as run_app starts it
    assert any(NOTICE.format(target, ME) in message for message in said), said
    with KeyService.open(str(target), face="tui") as service:  # not new any more
        again = asyncio.run(notices(service, announce_created=True))
        assert not any("created" in m for m in again)
    with KeyService.open(str(tmp_path / "demo.db"), face="tui") as service:
        assert service.created
        said = asyncio.run(notices(service))  # the demo's (run_app_on) default
        assert not any("created" in message for message in said)


def test_nothing_is_said_for_an_existing_path(tmp_path):
    target = tmp_path / "x.db"
    KeyService.open(str(target)).close()
    with KeyService.open(str(target)) as service:
        assert service.created_notice() is None
    assert Path(target).exists()


def test_keytui_in_a_real_terminal_announces_the_database_it_made(tmux_available, tmp_path, env):
    from .test_e2e_tmux import KEYTUI, Terminal

    target = tmp_path / "k.db"
    command = ["env", f"XDG_DATA_HOME={env['XDG_DATA_HOME']}", str(KEYTUI), "--db", str(target)]
    terminal = Terminal(command, size=(100, 30))
    try:
        terminal.wait(r"created a new keytui", timeout=30)
        terminal.keys("q")
        terminal.wait(r"\[program exited\]", timeout=15)
    finally:
        terminal.stop()
