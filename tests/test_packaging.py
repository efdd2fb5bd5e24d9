"""Packaging: ``python -m keytui``, one version, the PostgreSQL driver as an extra, and a wheel
that installs and runs in a fresh venv."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import keytui
from keytui.core.errors import MissingDriver
from keytui.core.service import KeyService

from .test_e2e_tmux import Terminal

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

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


# Shipped from src/keytui as it is in git, but not needed by an installed keytui: the template
# Alembic uses only to write a new migration.
NOT_SHIPPED = {"keytui/core/migrations/script.py.mako"}


def pip(*args: str, cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )
    assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.wheel
def test_a_wheel_from_a_clean_clone_installs_and_runs(tmp_path, env, tmux_available):
    """Build the wheel from a clone of what is committed (pip's build isolation fetches the
    build-system requirements), install it in a venv of its own with the dependencies from pip's
    usual index, then run keytui from there: --help, --version, a PostgreSQL URL without the
    extra, and ``keytui demo`` in a real terminal."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    pip("wheel", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(clone), cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("keytui-*.whl")

    # What it holds: the package as committed, and nothing of the tests.
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
        demo_module = archive.read("keytui/core/demo.py").decode()
    committed = subprocess.run(
        ["git", "ls-files", "src/keytui"], cwd=clone, capture_output=True, text=True, check=True
    ).stdout.split()
    package = {name for name in names if not name.startswith("keytui-")}
    assert package == {name.removeprefix("src/") for name in committed} - NOT_SHIPPED
    for needed in (
        "keytui/py.typed",
        "keytui/__main__.py",
        "keytui/tui/app.tcss",
        "keytui/core/migrations/env.py",
        "keytui/core/migrations/versions/0001_initial.py",
    ):
        assert needed in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any("tests/" in n or "fixture" in n for n in names)
    assert "fixture_service" not in demo_module
    requires = [line for line in metadata.decode().splitlines() if line.startswith("Requires")]
    assert 'Requires-Dist: psycopg[binary]<4,>=3.1; extra == "postgres"' in requires
    assert not any("psycopg" in line and "extra ==" not in line for line in requires)

    # A fresh venv (no site packages), keytui and its dependencies installed into it.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip("--python", str(python), "install", str(wheel), cwd=tmp_path)
    installed = venv / "bin" / "keytui"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: keytui") and "demo" in helped.stdout
    version = subprocess.run(
        [str(python), "-m", "keytui", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert version.returncode == 0 and version.stdout.split()[-1] == keytui.__version__
    # SQLite users get no PostgreSQL driver; asking for PostgreSQL says which extra brings it.
    postgres = run("--db", "postgresql://keytui@127.0.0.1:1/keytui", "keys", "list")
    assert (postgres.returncode, postgres.stderr) == (
        2,
        "keytui: PostgreSQL needs the psycopg driver: pip install 'keytui[postgres]'\n",
    )

    # keytui demo paints its seeded keys in a real terminal and quits on q.
    data = tmp_path / "data"
    demo = shlex.join(["env", f"XDG_DATA_HOME={data}", str(installed), "demo", "--keys", "30"])
    command = f'{demo}; echo "[keytui exit $?]"'
    term = Terminal(["sh", "-c", command])
    try:
        screen = term.wait(r"\d+ active · \d+ expired · \d+ revoked", timeout=60)
        counts = re.search(r"(\d+) active · (\d+) expired · (\d+) revoked", screen)
        assert counts is not None and sum(map(int, counts.groups())) == 30, screen
        term.keys("q")
        screen = term.wait(r"\[keytui exit \d+\]", timeout=30)
        assert "[keytui exit 0]" in screen and "Traceback" not in screen, screen
    finally:
        term.stop()
