"""The benchmark runs end to end at 10,000 keys, so it cannot rot. Timings are reported by the
benchmark itself and never asserted here (they belong to bench/, not to a test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_benchmark_runs_at_10000_keys(tmux_available, tmp_path):  # it drives keytui in tmux
    out = tmp_path / "bench.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--keys", "10000", "--fast", "--json", str(out)],
        cwd=ROOT,
        env=env,
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
        if figure.startswith("build") and not any(n.startswith("build") for n in names):
            continue  # the database was already built by an earlier run: nothing to build
        assert any(name.startswith(figure) or figure in name for name in names), figure
    for row in report["rows"]:
        if "PostgreSQL" in row["figure"] and row["value"] is None:
            continue  # no server given
        assert row["value"] is not None and row["value"] > 0, row["figure"]
