"""Packaging: ``python -m keytui``, one version, the PostgreSQL driver as an extra, and a wheel
that installs and runs in a fresh venv."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_keytui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keytui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_python_dash_m_keytui_is_the_cli():
    done = run_keytui("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: python -m keytui" in done.stdout
    assert "keys" in done.stdout and "demo" in done.stdout
    wrong = run_keytui("no-such-command")
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("keytui: No such command") and "Traceback" not in wrong.stderr


def test_one_version_everywhere():
    """``keytui.__version__`` is the one place; the package metadata and ``--version`` read it."""
    import keytui

    assert importlib.metadata.version("keytui") == keytui.__version__
    done = run_keytui("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == keytui.__version__
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "keytui.__version__"}
