"""Secrets stay secret (issue 5): created and replaced through the real ``keytui`` command, the
secrets appear nowhere but on that command's stdout: not in the database file, its WAL, the event
table, or any process's argv or environment. The file is created 0600, and keytui warns when it
finds it readable by others."""

from __future__ import annotations

import array
import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from keytui.core.db import open_database

pytestmark = pytest.mark.clock  # the installed console script

KEYTUI = str(Path(sys.executable).with_name("keytui"))


def keytui(*args: str, db: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [KEYTUI, *args, "--db", str(db)], capture_output=True, text=True, input=stdin, timeout=60
    )
    assert "Traceback" not in result.stderr
    return result


def unread(pipe) -> int:
    """Bytes written to ``pipe`` that the process at its other end has not read yet."""
    count = array.array("i", [0])
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, count)
    return count[0]


def test_database_file_is_created_0600(tmp_path, monkeypatch):
    # the default path: its directory is made on first use (an explicit path's must exist)
    monkeypatch.delenv("KEYTUI_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "new"))
    database = open_database(None)
    database.dispose()
    path = tmp_path / "new" / "keytui" / "keytui.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_cli_warns_when_others_can_read_the_file(tmp_path):
    path = tmp_path / "keytui.db"
    first = keytui("keys", "list", db=path)
    assert first.returncode == 0 and "warning" not in first.stderr
    os.chmod(path, 0o660)  # the README's group setup: no warning
    shared = keytui("keys", "list", db=path)
    assert shared.returncode == 0 and "warning" not in shared.stderr
    for mode, can in ((0o644, "read"), (0o602, "write"), (0o666, "read and write")):
        os.chmod(path, mode)
        result = keytui("keys", "list", db=path)
        assert result.returncode == 0
        assert (
            f"keytui: warning: {path} is open to every user on this machine (others may {can} "
            f"it); run: chmod o-rwx {path}"
        ) in result.stderr, oct(mode)


def test_secrets_appear_nowhere_but_stdout(tmp_path):
    db = tmp_path / "keytui.db"
    assert keytui("keys", "list", db=db).returncode == 0  # keytui creates the file, 0600
    # Hold a connection open all along, so SQLite keeps the WAL file for us to search.
    holder = sqlite3.connect(db)
    holder.execute("SELECT count(*) FROM keys").fetchone()
    secrets: list[str] = []
    argvs: list[bytes] = []
    try:
        for index in range(2):
            created = keytui("keys", "create", "--name", f"leak test {index}", db=db)
            assert created.returncode == 0, created.stderr
            secret = created.stdout.strip()
            assert secret.startswith("kt_") and secret not in created.stderr
            secrets.append(secret)
            key_id = secret.split("_")[1]
            replaced = keytui("keys", "replace", key_id, "--yes", db=db)
            assert replaced.returncode == 0, replaced.stderr
            secrets.append(replaced.stdout.strip())
        # A verifier reading the secret from stdin: look at its argv and environment while it
        # holds the secret (sent without the newline it waits for).
        verifier = subprocess.Popen(
            [KEYTUI, "verify", "--db", str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        verifier.stdin.write(secrets[-1].encode())
        verifier.stdin.flush()
        deadline = time.monotonic() + 60
        while unread(verifier.stdin) and verifier.poll() is None:  # until it holds the secret
            assert time.monotonic() < deadline, "the verifier never read its stdin"
            time.sleep(0.01)
        proc = Path("/proc") / str(verifier.pid)
        argvs.append((proc / "cmdline").read_bytes() + (proc / "environ").read_bytes())
        out, _err = verifier.communicate(b"\n", timeout=60)
        assert verifier.returncode == 0 and out.startswith(b"VALID")
        wal = Path(str(db) + "-wal")
        assert wal.exists() and wal.stat().st_size > 0
        stored = [db.read_bytes(), wal.read_bytes()]
        shm = Path(str(db) + "-shm")
        if shm.exists():
            stored.append(shm.read_bytes())
        events = holder.execute("SELECT * FROM events").fetchall()
        everything = holder.execute(
            "SELECT group_concat(name || description || owner || secret_hash) FROM keys"
        ).fetchone()
    finally:
        holder.close()
    assert len(events) >= 5  # user.add, two creates, two replaces
    event_text = repr(events) + repr(everything)
    for secret in secrets:
        random_part = secret.split("_")[2]  # the part no one may learn
        for blob in stored + argvs:
            assert secret.encode() not in blob
            assert random_part.encode() not in blob
        assert random_part not in event_text
