"""Packaging: ``python -m keytui``, one version, the PostgreSQL driver as an extra, and a wheel
that installs and runs in a fresh venv."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keytui.core.errors import MissingDriver
from keytui.core.service import KeyService

ROOT = Path(__file__).resolve().parent.parent

# keytui as installed without the postgres extra: importing psycopg fails, as it does when the
# package is absent (a None in sys.modules makes ``import psycopg`` raise ImportError).
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from keytui.cli import main; main(sys.argv[1:], prog_name='keytui')"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No inherited database URL; a private data directory in case a default is ever opened."""
    clean = {k: v for k, v in os.environ.items() if k != "KEYTUI_DATABASE_URL"}
    clean["XDG_DATA_HOME"] = str(tmp_path / "data")
    return clean


def run_keytui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keytui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def run_without_psycopg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
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
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "keytui.__version__"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_psycopg_is_an_extra_that_the_test_extra_pulls():
    meta = project()
    assert not any(d.startswith("psycopg") for d in meta["dependencies"])
    assert meta["optional-dependencies"]["postgres"] == ["psycopg[binary]>=3.1,<4"]
    assert "keytui[postgres]" in meta["optional-dependencies"]["test"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://keytui@127.0.0.1:1/keytui",
        "postgres://keytui@127.0.0.1:1/keytui",
        "postgresql+psycopg://keytui:hunter2@127.0.0.1:1/keytui",
    ],
)
def test_a_postgresql_url_without_psycopg_names_the_extra(env, url):
    for args in (("--db", url, "keys", "list"), ("--db", url)):
        done = run_without_psycopg(env, *args)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr == (
            "keytui: PostgreSQL needs the psycopg driver: pip install 'keytui[postgres]'\n"
        )
        assert done.stdout == ""


def test_sqlite_needs_no_psycopg(env, tmp_path):
    done = run_without_psycopg(env, "--db", str(tmp_path / "k.db"), "keys", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_library_raises_the_same_one_line_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDriver, match=r"pip install 'keytui\[postgres\]'$") as caught:
        KeyService.open("postgresql://keytui@127.0.0.1:1/keytui")
    assert caught.value.exit_code == 2
