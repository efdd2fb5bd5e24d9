"""``./dev`` says what it is doing before pip's quiet minute on a fresh clone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Starts ./dev (a shell script) with the test's environment: nothing in it reads the clock but
# the files' times, which the test sets relative to each other.
pytestmark = pytest.mark.clock
ROOT = Path(__file__).resolve().parent.parent

# Stands for python3 and the venv's python: records its arguments on stderr, makes a venv
# (a copy of itself as bin/python) when asked, and installs nothing.
FAKE_PYTHON = f"""#!{sys.executable}
import os, shutil, sys
sys.stderr.write("FAKE-PYTHON " + " ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["-m", "venv"]:
    os.makedirs(os.path.join(sys.argv[3], "bin"))
    shutil.copy(__file__, os.path.join(sys.argv[3], "bin", "python"))
"""


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A copy of the script and pyproject.toml, with a fake python to point PYTHON at."""
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return tmp_path


def run_dev(clone: Path) -> str:
    done = subprocess.run(
        [str(clone / "dev"), "nothing"],  # an unknown command: the usage line after the setup
        env={**os.environ, "PYTHON": str(clone / "fake-python")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    return done.stderr


def test_a_fresh_clone_says_it_is_setting_up_before_pip_runs(clone):
    err = run_dev(clone)
    said = err.index("keytui: setting up .venv (first run, about a minute)...")
    assert said < err.index("FAKE-PYTHON -m venv") < err.index("FAKE-PYTHON -m pip install")
    assert (clone / ".venv" / ".installed").exists()
    # Set up: the next run says nothing and installs nothing.
    again = run_dev(clone)
    assert "keytui:" not in again and "FAKE-PYTHON" not in again


def test_a_changed_pyproject_says_it_is_updating_before_pip_runs(clone):
    run_dev(clone)
    stamp = clone / ".venv" / ".installed"
    later = stamp.stat().st_mtime + 60
    os.utime(clone / "pyproject.toml", (later, later))  # newer than the stamp
    err = run_dev(clone)
    assert err.index("keytui: updating .venv") < err.index("FAKE-PYTHON -m pip install")
    assert "setting up" not in err
