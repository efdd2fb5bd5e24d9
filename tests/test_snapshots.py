"""Layout, pinned: each scene's SVG must match its reviewed snapshot (pytest-textual-snapshot).

Update after a reviewed change with: ./dev test tests/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .scenes import SCENES, scene_app

# A fixed directory, so the database path in the header is the same on every machine.
SNAPSHOT_DB_DIR = Path("/tmp/keytui-snapshots")


@pytest.mark.parametrize("scene", SCENES, ids=[s.name for s in SCENES])
def test_scene(scene, snap_compare):
    app = scene_app(scene, SNAPSHOT_DB_DIR)
    try:
        assert snap_compare(app, terminal_size=scene.size, run_before=scene.run_before)
    finally:
        app.service.close()
