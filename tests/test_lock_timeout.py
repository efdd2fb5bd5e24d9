"""A lock held by another client bounds the wait (issue 10, PostgreSQL): keytui's sessions set
lock_timeout and idle_in_transaction_session_timeout, and a wait past the bound is one line at
the command line, exit 1, not a hang and not a traceback."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from keytui.core.db import IDLE_IN_TRANSACTION_S, LOCK_TIMEOUT_S
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, reset_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.clock]
KEYTUI = str(Path(sys.executable).with_name("keytui"))


@pytest.fixture
def pg(postgres_url: str) -> str:
    reset_postgres(postgres_url)
    return postgres_url


def test_sessions_bound_lock_waits_and_idle_transactions(pg):
    service = KeyService.open(pg, actor="alice", hasher=FAST_HASHER)
    try:
        with service.db.read() as session:
            assert session.scalar(text("SHOW lock_timeout")) == f"{LOCK_TIMEOUT_S}s"
            idle = session.scalar(text("SHOW idle_in_transaction_session_timeout"))
            assert idle == f"{IDLE_IN_TRANSACTION_S // 60}min"
    finally:
        service.close()


def test_url_options_still_apply(pg):
    url = pg + ("&" if "?" in pg else "?") + "options=-c%20lock_timeout%3D7s"
    service = KeyService.open(url, actor="alice", hasher=FAST_HASHER)
    try:
        with service.db.read() as session:
            assert session.scalar(text("SHOW lock_timeout")) == "7s"  # the URL's own wins
    finally:
        service.close()


def test_a_held_row_lock_is_one_line_from_the_cli(pg):
    me = current_login()
    service = KeyService.open(pg, actor=me, hasher=FAST_HASHER)
    key_id = service.create_key("locked").key.id
    service.close()
    holder = create_engine(pg)
    with holder.connect() as connection:
        connection.execute(text("SELECT 1 FROM keys WHERE key_id = :k FOR UPDATE"), {"k": key_id})
        result = subprocess.run(
            [KEYTUI, "keys", "revoke", key_id, "--yes", "--db", pg],
            capture_output=True,
            text=True,
            timeout=120,  # a hang fails here
            stdin=subprocess.DEVNULL,
        )
        connection.rollback()
    holder.dispose()
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "another keytui holds a lock on the keys table" in lines[0]
    assert "try again" in lines[0]
    service = KeyService.open(pg, actor=me, hasher=FAST_HASHER)
    try:
        assert service.get_key(key_id).status == "active"  # nothing changed
    finally:
        service.close()


def test_the_change_listener_is_idle_outside_a_transaction(pg):
    """idle_in_transaction_session_timeout never ends the LISTEN connection: it sits idle
    outside any transaction (autocommit)."""
    service = KeyService.open(pg, actor="alice", hasher=FAST_HASHER)
    seen = threading.Event()
    watcher = service.watch(lambda _change: seen.set())
    try:
        pid = watcher._connection.driver_connection.info.backend_pid  # its own connection
        probe = create_engine(pg)
        deadline = time.monotonic() + 60
        state = None
        with probe.connect() as connection:
            while time.monotonic() < deadline:
                state = connection.scalar(
                    text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                assert state != "idle in transaction"
                if state == "idle":
                    break
                connection.rollback()
                time.sleep(0.05)
        probe.dispose()
        assert state == "idle"
        service.create_key("a change")
        assert seen.wait(60)
    finally:
        watcher.stop()
        service.close()
