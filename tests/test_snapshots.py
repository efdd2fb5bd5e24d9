"""Layout, pinned: each scene's SVG must match its reviewed snapshot (pytest-textual-snapshot).

Update after a reviewed change with: ./dev test tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from .scenes import SCENES, scene_app

# A fixed directory, so the database path in the header is the same on every machine.
SNAPSHOT_DB_DIR = Path("/tmp/keytui-snapshots")


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_scene(scene, snap_compare):
    # The directory is shared by every run on this machine (other checkouts too): a scene holds
    # a lock on its database while it builds and pictures it, so two runs never share one.
    SNAPSHOT_DB_DIR.mkdir(parents=True, exist_ok=True)
    with open(SNAPSHOT_DB_DIR / f"{scene.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        app = scene_app(scene, SNAPSHOT_DB_DIR)
        try:
            assert snap_compare(app, terminal_size=scene.size, run_before=scene.run_before)
        finally:
            app.service.close()
