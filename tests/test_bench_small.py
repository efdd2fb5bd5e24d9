"""The benchmark runs end to end at 10,000 keys, so it cannot rot. Timings are reported by the
benchmark itself and never asserted here (they belong to bench/, not to a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from .conftest import PG_ENV

pytestmark = pytest.mark.clock  # the bench, which drives keytui in tmux

ROOT = Path(__file__).resolve().parent.parent
FIGURES = (
    "build 10,000 demo keys",
    "first paint, 10,000 keys",
    "first paint, 100 keys",
    "baseline: bare Textual app",
    "search keystroke -> repaint: 1 char, common",
    "search keystroke -> repaint: 2 chars, rare",
    "search keystroke -> repaint: common word",
    "search keystroke -> repaint: rare",
    "search keystroke -> repaint: no match",
    "search keystroke -> repaint: 1 char, no match",
    "G in the table",
    "page down in the table",
    "g in the table",
    "memory (RSS) of the app",
    "bulk revoke",
    "bulk revoke 1,000 keys",
    "verify, secret seen before",
    "verify, new secret",
    "baseline: one argon2id verify",
    "baseline: raw SQLite LIKE",
    "PostgreSQL",
)


@pytest.fixture
def bench_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The bench builds its own databases now, on this clock: not the cached ones in bench/out
    or on the server (seeded at another time, and shared with ./dev bench and other runs)."""
    name = f"keytui_bench_test_{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KEYTUI_BENCH_OUT": str(tmp_path / "out"),
        "KEYTUI_BENCH_POSTGRES_DB": name,
    }
    env.pop("KEYTUI_BENCH_POSTGRES_URL", None)  # the tests' server only
    yield env
    server = os.environ.get(PG_ENV)
    if server:
        admin = create_engine(
            make_url(server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_benchmark_runs_at_10000_keys(tmux_available, tmp_path, bench_env):  # it drives tmux
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--keys", "10000", "--fast", "--json", str(out)],
        cwd=ROOT,
        env=bench_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| figure | measured | target | ratio | result |" in done.stdout
    report = json.loads(out.read_text())
    assert report["keys"] == 10_000
    names = [row["figure"] for row in report["rows"]]
    for figure in FIGURES:
        assert any(name.startswith(figure) or figure in name for name in names), figure
    for row in report["rows"]:
        if "PostgreSQL" in row["figure"] and row["value"] is None:
            continue  # no server given
        assert row["value"] is not None and row["value"] > 0, row["figure"]


def test_filter_benchmark_runs(tmp_path, bench_env):
    out = tmp_path / "filter.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "filter", "--keys", "2000", "--repeat", "1"]
        + ["--json", str(out)],
        cwd=ROOT,
        env=bench_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "plan SEARCH keys USING INDEX ix_keys_owner" in done.stderr  # owner: takes its index
    names = [row["figure"] for row in json.loads(out.read_text())]
    for figure in ("plain search, rare", "owner:X status:active", "unused:45d"):
        for what in ("first 100", "count to 10,000"):
            assert f"SQLite: {figure}" in " ".join(n for n in names if what in n), figure


def test_usage_benchmark_runs(tmp_path, bench_env):
    out = tmp_path / "usage.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "usage", "--keys", "2000", "--used", "200"]
        + ["--repeat", "1", "--json", str(out)],
        cwd=ROOT,
        env=bench_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())
    names = " ".join(row["figure"] for row in rows)
    for figure in ("keys alone (list_keys)", "with uses in 24 h", "sorted by uses", "usage_flags"):
        assert figure in names, figure
    assert all(row["value"] > 0 for row in rows)
    assert "heavy=0" not in done.stderr  # the seeded history has keys in heavy use
