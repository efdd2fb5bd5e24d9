"""Shared fixtures: a frozen clock, and services on SQLite and on a real PostgreSQL.

PostgreSQL comes from $KEYTUI_TEST_POSTGRES_URL (a server URL whose user may create databases).
Each test run makes its own database and drops it at the end. Without the variable, PostgreSQL
tests skip, unless $KEYTUI_REQUIRE_POSTGRES=1 (as in .ci/run), where a skip becomes a failure.

A test that starts a process carries the ``clock`` marker (or fails at once): it must hand the
child its clock, data and settings, and .ci/run runs these tests again a year ahead (faketime).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from keytui.core.clock import FrozenClock
from keytui.core.db import open_database
from keytui.core.hashing import make_hasher
from keytui.core.service import KeyService

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PG_ENV = "KEYTUI_TEST_POSTGRES_URL"
# Tests need argon2id, not its cost: a cheaper hasher keeps the suite fast. Hashing tests that
# care about the real parameters build their own.
FAST_HASHER = make_hasher(time_cost=1, memory_cost=1024)
# libfaketime (the time-shifted CI run) opens a shared-memory file in every child it starts, and
# that file takes the lowest free descriptor: a child started with stdin or stdout closed finds
# it open on the faketime file. Tests of closed descriptors run on the real clock only.
closes_descriptors = pytest.mark.skipif(
    "faketime" in os.environ.get("LD_PRELOAD", ""),
    reason="under libfaketime a closed descriptor is reopened on faketime's shared memory",
)


@pytest.fixture(autouse=True)
def _processes_need_the_clock_marker(request, monkeypatch) -> None:
    """A test that starts a process without the ``clock`` marker fails when it does: the marker
    says "I give the child my clock, data and settings" and puts it in the time-shifted CI run."""
    if request.node.get_closest_marker("clock") is not None:
        return

    def refuse(*_args, **_kwargs):
        pytest.fail(
            f"{request.node.nodeid} starts a process: mark it @pytest.mark.clock, and give the "
            "child the test's clock, data and settings (see tests/conftest.py)"
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


def _missing_postgres(reason: str):
    if os.environ.get("KEYTUI_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test process, dropped afterwards."""
    server = os.environ.get(PG_ENV)
    if not server:
        _missing_postgres(f"set {PG_ENV} to run PostgreSQL tests")
    url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"keytui_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _missing_postgres(f"cannot create a database on {url.render_as_string()}: {exc}")
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path: Path) -> str:
    """An empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "keytui.db")
    url = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "keytui.db")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


def _services(url: str, clock: FrozenClock) -> Iterator[Callable[..., KeyService]]:
    """A factory of services on one database, all closed at the end of the test."""
    opened: list[KeyService] = []

    def make(actor: str = "alice", face: str = "api", **kwargs) -> KeyService:
        kwargs.setdefault("hasher", FAST_HASHER)
        kwargs.setdefault("clock", clock)
        service = KeyService(open_database(url), actor=actor, face=face, **kwargs)
        service.bootstrap()
        opened.append(service)
        return service

    yield make
    for service in opened:
        service.close()


@pytest.fixture
def make_service(db_url: str, clock: FrozenClock) -> Iterator[Callable[..., KeyService]]:
    """``make_service(actor="alice")``: services on one shared database (SQLite, then
    PostgreSQL); the first actor to open it becomes its admin."""
    yield from _services(db_url, clock)


@pytest.fixture
def make_sqlite_service(sqlite_url: str, clock: FrozenClock) -> Iterator[Callable[..., KeyService]]:
    """The same on SQLite only, for tests of a face rather than of the database."""
    yield from _services(sqlite_url, clock)


@pytest.fixture
def admin(make_service) -> KeyService:
    """alice, admin of a new database."""
    return make_service("alice")


@pytest.fixture
def tmux_available() -> None:
    """Tests that drive keytui in a real terminal: skipped without tmux, except in CI."""
    if shutil.which("tmux") is None:
        if os.environ.get("KEYTUI_REQUIRE_POSTGRES"):  # CI: .ci/run installs tmux
            pytest.fail("tmux is required here (.ci/run installs it)")
        pytest.skip("tmux is not installed")


@pytest.fixture
def figure(record_property) -> Callable[[str], None]:
    """``figure("...")``: a time or size a test measured, printed in the run's summary under
    "figures" (so a slow path stays seen), never asserted: timings belong to bench/."""

    def note(line: str) -> None:
        record_property("figure", line)

    return note


def pytest_terminal_summary(terminalreporter) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "figure"
    ]
    if lines:
        terminalreporter.write_sep("-", "figures")
        for line in lines:
            terminalreporter.write_line(line)


def altered(secret: str) -> str:
    """``secret`` with its last character changed (to another one: 1 in 62 end in x)."""
    return secret[:-1] + ("x" if secret[-1] != "x" else "y")
