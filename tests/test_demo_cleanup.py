"""A demo killed with its terminal leaves no throwaway database behind, and a later demo sweeps
what an earlier one could not clean up (SIGKILL, a power cut)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keytui.cli.demo import DEMO_PREFIX, sweep_stale_demos

from .test_e2e_tmux import KEYTUI, TABLE_FOOTER, Terminal

pytestmark = [pytest.mark.e2e, pytest.mark.clock]  # keytui demo in tmux, with this environment


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start_demo(tmp: Path) -> tuple[Terminal, Path]:
    """keytui demo in tmux with its temp directory in ``tmp``; its throwaway directory."""
    term = Terminal(["env", f"TMPDIR={tmp}", str(KEYTUI), "demo", "--keys", "20"])
    term.wait(TABLE_FOOTER)
    (database,) = tmp.glob(f"{DEMO_PREFIX}*/demo.db")
    return term, database.parent


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("how", ["terminal closed", "SIGTERM"])
def test_a_killed_demo_removes_its_database(tmux_available, tmp_path, how):
    term, made = start_demo(tmp_path)
    try:
        if how == "SIGTERM":
            os.kill(int(made.name[len(DEMO_PREFIX) :].split("-")[0]), signal.SIGTERM)
        else:
            term.stop()  # the pane's processes get SIGHUP, as when an SSH session drops
        wait_until(lambda: not made.exists(), f"{made} to be removed")
    finally:
        term.stop()


def test_a_demo_sweeps_the_databases_of_demos_that_are_gone(tmux_available, tmp_path):
    stale = tmp_path / f"{DEMO_PREFIX}{dead_pid()}-x1y2"
    stale.mkdir()
    (stale / "demo.db").write_bytes(b"left behind")
    mine = tmp_path / f"{DEMO_PREFIX}{os.getpid()}-a1b2"  # a live process's: kept
    mine.mkdir()
    other = tmp_path / "keytui-demo-notapid"  # not named as ours: kept
    other.mkdir()
    term, made = start_demo(tmp_path)
    try:
        assert not stale.exists()
        assert mine.exists() and other.exists() and made.exists()
        term.keys("q")
        wait_until(lambda: not made.exists(), f"{made} to be removed after q")
    finally:
        term.stop()
    assert sweep_stale_demos(tmp_path) == [] and mine.exists()
