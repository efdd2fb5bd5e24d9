"""The warm path: a long-running verifier answers secrets it has seen from memory, learns of
every change through the change signal, refuses from the instant a key expires, reads through
while the signal is lost, never waits for a writer, and bounds the argon2 work of a flood."""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select, text, update

import keytui.core.verify as verify_module
from keytui.core.changes import wait_until
from keytui.core.hashing import DEFAULT_HASHER, check_of, check_value
from keytui.core.identity import current_login
from keytui.core.keyformat import new_secret
from keytui.core.models import Event, Key
from keytui.core.verify import FLOOD_BURST, FLOOD_RATE

from .conftest import FAST_HASHER, NOW

KEYTUI = Path(sys.executable).parent / "keytui"


@pytest.fixture
def argon2_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = verify_module.verify_secret

    def counting(stored_hash, secret, hasher=DEFAULT_HASHER):
        calls.append(stored_hash)
        return real(stored_hash, secret, hasher)

    monkeypatch.setattr(verify_module, "verify_secret", counting)
    return calls


def statements(service) -> list[str]:
    seen: list[str] = []
    event.listen(service.db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def warmed(service, *secrets: str) -> None:
    """Verify each secret until the service answers it from memory."""
    for secret in secrets:
        service.verify(secret)
    assert service.verifier.watcher is not None
    assert service.verifier.watcher.wait_live(10)
    for secret in secrets:
        service.verify(secret)  # read through once more while live: now remembered
    assert wait_until(lambda: service.verifier.answering_from_memory, 10)


def heard_all(service) -> bool:
    """The service's watcher has handed on every event in the database."""
    with service.db.read() as session:
        last = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1)) or 0
    watcher = service.verifier.watcher
    return watcher is not None and watcher.heard_event_id >= last


# -- the warm path ------------------------------------------------------------------------------


def test_a_warm_verify_sends_no_query(make_service, argon2_calls):
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice")  # warm=None: the watcher starts at the second verify
    assert verifier.verify(issued.secret).valid
    assert verifier.verifier.watcher is None  # a one-shot verify pays for no thread
    warmed(verifier, issued.secret)
    seen = statements(verifier)
    for _ in range(50):
        assert verifier.verify(issued.secret, host="10.0.0.7").valid
    assert seen == [] and len(argon2_calls) == 1
    assert verifier.verifier.stats.warm >= 50
    verifier.flush_usage()
    # each counted once in the key's total and once in its hour (one lock for both)
    assert alice.get_key(issued.key.id).use_count == 53
    usage = alice.key_usage(issued.key.id)
    assert (usage.outcomes_24h["valid"], usage.last_used_host) == (53, "10.0.0.7")


def test_warm_false_reads_every_time(make_service):
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", warm=False)
    for _ in range(3):
        assert verifier.verify(issued.secret).valid
    assert verifier.verifier.watcher is None and verifier.verifier.stats.read == 3


def test_a_key_expiring_while_cached_is_refused_from_that_instant(make_service, clock):
    alice = make_service("alice")
    issued = alice.create_key("k", expires=NOW + timedelta(hours=1))
    verifier = make_service("alice", warm=True)
    warmed(verifier, issued.secret)
    seen = statements(verifier)
    clock.advance(minutes=59, seconds=59)
    assert verifier.verify(issued.secret).valid
    clock.advance(seconds=1)
    assert verifier.verify(issued.secret).code == "EXPIRED"
    assert seen == []  # no notice, no read: memory knows the expiry


@pytest.mark.parametrize("change", ["revoke", "replace", "delete", "disable", "role"])
def test_a_change_drops_what_it_names(make_service, change, argon2_calls):
    alice = make_service("alice")
    target = alice.create_key("target", expires=None)
    other = alice.create_key("other", expires=None)
    verifier = make_service("alice", warm=True)
    warmed(verifier, target.secret, other.secret)
    runs = len(argon2_calls)
    expected = {
        "revoke": "REVOKED",
        "replace": "NOT_FOUND",
        "delete": "NOT_FOUND",
        "disable": "DISABLED",
        "role": "VALID",
    }[change]
    if change == "revoke":
        alice.revoke_key(target.key.id)
    elif change == "replace":
        alice.replace_key(target.key.id)
    elif change == "delete":
        alice.delete_keys([target.key.id])
    elif change == "disable":
        alice.update_settings(keys_enabled=False)
    else:
        alice.add_role("billing")  # the installation changed: everything is read again
    assert wait_until(lambda: heard_all(verifier), 10)
    assert verifier.verify(target.secret).code == expected
    seen = statements(verifier)
    other_code = verifier.verify(other.secret).code
    assert other_code == ("DISABLED" if change == "disable" else "VALID")
    if change in ("revoke", "replace", "delete"):
        assert seen == []  # the other key stayed in memory
    assert len(argon2_calls) == runs  # no argon2 again (the replaced key's old secret is
    # refused by the new hash's check value)
    if change == "disable":
        before = len(seen)
        assert verifier.verify(other.secret).code == "DISABLED"
        assert len(seen) == before  # disabled is remembered too, until the next change


def test_a_read_that_races_a_change_is_not_remembered(make_service):
    """A verifier that read a key's row before a revoke, and would store it after the watcher
    handled the revoke, must not keep the stale row."""
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", warm=True)
    verifier.verify(new_secret(issued.key.id))  # starts the watcher; nothing remembered
    assert verifier.verifier.watcher.wait_live(10)
    assert wait_until(lambda: verifier.verifier.answering_from_memory, 10)
    fired = []

    def revoke_after_the_read(_conn, _cursor, statement, *_args) -> None:
        if "keys_enabled" in statement and not fired:
            fired.append(True)
            alice.revoke_key(issued.key.id)
            assert wait_until(lambda: heard_all(verifier), 10)

    event.listen(verifier.db.engine, "after_cursor_execute", revoke_after_the_read)
    assert verifier.verify(issued.secret).valid  # read before the revoke: valid then
    event.remove(verifier.db.engine, "after_cursor_execute", revoke_after_the_read)
    assert fired
    assert verifier.verify(issued.secret).code == "REVOKED"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_killed_listener_reads_through_until_it_is_back(make_service, db_url, caplog):
    caplog.set_level(logging.WARNING)
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", warm=True)
    warmed(verifier, issued.secret)
    watcher = verifier.verifier.watcher
    pid = watcher._connection.driver_connection.info.backend_pid
    real_subscribe = watcher._subscribe
    allowed = threading.Event()

    def not_yet(first: bool) -> None:
        if not allowed.is_set():
            raise ConnectionError("held down by the test")
        real_subscribe(first)

    watcher._subscribe = not_yet
    killer = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    assert wait_until(lambda: not verifier.verifier.answering_from_memory, 10)
    seen = statements(verifier)
    assert verifier.verify(issued.secret).valid
    assert seen  # read through
    alice.revoke_key(issued.key.id)
    assert verifier.verify(issued.secret).code == "REVOKED"  # at once: nothing stale
    assert "change signal lost" in caplog.text
    allowed.set()
    assert wait_until(lambda: verifier.verifier.answering_from_memory, 20)
    assert verifier.verify(issued.secret).code == "REVOKED"
    assert "change signal back" in caplog.text


# -- writers never stall a verify; usage by key ID -----------------------------------------------


def test_verify_returns_while_a_writer_holds_the_key(make_service, db_url, clock):
    """A bulk revoke holding the key's row (and the audit chain) open: verify() still answers,
    and the counts it buffered are written once the writer is gone."""
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", usage_flush_seconds=30)
    for _ in range(3):
        assert verifier.verify(issued.secret).valid
    verifier.verify(new_secret(issued.key.id))  # a failed count too (an event to write)
    holding, release, answered = threading.Event(), threading.Event(), []

    def writer() -> None:
        with alice.db.write() as session:
            session.execute(update(Key).where(Key.key_id == issued.key.id).values(name="held"))
            alice._event(session, "key.rename", issued.key.id)  # takes the chain lock
            holding.set()
            release.wait(120)
            raise RuntimeError("rolled back")  # as an aborted bulk revoke

    def verifying() -> None:
        clock.advance(seconds=31)  # the buffered counts are due: a flush is asked for
        answered.append(verifier.verify(issued.secret))
        answered.append(verifier.verify(issued.secret))

    held = threading.Thread(target=lambda: pytest.raises(RuntimeError, writer))
    held.start()
    assert holding.wait(30)
    caller = threading.Thread(target=verifying)
    caller.start()
    caller.join(60)
    returned = not caller.is_alive()
    release.set()
    held.join(60)
    caller.join(60)
    assert returned, "verify() waited for the writer"
    assert [r.valid for r in answered] == [True, True]
    verifier.flush_usage()
    assert alice.get_key(issued.key.id).use_count == 5
    with alice.db.read() as session:
        failed = session.scalars(select(Event).where(Event.action == "key.verify_failed")).all()
    assert [json.loads(e.details)["count"] for e in failed] == [1]


def test_usage_follows_the_key_id_not_a_reused_row(make_service, db_url):
    alice = make_service("alice")
    gone = alice.create_key("gone", expires=None)
    verifier = make_service("alice", warm=False)
    for _ in range(7):
        assert verifier.verify(gone.secret).valid
    alice.delete_keys([gone.key.id])
    fresh = alice.create_key("fresh", expires=None)
    with alice.db.read() as session:
        pks = session.execute(select(Key.pk, Key.key_id)).all()
    if db_url.endswith(".db"):
        assert [pk for pk, _ in pks] == [1]  # SQLite gave the new key the deleted one's row id
    verifier.flush_usage()
    assert alice.get_key(fresh.key.id).use_count == 0


# -- damaged rows -------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["allowed_hosts", "allowed_hosts_list", "expires_at"])
def test_a_damaged_row_is_refused_with_a_code(make_service, db_url, column, caplog):
    if column == "expires_at" and not db_url.endswith(".db"):
        pytest.skip("PostgreSQL stores no impossible timestamp")
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice")
    value = {"allowed_hosts": "not json [", "allowed_hosts_list": '{"a": 1}'}.get(
        column, "2026-13-45 99:99:99"
    )
    with alice.db.write() as session:
        session.execute(
            text(f"UPDATE keys SET {column.removesuffix('_list')} = :v WHERE key_id = :k"),
            {"v": value, "k": issued.key.id},
        )
    for _ in range(2):
        result = verifier.verify(issued.secret)
        assert not result.valid and result.code == "DAMAGED" and result.key_id == issued.key.id
    assert caplog.text.count("is damaged") == 1
    assert issued.secret not in caplog.text


# -- floods -------------------------------------------------------------------------------------


def failed_events(service) -> list[dict]:
    with service.db.read() as session:
        return [
            json.loads(e.details)
            for e in session.scalars(select(Event).where(Event.action == "key.verify_failed"))
        ]


@pytest.mark.parametrize("warm", [False, True])
def test_a_flood_costs_no_argon2_and_a_new_real_secret_verifies_during_it(
    make_service, clock, argon2_calls, warm
):
    alice = make_service("alice")
    flooded = alice.create_key("flooded", expires=None)
    bystander = alice.create_key("bystander", expires=None)
    verifier = make_service("alice", warm=warm)
    assert verifier.verify(bystander.secret).valid
    if warm:
        warmed(verifier, bystander.secret)
    runs = len(argon2_calls)
    # every wrong secret is new (the attacker varies the random part): none costs argon2
    codes = [verifier.verify(new_secret(flooded.key.id)).code for _ in range(200)]
    assert set(codes) == {"NOT_FOUND"} and len(argon2_calls) == runs
    # the key's real secret, first seen in the middle of the flood: one argon2 run, VALID
    assert verifier.verify(flooded.secret).valid
    assert len(argon2_calls) == runs + 1
    if warm:  # the flood needs no read either once the key's check value is remembered
        seen = statements(verifier)
        for _ in range(50):
            assert verifier.verify(new_secret(flooded.key.id)).code == "NOT_FOUND"
        assert seen == []
    # a replace in the middle of the flood: the new secret verifies at its first try
    replaced = alice.replace_key(flooded.key.id)
    if warm:
        assert wait_until(lambda: heard_all(verifier), 10)
    for _ in range(50):
        verifier.verify(new_secret(flooded.key.id))
    runs = len(argon2_calls)
    assert verifier.verify(replaced.secret).valid
    assert verifier.verify(flooded.secret).code == "NOT_FOUND"  # the old one, no argon2
    assert len(argon2_calls) == runs + 1
    # 10 s more of flood: still nothing
    for _ in range(10):
        clock.advance(seconds=1)
        for _ in range(50):
            verifier.verify(new_secret(flooded.key.id))
    assert len(argon2_calls) == runs + 1 and verifier.verify(bystander.secret).valid
    stats = verifier.verifier.stats
    assert stats.throttled == 0 and stats.checked == 200 + 50 * warm + 50 + 1 + 500
    verifier.flush_usage()
    failed = failed_events(alice)
    assert sum(d["count"] for d in failed) == stats.checked  # every refusal counted
    assert all("throttled" not in d for d in failed)


@pytest.mark.parametrize("warm", [False, True])
def test_a_new_real_secret_verifies_while_4_threads_flood_its_key(make_service, argon2_calls, warm):
    alice = make_service("alice")
    flooded = alice.create_key("flooded", expires=None)
    verifier = make_service("alice", warm=warm)
    flood = [[new_secret(flooded.key.id) for _ in range(300)] for _ in range(4)]
    start = threading.Barrier(5)
    codes: list[str] = []

    def attack(secrets: list[str]) -> None:
        start.wait()
        codes.extend(verifier.verify(s).code for s in secrets)

    threads = [threading.Thread(target=attack, args=(batch,)) for batch in flood]
    for thread in threads:
        thread.start()
    start.wait()
    answers = [verifier.verify(flooded.secret).code for _ in range(20)]
    for thread in threads:
        thread.join()
    assert answers == ["VALID"] * 20  # the first try included: never THROTTLED
    assert set(codes) == {"NOT_FOUND"} and len(codes) == 1200
    assert len(argon2_calls) == 1  # the real secret's one run; the flood's: none


def test_wrong_secrets_that_pass_the_check_are_bounded_by_the_reserve(
    make_service, clock, argon2_calls, monkeypatch
):
    """One wrong secret in 2**32 passes the check value: what if an attacker found many? They
    take argon2 runs from the key's reserve, at most its burst and then its rate."""
    alice = make_service("alice")
    flooded = alice.create_key("flooded", expires=None)
    verifier = make_service("alice", warm=False)
    monkeypatch.setattr(verify_module, "check_of", lambda stored: b"same")
    monkeypatch.setattr(verify_module, "check_value", lambda secret: b"same")
    codes = [verifier.verify(new_secret(flooded.key.id) + " ").code for _ in range(100)]
    assert len(argon2_calls) == FLOOD_BURST  # the clock stands still: no refill
    assert codes.count("NOT_FOUND") == FLOOD_BURST and codes.count("THROTTLED") == 95
    verifier.flush_usage()  # every refusal counted once, the unchecked ones among them
    (event,) = alice.list_events(action="key.verify_failed")
    assert (event.details["count"], event.details["throttled"]) == (100, 95)
    assert alice.key_usage(flooded.key.id).outcomes_24h["throttled"] == 95
    runs = len(argon2_calls)
    for _ in range(5):
        clock.advance(seconds=1)
        for _ in range(20):
            verifier.verify(new_secret(flooded.key.id) + " ")
    assert len(argon2_calls) - runs <= 5 * FLOOD_RATE


@pytest.mark.parametrize("warm", [False, True])
def test_a_flood_against_a_hash_without_check_value_is_bounded_by_the_bucket(
    make_service, clock, argon2_calls, warm
):
    """A hash made before check values: each wrong secret needs argon2, the bucket bounds them;
    once the real secret verifies, its hash gets a check value and the flood costs nothing."""
    alice = make_service("alice")
    flooded = alice.create_key("flooded", expires=None)
    bystander = alice.create_key("bystander", expires=None)
    legacy = FAST_HASHER.hash(flooded.secret)  # a 16-byte salt: no check value
    with alice.db.write() as session:
        session.execute(update(Key).where(Key.key_id == flooded.key.id).values(secret_hash=legacy))
    verifier = make_service("alice", warm=warm)
    codes = [verifier.verify(new_secret(flooded.key.id)).code for _ in range(200)]
    assert len(argon2_calls) == FLOOD_BURST  # the clock stands still: no refill
    assert set(codes) == {"NOT_FOUND", "THROTTLED"}
    assert codes.count("NOT_FOUND") == FLOOD_BURST
    assert verifier.verify(bystander.secret).valid  # other keys keep their argon2
    # the real secret of such a hash competes with the flood for the bucket...
    runs = len(argon2_calls)
    assert verifier.verify(flooded.secret).code == "THROTTLED"
    assert len(argon2_calls) == runs
    clock.advance(seconds=1 / FLOOD_RATE)
    assert verifier.verify(flooded.secret).valid  # ...one refill later
    verifier.flush_usage()  # the hash gets its check value (same strength)
    with alice.db.read() as session:
        stored = session.scalar(select(Key.secret_hash).where(Key.key_id == flooded.key.id))
    assert stored != legacy and check_of(stored) == check_value(flooded.secret)
    runs = len(argon2_calls)
    for _ in range(10):  # 10 s more of flood: refused by the check value from now on
        clock.advance(seconds=1)
        for _ in range(50):
            assert verifier.verify(new_secret(flooded.key.id)).code == "NOT_FOUND"
    assert len(argon2_calls) == runs and verifier.verify(flooded.secret).valid
    verifier.flush_usage()
    failed = failed_events(alice)
    assert sum(d["count"] for d in failed) == 200 + 1 + 500  # every refusal counted
    assert sum(d.get("throttled", 0) for d in failed) == 200 - FLOOD_BURST + 1


def test_a_repeated_wrong_secret_costs_one_argon2_run(make_service, clock, argon2_calls):
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", warm=False)
    old = issued.secret
    assert verifier.verify(old).valid  # matched here once
    alice.replace_key(issued.key.id)  # a client still sends the old secret
    for _ in range(50):
        assert verifier.verify(old).code == "NOT_FOUND"
    assert len(argon2_calls) == 1  # once valid; the new hash's check value refuses it after
    # a hash without a check value: found wrong by argon2 once, then never again
    clock.advance(seconds=FLOOD_BURST / FLOOD_RATE)  # (the 50 refusals emptied the bucket)
    with alice.db.write() as session:
        session.execute(
            update(Key)
            .where(Key.key_id == issued.key.id)
            .values(secret_hash=FAST_HASHER.hash(new_secret(issued.key.id)))
        )
    for _ in range(50):
        assert verifier.verify(old).code == "NOT_FOUND"
    assert len(argon2_calls) == 2


# -- separate processes -------------------------------------------------------------------------

CHILD = """
import sys, time
from keytui.core.db import open_database
from keytui.core.hashing import make_hasher
from keytui.core.service import KeyService
service = KeyService(open_database(sys.argv[1]), warm=True,
                     hasher=make_hasher(time_cost=1, memory_cost=1024))
secrets = sys.argv[2:]
while not (all(service.verify(s).valid for s in secrets)
           and service.verifier.answering_from_memory):
    time.sleep(0.01)
print("ready", flush=True)
left = dict(enumerate(secrets))
while left:
    for i, s in list(left.items()):
        code = service.verify(s).code
        if code != "VALID":
            print(i, code, time.monotonic(), flush=True)
            del left[i]
    time.sleep(0.001)
service.close()
"""


@pytest.mark.clock
def test_changes_by_the_cli_reach_a_verifier_process(make_service, db_url, tmp_path):
    """revoke, replace, delete (the CLI, as another process) and keys disabled are refused by
    a verifier process that answers from memory; the times are printed, not asserted."""
    admin = make_service(current_login())
    issued = [admin.create_key(f"k{i}", expires=None) for i in range(4)]
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    env.pop("KEYTUI_DATABASE_URL", None)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, *(i.secret for i in issued)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in child.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=90).strip() == "ready"
        commands = [
            ("keys", "revoke", issued[0].key.id, "--yes"),
            ("keys", "replace", issued[1].key.id, "--yes"),
            ("keys", "delete", issued[2].key.id, "--yes"),
            ("settings", "set", "--disable"),
        ]
        expected = ["REVOKED", "NOT_FOUND", "NOT_FOUND", "DISABLED"]
        delays = []
        for index, command in enumerate(commands):
            subprocess.run(
                [str(KEYTUI), "--db", db_url, *command],
                check=True,
                capture_output=True,
                env=env,
                timeout=60,
            )
            returned = time.monotonic()
            which, code, at = lines.get(timeout=60).split()
            assert (int(which), code) == (index, expected[index])
            delays.append(float(at) - returned)
        print("refused after the CLI returned (s):", [f"{d:.3f}" for d in delays])
        assert child.wait(60) == 0
    finally:
        child.kill()
        child.wait()


def test_a_change_through_the_same_service_is_seen_by_its_next_verify(make_service):
    service = make_service("alice", warm=True)
    issued = service.create_key("k", expires=None)
    warmed(service, issued.secret)
    service.revoke_key(issued.key.id)
    assert service.verify(issued.secret).code == "REVOKED"  # no wait for its own watcher


# -- the lease, a deleted file ------------------------------------------------------------------


def test_the_lease_runs_from_the_read_that_proved_the_connection(make_service, monkeypatch):
    """A watcher thread that stalls after its read (a loaded machine) must not stretch the
    time memory is trusted: the lease is timed from when the read began."""
    from keytui.core.changes import LEASE_SECONDS

    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_service("alice", warm=True)
    warmed(verifier, issued.secret)
    watcher = verifier.verifier.watcher
    began: list[float] = []
    after: list[float] = []  # each vouch: its sure_until less the start of the read before it
    real_rows, real_vouch = watcher._rows, watcher._vouch

    def rows(raw, sql, params=()):
        began.append(time.monotonic())
        found = real_rows(raw, sql, params)
        time.sleep(LEASE_SECONDS * 2)  # stalled between the read and the vouch
        return found

    def vouch(proved):
        real_vouch(proved)
        after.append(watcher.sure_until - began[-1])

    monkeypatch.setattr(watcher, "_rows", rows)
    monkeypatch.setattr(watcher, "_vouch", vouch)
    assert wait_until(lambda: len(after) >= 3, 10)
    assert all(lease <= LEASE_SECONDS for lease in after), after
    # memory is not trusted while the stalled watcher has proved nothing for a lease
    assert wait_until(lambda: not verifier.verifier.answering_from_memory, 10)


def test_a_deleted_database_file_clears_the_verifiers_memory(make_sqlite_service, caplog):
    alice = make_sqlite_service("alice")
    issued = alice.create_key("k", expires=None)
    verifier = make_sqlite_service("alice", warm=True)
    warmed(verifier, issued.secret)
    verifier.verify(new_secret(issued.key.id))
    assert verifier.verifier._known and verifier.verifier._checks  # and its check value
    path = Path(verifier.db.sqlite_path)
    path.rename(path.with_name(path.name + ".moved"))  # gone from its path
    with caplog.at_level(logging.WARNING, logger="keytui.verify"):
        assert wait_until(lambda: verifier.verifier.watcher is None, 10)
    assert "deleted or replaced" in caplog.text
    assert not verifier.verifier._known and not verifier.verifier._checks
    assert not verifier.verifier.answering_from_memory
    seen = statements(verifier)
    assert verifier.verify(issued.secret).valid  # read through, from the file it opened
    assert seen and verifier.verifier.watcher is None  # and no watcher starts again
    assert not verifier.verifier._known


@pytest.mark.parametrize("change", ["revoke", "replace", "delete", "disable"])
def test_a_verify_racing_a_change_here_is_not_kept_past_its_commit(make_service, change):
    """A verify on another thread of the same service, reading the row after the change
    dropped the key from memory but before it committed, reads the old state (VALID) and
    would keep it until the watcher hears the commit: the commit drops it again, so a verify
    after the call returns is refused at once."""
    alice = make_service("alice")
    issued = alice.create_key("k", expires=None)
    service = make_service("alice", warm=True)
    warmed(service, issued.secret)
    seen: list[str] = []
    forget = service.verifier.forget

    def forget_then_race(what) -> None:  # first called inside the change's transaction
        forget(what)
        if not seen:
            racer = threading.Thread(target=lambda: seen.append(service.verify(issued.secret).code))
            racer.start()
            racer.join(30)

    service.verifier.forget = forget_then_race
    if change == "revoke":
        service.revoke_key(issued.key.id)
    elif change == "replace":
        service.replace_key(issued.key.id)
    elif change == "delete":
        service.delete_keys([issued.key.id])
    else:
        service.update_settings(keys_enabled=False)
    assert seen == ["VALID"]  # the race happened: the old state was read and answered
    assert not service.verify(issued.secret).valid
