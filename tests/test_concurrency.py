"""Many hands at once (issue 5): five processes on one database, SQLite and PostgreSQL.

Four admin processes create, rename, replace, revoke and verify their own keys, revoke
overlapping sets of shared keys, and race replaces against revokes on the same keys; a fifth
verifies in a loop. Afterwards every key's state, every use count and the exact number of events
must follow from what the processes report they did, and the audit chain must hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, text

from keytui.core.db import open_database
from keytui.core.models import Event, Key
from keytui.core.service import KeyService

pytestmark = pytest.mark.clock  # five worker processes

WRITERS = 4
OWN_KEYS = 16
SHARED = 30
RACE = 8
VERIFIES = 300

WORKER = textwrap.dedent("""
    import json, sys, traceback
    from collections import Counter
    from datetime import datetime
    from keytui.core.clock import FrozenClock
    from keytui.core.db import open_database
    from keytui.core.errors import NotActive
    from keytui.core.hashing import make_hasher
    from keytui.core.service import KeyService

    url, actor, index, spec_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    spec = json.load(open(spec_file))
    clock = FrozenClock(datetime.fromisoformat(spec["now"]))  # the test's clock
    service = KeyService(open_database(url), actor=actor, face="cli", clock=clock,
                         hasher=make_hasher(1, 1024), usage_flush_seconds=3600)
    report = {"own": {}, "renamed": 0, "replaced": [], "revoked": [], "valid": Counter(),
              "failed_keys": set(), "errors": []}

    def check(secret, expect):
        result = service.verify(secret)
        if result.code == "VALID":
            report["valid"][result.key_id] += 1
        if expect is not None and result.code != expect:
            report["errors"].append(f"verify: expected {expect}, got {result.code}")
        return result

    try:
        if actor == "verifier":
            secrets = list(spec["shared"].items()) + list(spec["race"].items())
            for step in range(spec["verifies"]):
                key_id, secret = secrets[step % len(secrets)]
                result = check(secret, None)
                if result.code not in ("VALID", "REVOKED", "NOT_FOUND"):
                    report["errors"].append(f"verify: {result.code}")
                if result.code == "NOT_FOUND":  # a race key replaced meanwhile
                    report["failed_keys"].add(key_id)
        else:
            mine = {}
            for j in range(spec["own"]):
                issued = service.create_key(f"{actor} key {j}")
                mine[issued.key.id] = [issued.secret, j]
            for key_id, (secret, j) in mine.items():
                service.rename_key(key_id, f"{actor} key {j} renamed")
                report["renamed"] += 1
            for key_id, entry in mine.items():
                secret, j = entry
                if j % 2 == 0:
                    entry[0] = service.replace_key(key_id).secret
                    report["replaced"].append(key_id)
                    check(secret, "NOT_FOUND")  # the old secret, at once
                    report["failed_keys"].add(key_id)
                check(entry[0], "VALID")
                if j % 4 == 1:
                    service.revoke_key(key_id)
                    report["revoked"].append(key_id)
                    check(entry[0], "REVOKED")
            report["own"] = {key_id: secret for key_id, (secret, _j) in mine.items()}
            shared = sorted(spec["shared"])
            plan = service.revoke_keys(shared[index * 5: index * 5 + 20])
            report["revoked"] += [key.id for key in plan.revoke]
            for key_id in sorted(spec["race"]):
                if index % 2 == 0:
                    try:
                        service.replace_key(key_id)
                        report["replaced"].append(key_id)
                    except NotActive:
                        pass
                else:
                    plan = service.revoke_keys([key_id])
                    report["revoked"] += [key.id for key in plan.revoke]
    except Exception as exc:
        report["errors"].append("".join(traceback.format_exception(exc)))
    finally:
        service.close()  # flushes use counts and one key.verify_failed event per failed key
    report["failed_keys"] = sorted(report["failed_keys"])
    print(json.dumps(report))
""")


WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def count(session, statement) -> int:
    return int(session.scalar(statement) or 0)


def test_five_processes_on_one_database(make_service, db_url, tmp_path, clock, figure):
    alice = make_service("alice")
    for index in range(WRITERS):
        alice.add_user(f"w{index}", "admin")
    shared = {alice.create_key(f"shared {n}").key.id: None for n in range(SHARED)}
    shared = {key_id: alice.replace_key(key_id).secret for key_id in shared}
    race = {}
    for n in range(RACE):
        issued = alice.create_key(f"race {n}")
        race[issued.key.id] = issued.secret
    with alice.db.read() as session:
        events_before = count(session, select(func.count()).select_from(Event))
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "own": OWN_KEYS,
                "shared": shared,
                "race": race,
                "verifies": VERIFIES,
                "now": clock().isoformat(),
            }
        )
    )
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    started = time.perf_counter()
    actors = [f"w{index}" for index in range(WRITERS)] + ["verifier"]
    children = [
        subprocess.Popen(
            [sys.executable, str(script), db_url, actor, str(index), str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, actor in enumerate(actors)
    ]
    reports = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        reports.append(json.loads(out))
    elapsed = time.perf_counter() - started
    for report in reports:
        assert report["errors"] == []  # no "database is locked", no lost update, no surprise

    own = {key_id: secret for report in reports for key_id, secret in report["own"].items()}
    revoked = Counter(key_id for report in reports for key_id in report["revoked"])
    replaced = Counter(key_id for report in reports for key_id in report["replaced"])
    valid = Counter()
    for report in reports:
        valid.update(report["valid"])
    failed_events = sum(len(report["failed_keys"]) for report in reports)
    operations = (
        len(own)
        + sum(r["renamed"] for r in reports)
        + sum(replaced.values())
        + sum(revoked.values())
        + sum(valid.values())
    )
    figure(
        f"{alice.db.engine.dialect.name}: {len(actors)} processes, {operations} writes and "
        f"valid verifies (+ failed verifies) in {elapsed:.1f} s"
    )

    # Two admins revoking overlapping sets: every shared key revoked exactly once.
    assert all(revoked[key_id] == 1 for key_id in shared)
    # Replace racing revoke: each race key revoked once, replaced only before that.
    assert all(revoked[key_id] == 1 for key_id in race)
    assert len(own) == WRITERS * OWN_KEYS
    assert all(revoked[key_id] <= 1 for key_id in own)

    with alice.db.read() as session:
        rows = {row.key_id: row for row in session.scalars(select(Key))}
        events = list(session.execute(select(Event.action, Event.key_id)))
    per_key = Counter((action, key_id) for action, key_id in events)
    for key_id, row in rows.items():
        assert (row.revoked_at is not None) == (
            revoked[key_id] == 1 or key_id in shared or key_id in race
        ), key_id
        assert per_key["key.revoke", key_id] == revoked[key_id]
        assert per_key["key.replace", key_id] == replaced[key_id] + (key_id in shared)
        assert row.use_count == valid[key_id], key_id
    for key_id, secret in own.items():
        row = rows[key_id]
        assert row.name.endswith(" renamed")
        expected = "REVOKED" if revoked[key_id] else "VALID"
        assert alice.verify(secret).code == expected
    assert len(events) == (
        events_before
        + len(own)
        + sum(r["renamed"] for r in reports)
        + sum(replaced.values())
        + sum(revoked.values())
        + failed_events
    )
    assert per_key.total() == len(events)
    status = alice.verify_event_chain()
    assert status.ok and status.count == len(events), status.message()


@pytest.mark.postgres
def test_a_usage_flush_takes_row_locks_before_the_chain_lock(postgres_url, clock):
    """A flush that wrote its verify_failed events (the chain lock) before its usage updates
    (row locks) deadlocked with a replace holding the row and waiting for the chain."""
    import threading

    from sqlalchemy import create_engine

    from keytui.core.audit import ADVISORY_LOCK_ID

    from .conftest import FAST_HASHER, reset_postgres

    reset_postgres(postgres_url)
    service = KeyService(
        open_database(postgres_url), actor="alice", hasher=FAST_HASHER, clock=clock
    )
    service.bootstrap()
    key = service.create_key("busy")
    with service.db.read() as session:
        pk = session.scalar(select(Key.pk).where(Key.key_id == key.key.id))
    service.verifier.usage.add(key.key.id, clock().timestamp())  # a use and a wrong secret, waiting
    service.verifier.failed.add(key.key.id, clock().timestamp())
    engine = create_engine(postgres_url)
    holder = engine.connect()
    holder.begin()
    holder.execute(text("SELECT 1 FROM keys WHERE pk = :pk FOR UPDATE"), {"pk": pk})
    flushing = threading.Thread(target=service.flush_usage)
    flushing.start()
    try:
        with engine.connect() as probe:  # wait until the flush is waiting for the row
            deadline = time.monotonic() + 60
            while not probe.execute(WAITING_FOR_A_LOCK).scalar():
                assert flushing.is_alive() and time.monotonic() < deadline
                probe.rollback()
                time.sleep(0.02)
            probe.rollback()
            free = probe.execute(
                text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID}
            ).scalar()
            probe.rollback()
        assert free, "the flush holds the chain lock while waiting for a row lock"
    finally:
        holder.rollback()
        holder.close()
        flushing.join(timeout=10)
        engine.dispose()
    assert service.get_key(key.key.id).use_count == 1
    assert service.list_events(action="key.verify_failed")
    service.close()
