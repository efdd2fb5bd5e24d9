"""Secrets made in the app go nowhere but the reveal dialog and the terminal's clipboard."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from sqlalchemy import select

from keytui.core.models import Event
from keytui.tui.app import make_app

from .scenes import EXAMPLE_SECRET, settle

ROOT = Path(__file__).resolve().parent.parent


def pictures() -> list[Path]:
    return sorted((ROOT / "screenshots").glob("*.svg")) + sorted(
        (ROOT / "tests" / "__snapshots__").rglob("*.svg")
    )


def test_secrets_from_the_app_leak_nowhere(admin):
    secrets: list[str] = []

    async def run() -> None:
        app = make_app(admin)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("n", *"leak check", "ctrl+s")
            await settle(pilot)
            await pilot.press("c")
            secrets.append(app.clipboard)
            await pilot.press("escape")
            await settle(pilot)
            await pilot.press("r")
            await settle(pilot)
            await pilot.press("y")
            await settle(pilot)
            await pilot.press("c")
            secrets.append(app.clipboard)
            await pilot.press("escape")
            await settle(pilot)
            assert app.clipboard == ""  # gone from the app once the reveal closed
            notes = " ".join(str(n.message) for n in app._notifications)
            assert not any(secret in notes for secret in secrets)

    asyncio.run(run())
    assert len(secrets) == 2 and all(s.startswith("kt_") for s in secrets)
    assert secrets[0] != secrets[1]
    assert admin.verify(secrets[1]).valid and not admin.verify(secrets[0]).valid

    # Nothing holds them: the events, the database files (when SQLite), the pictures, argv.
    with admin.db.read() as session:
        details = " ".join(e.details for e in session.scalars(select(Event)))
    path = admin.db.sqlite_path
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm")] if path else []
    for secret in secrets:
        random_part = secret.split("_", 2)[2].encode()
        assert secret not in details
        for file in files:
            if file.exists():  # the WAL and its index come and go
                assert random_part not in file.read_bytes(), file


def test_no_picture_holds_a_secret_but_the_example():
    """Every SVG the project keeps (screenshots, snapshots): the only thing shaped like a
    secret in them is the scenes' example, which no key has (and finding it there shows the
    pattern sees a secret as the pictures render it)."""
    shaped = re.compile(rb"kt_[0-9a-z]{10}_[0-9A-Za-z]{38}")
    found = {match for file in pictures() for match in shaped.findall(file.read_bytes())}
    assert found == {EXAMPLE_SECRET.encode()}


def test_the_app_warns_when_others_can_read_the_database(tmp_path, clock):
    from keytui.core.service import KeyService

    from .conftest import FAST_HASHER

    path = tmp_path / "shared.db"
    service = KeyService.open(str(path), actor="alice", clock=clock, hasher=FAST_HASHER)
    os.chmod(path, 0o644)

    async def run() -> list[str]:
        app = make_app(service)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            return [str(n.message) for n in app._notifications]

    try:
        notes = asyncio.run(run())
    finally:
        service.close()
    assert any("open to every user" in note and "chmod o-rwx" in note for note in notes)


def test_the_app_keeps_no_reference_to_a_secret_once_the_reveal_closes(admin):
    """What the README promises: once the reveal closes, nothing in the app refers to the
    secret or the IssuedKey that carried it (Python does not wipe the memory they used)."""
    import gc
    import sys
    import weakref

    issued_refs: list[weakref.ref] = []
    secrets: list[str] = []
    create, replace = admin.create_key, admin.replace_key

    def watched(call):
        def wrapper(*args, **kwargs):
            issued = call(*args, **kwargs)
            issued_refs.append(weakref.ref(issued))
            secrets.append(issued.secret)
            return issued

        return wrapper

    admin.create_key, admin.replace_key = watched(create), watched(replace)

    def holders(index: int) -> list[str]:
        """What refers to the secret, but the list above and this frame."""
        gc.collect()
        here = sys._getframe()
        return [
            repr(referrer)[:300]
            for referrer in gc.get_referrers(secrets[index])
            if referrer is not secrets and referrer is not here
        ]

    async def run() -> None:
        app = make_app(admin)
        async with app.run_test(size=(120, 36)) as pilot:
            await settle(pilot)
            await pilot.press("n", *"held", "ctrl+s")
            await settle(pilot)
            await pilot.press("c", "escape")
            await settle(pilot)
            await pilot.press("r")
            await settle(pilot)
            await pilot.press("y")
            await settle(pilot)
            await pilot.press("escape", "escape")  # closed without copying: asked once more
            await settle(pilot)
            for _ in range(3):
                await pilot.pause()
            gc.collect()
            assert [ref() for ref in issued_refs] == [None, None]
            assert holders(0) == [] and holders(1) == []
            assert [sys.getrefcount(secrets[0]), sys.getrefcount(secrets[1])] == [2, 2]  # list, arg

    try:
        asyncio.run(run())
    finally:
        del admin.create_key, admin.replace_key
    assert len(secrets) == 2
