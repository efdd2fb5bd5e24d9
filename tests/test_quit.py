"""``q`` leaves at once (run.py skips Python's teardown) and nothing is lost: the service is
closed first, so SQLite's last connection has checkpointed and removed the write-ahead log."""

from __future__ import annotations

import shlex

import pytest

from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER
from .test_e2e_tmux import KEYTUI, TABLE_FOOTER, Terminal

pytestmark = [pytest.mark.e2e, pytest.mark.clock]  # keytui in tmux, with this environment


def test_q_closes_the_service_before_the_process_ends(tmux_available, tmp_path):
    path = tmp_path / "quit.db"
    with KeyService.open(str(path), actor=current_login(), hasher=FAST_HASHER) as service:
        service.create_key("billing worker (prod)")
    command = f"{shlex.quote(str(KEYTUI))} --db {shlex.quote(str(path))}; echo rc=$?"
    term = Terminal(["sh", "-c", command])
    try:
        term.wait(TABLE_FOOTER)
        term.wait(r"1 active")
        assert (tmp_path / "quit.db-wal").exists()  # open: the log is there
        term.keys("q")
        term.wait(r"rc=0")
    finally:
        term.stop()
    assert not (tmp_path / "quit.db-wal").exists()  # engine disposed: checkpointed, removed
