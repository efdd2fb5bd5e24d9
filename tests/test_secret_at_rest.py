"""A secret is stored only as an argon2id hash: its bytes are nowhere in the SQLite files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from keytui.core.db import open_database
from keytui.core.hashing import make_hasher
from keytui.core.models import Event, Key
from keytui.core.service import KeyService

from .conftest import FAST_HASHER


def needles(secret: str) -> list[bytes]:
    """The secret, its random part, and its SHA-256 (the verify cache's key), as stored bytes
    might hold them."""
    random_part = secret[14:46]
    digest = hashlib.sha256(secret.encode()).hexdigest()
    found = []
    for text in (secret, random_part, digest):
        found += [text.encode("ascii"), text.encode("utf-16-le")]
    return found


def files_of(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def assert_nowhere(path: Path, secrets: list[str]) -> None:
    files = files_of(path)
    assert path in files
    for file in files:
        data = file.read_bytes()
        for secret in secrets:
            for needle in needles(secret):
                assert needle not in data, f"{needle[:12]!r}… found in {file.name}"


def test_secrets_are_not_in_the_database_files(tmp_path: Path, clock):
    path = tmp_path / "keytui.db"
    service = KeyService(open_database(path), actor="alice", hasher=FAST_HASHER, clock=clock)
    service.bootstrap()
    issued = [service.create_key(f"key {i}", description="d") for i in range(3)]
    replaced = [service.replace_key(k.key.id) for k in issued]
    # A stronger hasher upgrades the hash on verify: still no secret written.
    verifier = KeyService(
        open_database(path),
        actor="alice",
        clock=clock,
        hasher=make_hasher(time_cost=2, memory_cost=2048),
    )
    assert all(verifier.verify(r.secret).valid for r in replaced)
    verifier.flush_usage()
    secrets = [k.secret for k in issued + replaced]
    assert Path(f"{path}-wal").exists()  # the WAL as written, before any checkpoint
    assert_nowhere(path, secrets)

    with service.db.read() as session:
        hashes = list(session.scalars(select(Key.secret_hash)))
        events = [(e.action, e.details, e.key_id, e.actor) for e in session.scalars(select(Event))]
    assert len(hashes) == 3 and all(h.startswith("$argon2id$") for h in hashes)
    assert {"key.create", "key.replace"} <= {e[0] for e in events}
    dumped = json.dumps(events)
    for secret in secrets:
        assert secret[14:46] not in dumped and secret not in dumped

    verifier.close()
    service.close()
    assert_nowhere(path, secrets)  # and after the checkpoint on close
