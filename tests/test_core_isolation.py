"""The core has no screen: importing any of it (and the CLI) loads neither textual nor rich."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import keytui.core

pytestmark = pytest.mark.clock  # import probes in fresh interpreters

CORE = Path(keytui.core.__file__).parent
UI = ("textual", "rich")

PROBE = """
import importlib, json, pkgutil, sys
import keytui.core
names = [m.name for m in pkgutil.walk_packages(keytui.core.__path__, "keytui.core.")
         if ".migrations" not in m.name]
for name in names + sys.argv[1:]:
    importlib.import_module(name)
from keytui.core.service import KeyService  # and use it a little, in memory
service = KeyService.open("sqlite://", actor="probe")
service.counts()
service.close()
print(json.dumps({"imported": names,
                  "ui": sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))}))
"""


def probe(*extra: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_importing_the_core_loads_no_ui():
    found = probe()
    for name in (
        "keytui.core.service",
        "keytui.core.demo",
        "keytui.core.db",
        "keytui.core.keyformat",
        "keytui.core.hashing",
        "keytui.core.models",
        "keytui.core.validate",
    ):
        assert name in found["imported"]
    assert found["ui"] == []


def test_the_cli_loads_no_ui_until_it_opens_the_app():
    assert probe("keytui.cli")["ui"] == []


def test_no_core_module_imports_a_ui_library():
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert not set(roots) & set(UI), f"{path.relative_to(CORE)}:{node.lineno}"
