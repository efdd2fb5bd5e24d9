"""Make screenshots/*.svg from the same scenes the snapshot tests pin.

.venv/bin/python scripts/screenshots.py        (then look at them: rsvg-convert -w 1400 ...)
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scenes import SCENES, scene_app  # noqa: E402

OUT = ROOT / "screenshots"
DB_DIR = Path("/tmp/keytui-snapshots")


async def shoot(scene) -> Path:
    DB_DIR.mkdir(parents=True, exist_ok=True)
    # the same lock as the snapshot tests take on this scene's database: never share one
    with open(DB_DIR / f"{scene.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        app = scene_app(scene, DB_DIR)
        try:
            async with app.run_test(size=scene.size) as pilot:
                await scene.run_before(pilot)
                svg = app.export_screenshot(title=f"keytui — {scene.name}")
        finally:
            app.service.close()
    path = OUT / f"{scene.name}.svg"
    path.write_text(svg, encoding="utf-8")
    return path


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for scene in SCENES:
        if not names or scene.name in names:
            print(asyncio.run(shoot(scene)).relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
