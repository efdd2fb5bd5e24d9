"""``keytui demo``: the app on a database seeded with realistic demo keys."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .common import State, pass_state

# The throwaway database's directory: the prefix and the PID of the demo that owns it, so a
# later demo can tell one left behind by a process that is gone (see sweep_stale_demos).
DEMO_PREFIX = "keytui-demo-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def sweep_stale_demos(tmp: Path) -> list[Path]:
    """Remove the throwaway databases of demos whose process is gone (killed before they could
    clean up: a power cut, SIGKILL). Returns what was removed."""
    import shutil
    import stat

    removed = []
    for entry in tmp.glob(f"{DEMO_PREFIX}*-*"):
        pid = entry.name[len(DEMO_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        info = entry.lstat()
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():  # ours, not a link
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _exit_on_hangup() -> None:
    """SIGHUP (the terminal closed) and SIGTERM end the demo as an exit does, so its clean-up
    runs: Python's default for them ends the process on the spot."""
    import signal

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, leave)


@click.command("demo")
@click.option(
    "--keys",
    "count",
    type=click.IntRange(min=0, max=2_000_000),
    default=200,
    show_default=True,
    help="How many demo keys to seed.",
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Keep the demo database here (default: a throwaway file).",
)
@click.option("--read-only", is_flag=True)
@pass_state
def demo(state: State, count: int, db_path: str | None, read_only: bool) -> None:
    """Open the app on a database seeded with realistic demo keys (with --db: only a database
    whose only user is you)."""
    read_only = read_only or state.read_only
    import atexit
    import shutil
    import tempfile

    from ..core.demo import seed_demo
    from ..core.service import KeyService

    tmp: Path | None = None
    if db_path is None:
        sweep_stale_demos(Path(tempfile.gettempdir()))
        tmp = Path(tempfile.mkdtemp(prefix=f"{DEMO_PREFIX}{os.getpid()}-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # whatever way it ends
    _exit_on_hangup()
    try:
        target = db_path or str(Path(str(tmp)) / "demo.db")
        service = KeyService.open(target, face="tui")
        try:
            if service.counts().total == 0 and count:
                click.echo(f"Seeding {count} demo keys…", err=True)
                seed_demo(service, count)
            service.read_only = read_only  # after seeding: the app changes nothing
            from ..tui.run import run_app_on

            run_app_on(service, read_only=read_only)
        finally:
            service.close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
