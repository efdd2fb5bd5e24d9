"""The app's start before the service: the first window read with sqlite3 alone, painted while
the service opens in the background (core/first_window.py, KeytuiApp's opener)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from textual.widgets._footer import FooterKey

from keytui.core.demo import seed_demo
from keytui.core.errors import DatabaseError
from keytui.core.first_window import read_first_window
from keytui.core.service import KeyQuery, KeyService
from keytui.tui.app import make_app
from keytui.tui.screens.main import MainScreen
from keytui.tui.window import WINDOW

from .test_tui import SIZE, tui, until

pytestmark = pytest.mark.clock  # an import probe; statuses as of a clock


@pytest.fixture
def seeded(make_sqlite_service, sqlite_url) -> KeyService:
    service = make_sqlite_service("alice", face="tui")
    seed_demo(service, 150)
    newest = service.list_keys(KeyQuery(limit=1)).keys[0]
    service.revoke_keys([newest.id])  # a revoked key among the first rows
    return service


def test_the_first_window_is_what_the_service_lists(seeded, sqlite_url, clock):
    for later in (timedelta(0), timedelta(days=200)):  # statuses as of the clock given
        now = clock() + later
        seeded.clock = lambda now=now: now
        first = read_first_window(sqlite_url, "alice", now, WINDOW)
        assert first is not None
        assert first.page == seeded.list_keys(KeyQuery(limit=WINDOW))
        assert first.user == seeded.whoami()
        assert first.path == seeded.db.display
    small = read_first_window(sqlite_url, "alice", now, 500)
    assert small.page == seeded.list_keys(KeyQuery(limit=500)) and not small.page.has_more


def test_only_the_service_can_say_otherwise(seeded, sqlite_url, clock, tmp_path):
    now = clock()
    assert read_first_window(sqlite_url, "mallory", now, WINDOW) is None  # not a user
    assert read_first_window(str(tmp_path / "none.db"), "alice", now, WINDOW) is None
    assert not (tmp_path / "none.db").exists()  # it reads, never creates
    assert read_first_window("postgresql://u@h/db", "alice", now, WINDOW) is None
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert read_first_window(str(garbage), "alice", now, WINDOW) is None
    with sqlite3.connect(sqlite_url) as connection:  # an older schema: the service upgrades it
        connection.execute("UPDATE alembic_version SET version_num = '0002'")
    assert read_first_window(sqlite_url, "alice", now, WINDOW) is None


def test_the_app_start_imports_no_sqlalchemy_and_no_argon2():
    probe = (
        "import json, sys\n"
        "from keytui.tui.run import run_app\n"
        "import keytui.cli, keytui.tui.app, keytui.tui.screens.main\n"
        "import keytui.core.first_window\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "                 if m.split('.')[0] in ('sqlalchemy', 'argon2', 'alembic'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []


def footer_text(screen: MainScreen) -> str:
    return " ".join(str(key.description) for key in screen.query(FooterKey))


@tui
async def test_the_first_window_paints_before_the_service_opens(seeded, sqlite_url, clock):
    release = threading.Event()
    opened: list[KeyService] = []

    def opener() -> KeyService:
        release.wait(10)
        service = KeyService.open(sqlite_url, actor="alice", face="tui", clock=clock)
        opened.append(service)
        return service

    first = read_first_window(sqlite_url, "alice", clock(), WINDOW)
    app = make_app(None, clock=clock, opener=opener, first=first, actor="alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.window.loaded)
        screen = app.screen
        assert not opened and not release.is_set()  # painted with no service at all
        assert [key.id for key in screen.table.keys] == [key.id for key in first.page.keys]
        assert screen.window.counts is None
        assert app.may("revoke") is True  # alice is an admin...
        # ...but what needs the service is greyed until it is there: the event loop never waits
        assert screen.check_action("revoke", ()) is None
        assert screen.check_action("events", ()) is None
        await pilot.press("x", "E")
        await pilot.pause(0.1)
        assert app.screen is screen
        assert screen.check_action("toggle_mark", ()) is True  # marking needs no service
        release.set()
        await until(pilot, lambda: screen.window.counts is not None, "the counts, once it opened")
        assert screen.window.counts == seeded.counts() and opened
        # the footer, mounted just after the first paint, shows the screen's keys
        await until(pilot, lambda: "Revoke" in footer_text(screen), "the footer's keys")
        assert "Events" in footer_text(screen) and "Help" in footer_text(screen)
        assert screen.check_action("events", ()) is True
        await pilot.press("E")  # the service is there: the audit log opens as ever
        await until(pilot, lambda: app.screen is not screen, "the events screen")
    app.close_service()
    app.raise_open_error()  # nothing to raise


@tui
async def test_a_failed_background_open_ends_the_app_with_its_reason(seeded, sqlite_url, clock):
    def opener() -> KeyService:
        raise DatabaseError("cannot open database x: disk I/O error")

    first = read_first_window(sqlite_url, "alice", clock(), WINDOW)
    app = make_app(None, clock=clock, opener=opener, first=first, actor="alice")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.return_code == 1, "the app to end")
    assert app.return_code == 1
    with pytest.raises(DatabaseError, match="disk I/O error"):
        app.raise_open_error()


def test_times_are_read_as_sqlite_holds_them():
    from datetime import UTC, datetime

    from keytui.core.clock import sqlite_time

    noon = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert sqlite_time("2026-11-22 12:00:00.000000") == noon  # as SQLAlchemy writes them
    assert sqlite_time("2026-11-22 12:00:00.250000") == noon.replace(microsecond=250_000)
    assert sqlite_time("2026-11-22 12:00:00") == noon
    assert sqlite_time("2026-11-22T14:00:00+02:00") == noon  # written elsewhere, with an offset
    assert sqlite_time("2026-11-22 12:00:00Z") == noon
    assert sqlite_time("2026-11-22T12:00:00.1+0200").hour == 10
    assert sqlite_time("2026-11-22") == noon.replace(hour=0)
    assert all(sqlite_time(v).tzinfo is not None for v in ("2026-11-22", "2026-11-22 12:00:00"))
