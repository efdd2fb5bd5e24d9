"""A real ``keytui serve`` in a subprocess, for the process and gateway tests.

It gets the test's environment (and so its clock: faketime's variables pass through), the
test's database, a free port it picks itself (``--listen 127.0.0.1:0``, read back from its
"listening on" line), and its output in files, read while it runs. Every wait is for a state
(a line, an answer) with a generous deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

KEYTUI = Path(sys.executable).parent / "keytui"
DEADLINE = 90.0  # seconds: a loaded 2-core machine starting workers is slow, never this slow


def child_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KEYTUI_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR")
    }
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env.update(extra)
    return env


def wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> object:
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    def __init__(self, tmp_path: Path, db: str, *args: str, workers: int = 1) -> None:
        self.out = tmp_path / f"serve-{id(self)}.out"
        self.err = tmp_path / f"serve-{id(self)}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    str(KEYTUI),
                    "serve",
                    "--db",
                    db,
                    "--listen",
                    "127.0.0.1:0",
                    "--workers",
                    str(workers),
                    *args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=child_env(tmp_path),
                start_new_session=True,  # its own group: a kill takes its workers too
            )
        self.workers = workers
        match = wait_for(self._listening, "keytui serve to listen")
        assert isinstance(match, re.Match)
        self.address = match.group(1)
        self.url = f"http://{self.address}"
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)
        # Ready when every worker has opened its service.
        wait_for(
            lambda: self.stderr().count("Application startup complete") >= workers,
            "every worker to start",
        )

    def _listening(self) -> re.Match[str] | None:
        if self.process.poll() is not None:
            raise AssertionError(f"keytui serve exited early:\n{self.stderr()}")
        return re.search(r"listening on http://(\S+) ", self.stderr())

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        """The whole group (the parent and its workers): for cleanup after a failed test."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=DEADLINE)
