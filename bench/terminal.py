"""A program in a real terminal (tmux), timed from keystroke to repainted screen.

As /work/shared/tools/tuidrive does: each terminal is its own tmux server; keys go in with
send-keys, the screen comes back with capture-pane, polled until it shows the expected text.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

POLL = 0.004  # seconds between screen reads (one capture-pane costs about as much)


class Terminal:
    def __init__(self, name: str, argv: list[str], size: tuple[int, int] = (120, 35)) -> None:
        self.socket = f"keytui-bench-{name}-{os.getpid()}"
        self._tmux("kill-server", check=False)
        command = "exec env TERM=xterm-256color COLORTERM=truecolor " + shlex.join(argv)
        self.started = time.perf_counter()
        self._tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
            command,
        )
        self._tmux("set", "-g", "remain-on-exit", "on")

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode:
            raise RuntimeError(f"tmux {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "main")

    def keys(self, *keys: str) -> float:
        """Send tmux key names; the time just before they were sent."""
        at = time.perf_counter()
        self._tmux("send-keys", "-t", "main", *keys)
        return at

    def type(self, text: str) -> float:
        at = time.perf_counter()
        self._tmux("send-keys", "-t", "main", "-l", text)
        return at

    def wait(self, *patterns: str, timeout: float = 20.0, since: float | None = None) -> float:
        """Seconds from ``since`` until the screen matches every pattern (regexes)."""
        since = self.started if since is None else since
        compiled = [re.compile(p) for p in patterns]
        end = time.perf_counter() + timeout
        while True:
            screen = self.screen()
            now = time.perf_counter()
            if all(p.search(screen) for p in compiled):
                return now - since
            if now > end:
                raise TimeoutError(f"screen never showed {patterns}:\n{screen}")
            time.sleep(POLL)

    def wait_gone(self, pattern: str, timeout: float = 20.0) -> None:
        """Wait until the screen no longer matches ``pattern``."""
        compiled = re.compile(pattern)
        end = time.perf_counter() + timeout
        while compiled.search(screen := self.screen()):
            if time.perf_counter() > end:
                raise TimeoutError(f"screen kept showing {pattern!r}:\n{screen}")
            time.sleep(POLL)

    def wait_change(self, before: str, timeout: float = 10.0, since: float = 0.0) -> float:
        end = time.perf_counter() + timeout
        while True:
            screen = self.screen()
            now = time.perf_counter()
            if screen != before:
                return now - since
            if now > end:
                raise TimeoutError("the screen never changed")
            time.sleep(POLL)

    @property
    def pid(self) -> int:
        return int(self._tmux("display", "-p", "-t", "main", "#{pane_pid}").strip())

    def rss_mb(self) -> float:
        """Resident memory of the program (VmRSS from /proc), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        self._tmux("kill-server", check=False)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
