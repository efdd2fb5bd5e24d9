"""Faults (issue 5): a SIGKILL mid bulk revoke, a database that is missing, read-only, corrupt or
full, and an upgrade from the first released schema. Each leaves all or nothing written and, at
the command line, one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy import func, select

from keytui.cli import main
from keytui.core import db as dbmod
from keytui.core.db import current_revision, open_database, upgrade
from keytui.core.demo import seed_demo
from keytui.core.errors import DatabaseError
from keytui.core.hashing import make_hasher
from keytui.core.identity import current_login
from keytui.core.models import Event, Key, UTCDateTime
from keytui.core.service import KeyService

pytestmark = pytest.mark.clock  # the SIGKILL child, the keytui command on broken databases

FAST_HASHER = make_hasher(time_cost=1, memory_cost=1024)  # as conftest's
KEYTUI = str(Path(sys.executable).with_name("keytui"))

# ---------------------------------------------------------------------------------------------
# SIGKILL in the middle of a bulk revoke of 10,000 keys

REVOKER = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from sqlalchemy import event
    from keytui.core import audit
    from keytui.core.clock import FrozenClock
    from keytui.core.db import open_database
    from keytui.core.hashing import make_hasher
    from keytui.core.service import KeyService

    url, ids_file, marker, stage, now = sys.argv[1:6]
    clock = FrozenClock(datetime.fromisoformat(now))  # the test's clock, not this machine's
    service = KeyService(open_database(url), actor="alice", hasher=make_hasher(1, 1024),
                         clock=clock)
    ids = open(ids_file).read().split()
    updates = []
    postgres = service.db.engine.dialect.name == "postgresql"

    def hold_here():
        open(marker, "w").close()  # mid-transaction: tell the test to kill us now
        time.sleep(120)

    @event.listens_for(service.db.engine, "after_cursor_execute")
    def hold(conn, cursor, statement, params, context, executemany):
        head = statement.lstrip().upper()
        if head.startswith("UPDATE KEYS"):
            updates.append(1)
        # PostgreSQL revokes in one UPDATE (SQLite: a chunk each): after the first there.
        if (stage == "update" and head.startswith("UPDATE KEYS")
                and len(updates) == (1 if postgres else 3)):
            hold_here()
        if stage == "events" and head.startswith("INSERT INTO EVENTS"):
            hold_here()

    # PostgreSQL writes the events through COPY, past the statement hook: hold once they are in.
    copy_events = audit._copy_events

    def copy_then_hold(session, rows):
        copy_events(session, rows)
        if stage == "events":
            hold_here()

    audit._copy_events = copy_then_hold

    plan = service.revoke_keys(ids)
    print(len(plan.revoke))
""")


def revoked_ids(service) -> set[str]:
    with service.db.read() as session:
        return set(session.scalars(select(Key.key_id).where(Key.revoked_at.is_not(None))))


def event_count(service) -> int:
    with service.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Event)))


def integrity_ok(path: str) -> None:
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        connection.close()


# Every run prints each phase's time in its summary ("figures"). PostgreSQL's full revoke after
# two killed ones took 28 s here before the revoke went one statement per phase (it had 3,000
# keys then); now about 4 s, the child's start-up included (SQLite: about 2 s).
SIGKILL_KEYS = {"sqlite": 10_000, "postgresql": 10_000}


def test_sigkill_mid_bulk_revoke_is_all_or_nothing(admin, db_url, tmp_path, clock, figure):
    """Killed once after some UPDATEs, once while writing the events: nothing revoked. Then
    left to finish: all revoked. SQLite's integrity check holds after each kill. The child
    revokes on the test's frozen clock, so "active" means the same to both."""
    dialect = admin.db.engine.dialect.name
    keys = SIGKILL_KEYS[dialect]
    seed_demo(admin, keys)
    before = revoked_ids(admin)
    events_before = event_count(admin)
    active = admin.counts().active
    with admin.db.read() as session:
        targets = list(session.scalars(select(Key.key_id).where(Key.revoked_at.is_(None))))
    assert len(targets) > 0.8 * keys and active > 0.4 * keys
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(targets))
    script = tmp_path / "revoker.py"
    script.write_text(REVOKER)
    for stage in ("update", "events", None):
        marker = tmp_path / f"marker-{stage}"
        started = time.perf_counter()
        child = subprocess.Popen(
            [
                sys.executable,
                str(script),
                db_url,
                str(ids_file),
                str(marker),
                stage or "none",
                clock().isoformat(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if stage is None:
            out, err = child.communicate(timeout=300)
            assert child.returncode == 0, err
            done = int(out)
        else:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert child.poll() is None, child.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.01)
            child.send_signal(signal.SIGKILL)
            child.communicate(timeout=30)
            assert child.returncode == -signal.SIGKILL
            done = 0
        figure(
            f"{dialect}: bulk revoke of {len(targets):,} keys ({active:,} active), "
            f"{'left to finish' if stage is None else f'killed at {stage}'}: "
            f"{time.perf_counter() - started:.2f} s"
        )
        after = revoked_ids(admin)
        if stage is None:  # all: every key active by the shared clock, the expired skipped
            assert done == active
            assert len(after) == len(before) + done
        else:  # nothing
            assert after == before
        assert event_count(admin) == events_before + done
        if admin.db.is_sqlite:
            integrity_ok(db_url)
    assert admin.verify_event_chain().ok


# ---------------------------------------------------------------------------------------------
# The database file missing, read-only, corrupt or full


def run_cli(*args: str, user: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    command = [KEYTUI, *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, **kwargs
    )


def assert_one_clear_line(result, *words: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if "warning:" not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keytui: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_database_in_a_missing_directory(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    target = blocker / "sub" / "keytui.db"
    result = run_cli("keys", "list", "--db", str(target))
    assert_one_clear_line(result, "no directory")
    assert blocker.read_text() == "a file where a directory should be"
    with pytest.raises(DatabaseError):
        open_database(target)


def test_corrupt_database_file(tmp_path):
    path = tmp_path / "keytui.db"
    garbage = os.urandom(64 * 1024)
    path.write_bytes(garbage)
    os.chmod(path, 0o600)
    for args in (["keys", "list"], ["keys", "create", "--name", "x"]):
        result = run_cli(*args, "--db", str(path))
        assert_one_clear_line(result, "cannot open database", "not a database")
    assert path.read_bytes() == garbage  # nothing half-written


def test_truncated_database_file(tmp_path):
    path = tmp_path / "keytui.db"
    # the machine's clock, as the keytui command below reads it
    service = KeyService(open_database(path), actor=current_login(), hasher=FAST_HASHER)
    service.bootstrap()
    seed_demo(service, 500)
    service.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = run_cli("events", "verify", "--db", str(path))
    assert_one_clear_line(result)  # SQLite finds the damage on open or on the first read


@pytest.fixture
def shared_dir():
    """A directory another user can reach (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="keytui-ro-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_read_only_database(shared_dir):
    path = shared_dir / "keytui.db"
    # the machine's clock, as the keytui command below reads it
    service = KeyService(open_database(path), actor=current_login(), hasher=FAST_HASHER)
    service.bootstrap()
    service.create_key("before")
    if os.geteuid() == 0:  # root ignores file modes: act as "nobody", for whom the file is r/o
        import pwd

        user = pwd.getpwnam("nobody")
        service.add_user(user.pw_name, "admin")
        uid = user.pw_uid
        os.chmod(path, 0o644)
    else:
        uid = None
        os.chmod(path, 0o400)
        os.chmod(shared_dir, 0o555)
    service.close()
    data = path.read_bytes()
    try:
        for args in (["keys", "create", "--name", "after"], ["settings", "set", "--disable"]):
            result = run_cli(*args, "--db", str(path), user=uid)
            line = assert_one_clear_line(result)
            assert "readonly" in line or "read-only" in line or "unable to open" in line, line
    finally:
        os.chmod(shared_dir, 0o755)
    assert path.read_bytes() == data
    assert not (shared_dir / "keytui.db-wal").exists() or uid is None


def _fill_disk_hook(monkeypatch, spare_pages: int = 0) -> None:
    """Simulate a full disk: every connection may grow the file by ``spare_pages`` at most."""
    original = dbmod._install_sqlite_hooks

    def install(engine):
        original(engine)

        @sa.event.listens_for(engine, "connect")
        def _limit(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages + spare_pages}")
            cursor.close()

    monkeypatch.setattr(dbmod, "_install_sqlite_hooks", install)


def test_full_disk_service_writes_all_or_nothing(sqlite_url, clock, monkeypatch):
    service = KeyService(open_database(sqlite_url), actor="alice", hasher=FAST_HASHER, clock=clock)
    service.bootstrap()
    service.close()
    _fill_disk_hook(monkeypatch)
    service = KeyService(open_database(sqlite_url), actor="alice", hasher=FAST_HASHER, clock=clock)
    made = 0
    with pytest.raises(sa.exc.OperationalError, match="database or disk is full"):
        for _ in range(2000):
            service.create_key(f"filler {made} " + "x" * 80, description="y" * 500)
            made += 1
    with pytest.raises(sa.exc.OperationalError, match="database or disk is full"):
        service.create_key("one more " + "x" * 80, description="z" * 500)
    assert service.count_keys() == made
    assert len(service.list_events(action="key.create", limit=10_000)) == made
    assert service.verify_event_chain().ok
    service.close()
    integrity_ok(sqlite_url)


def test_full_disk_cli_says_so_in_one_line(sqlite_url, monkeypatch):
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "list", "--db", sqlite_url]).exit_code == 0
    _fill_disk_hook(monkeypatch)
    made = 0
    for _ in range(200):
        result = runner.invoke(
            main,
            [
                "keys",
                "create",
                "--db",
                sqlite_url,
                "--name",
                f"filler {made} " + "x" * 80,
                "--description",
                "y" * 500,
            ],
        )
        if result.exit_code:
            break
        made += 1
    assert result.exit_code == 1
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert result.stdout == ""  # no secret printed for a key that was not made
    assert result.stderr.strip() == (
        "keytui: database error: database or disk is full "
        "(free some disk space; nothing was changed)"
    )
    monkeypatch.undo()
    service = KeyService.open(sqlite_url, hasher=FAST_HASHER)
    assert service.count_keys() == made
    assert service.verify_event_chain().ok
    service.close()


def test_locked_database_gives_a_clear_message(sqlite_url, monkeypatch):
    """A writer that holds the lock for longer than the busy timeout: one line, exit 1."""
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "list", "--db", sqlite_url]).exit_code == 0
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    blocker = sqlite3.connect(sqlite_url, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        result = runner.invoke(main, ["keys", "create", "--db", sqlite_url, "--name", "late"])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert result.exit_code == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("keytui: database error: database is locked")
    assert "try again" in line


# ---------------------------------------------------------------------------------------------
# Upgrading a database made by the first released schema


def test_upgrade_from_first_schema_keeps_everything(db_url):
    database = open_database(db_url, migrate=False)
    upgrade(database, "0001")
    assert current_revision(database) == "0001"
    at = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    meta = sa.MetaData()
    keys = sa.Table("keys", meta, autoload_with=database.engine)
    users = sa.Table("users", meta, autoload_with=database.engine)
    roles = sa.Table("key_roles", meta, autoload_with=database.engine)
    settings = sa.Table("settings", meta, autoload_with=database.engine)
    events = sa.table(
        "events",
        sa.column("at", UTCDateTime()),
        sa.column("actor"),
        sa.column("action"),
        sa.column("key_id"),
        sa.column("face"),
        sa.column("details"),
    )
    stamp = at.replace(tzinfo=None) if database.is_sqlite else at
    with database.engine.begin() as connection:
        connection.execute(
            users.insert(),
            [
                {"login": "alice", "role": "admin", "created_at": stamp},
                {"login": "bob", "role": "developer", "created_at": stamp},
            ],
        )
        connection.execute(roles.insert(), [{"name": "deploy", "created_at": stamp}])
        connection.execute(
            settings.update().values(keys_enabled=False, max_expiry_days=90, max_keys_per_user=7)
        )
        connection.execute(
            keys.insert(),
            [
                {
                    "key_id": f"{index:010d}",
                    "name": f"old key {index} [b]",
                    "description": "kept",
                    "owner": "bob",
                    "role": "deploy",
                    "secret_hash": "$argon2id$v=19$fake",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "expires_at": None,
                    "revoked_at": stamp if index % 3 == 0 else None,
                    "revoked_by": "alice" if index % 3 == 0 else None,
                    "last_used_at": None,
                    "use_count": index,
                    "allowed_hosts": '["10.0.0.0/8"]',
                }
                for index in range(12)
            ],
        )
        connection.execute(
            events.insert(),
            [
                {
                    "at": at.replace(microsecond=index),
                    "actor": "alice",
                    "action": "key.create",
                    "key_id": f"{index:010d}",
                    "face": "cli",
                    "details": f'{{"name":"old key {index} \\u00e9"}}',
                }
                for index in range(12)
            ],
        )

    def snapshot():
        out = {}
        with database.engine.connect() as connection:
            for table in ("keys", "users", "key_roles", "settings", "events"):
                rows = connection.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
                out[table] = sorted(
                    tuple(
                        sorted(
                            (k, str(v))
                            for k, v in row.items()
                            # columns added later: 0002, 0004, 0005
                            if k not in ("prev_hash", "hash", "developers", "require_reason")
                        )
                    )
                    for row in rows
                )
        return out

    before = snapshot()
    upgrade(database)
    assert current_revision(database) == dbmod.HEAD_REVISION
    assert snapshot() == before
    service = KeyService(database, actor="alice", hasher=FAST_HASHER)
    assert service.get_settings().require_reason is False  # 0005: off after an upgrade
    assert service.list_role_grants() == [
        ("deploy", False),
        ("read-only", True),
        ("read-write", False),
    ]
    status = service.verify_event_chain()
    assert status.ok and status.count == 12
    assert service.get_settings().max_keys_per_user == 7
    assert service.count_keys() == 12
    service.update_settings(keys_enabled=True)
    status = service.verify_event_chain()
    assert status.ok and status.count == 13
    service.close()
