"""The tamper-evident audit log: every event chained to the one before it (issue 5).

Each test changes the events table behind keytui's back, as someone with write access to the
database would, and checks that ``verify_event_chain`` and ``keytui events verify`` name the first
event that no longer holds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from keytui.cli import main
from keytui.core import audit
from keytui.core.db import HEAD_REVISION, alembic_config
from keytui.core.demo import seed_demo
from keytui.core.models import Event


def busy(service) -> list[str]:
    """A few keys through every kind of change: a dozen or so events."""
    ids = []
    for index in range(4):
        ids.append(service.create_key(f"key {index}").key.id)
    service.rename_key(ids[0], "renamed", "with a description")
    service.replace_key(ids[1])
    service.revoke_keys(ids[2:])
    service.add_user("bob", "developer")
    service.update_settings(max_keys_per_user=50)
    return ids


def execute(service, sql: str, **params) -> None:
    with service.db.engine.begin() as connection:
        connection.execute(text(sql), params)


def event_ids(service) -> list[int]:
    with service.db.read() as session:
        return list(session.scalars(select(Event.id).order_by(Event.id)))


def test_head_revision_matches_alembic():
    from alembic.script import ScriptDirectory

    from keytui.core.db import Database

    class Fake(Database):
        def __init__(self):
            self.url = "sqlite://"

    script = ScriptDirectory.from_config(alembic_config(Fake()))
    assert script.get_current_head() == HEAD_REVISION


def test_every_event_is_chained(admin):
    busy(admin)
    with admin.db.read() as session:
        rows = session.execute(select(Event).order_by(Event.id)).scalars().all()
    assert len(rows) >= 9
    previous = audit.GENESIS
    for row in rows:
        assert row.prev_hash == previous
        expected = hashlib.sha256(
            (
                previous
                + audit.canonical(row.at, row.actor, row.action, row.key_id, row.face, row.details)
            ).encode()
        ).hexdigest()
        assert row.hash == expected
        previous = row.hash
    status = admin.verify_event_chain()
    assert status.ok and status.count == len(rows) and status.last_hash == previous
    assert status.message() == f"chain intact, {len(rows)} events"


def test_chain_covers_bulk_revoke_demo_seed_and_verify_failures(admin):
    seed_demo(admin, 300)
    active = [key.id for key in admin.iter_keys() if key.status == "active"]
    plan = admin.revoke_keys(active)
    assert len(plan.revoke) == len(active) > 100
    issued = admin.create_key("real")
    admin.replace_key(issued.key.id)
    for _ in range(25):
        assert admin.verify(issued.secret).code == "NOT_FOUND"  # the old secret
    admin.flush_usage()
    status = admin.verify_event_chain()
    assert status.ok, status.message()
    failures = admin.list_events(action="verify_failed")
    assert len(failures) == 1 and failures[0].details["count"] == 25
    assert failures[0].key_id == issued.key.id
    with admin.db.read() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Event).where(Event.action == "demo.seed")
            )
            == 1
        )


@pytest.mark.parametrize(
    "column, value",
    [
        ("actor", "mallory"),
        ("details", '{"name":"innocent"}'),
        ("action", "key.delete"),
        ("key_id", "0000000000"),
        ("face", "tui"),
    ],
)
def test_altered_event_is_named(admin, column, value):
    busy(admin)
    victim = event_ids(admin)[4]
    execute(admin, f"UPDATE events SET {column} = :value WHERE id = :id", value=value, id=victim)
    status = admin.verify_event_chain()
    assert not status.ok
    assert status.first_bad_id == victim
    assert "altered" in status.reason
    assert status.count == 4  # the events before it hold


def test_altered_time_is_named(admin):
    busy(admin)
    victim = event_ids(admin)[3]
    with admin.db.write() as session:
        at = session.get(Event, victim).at
        session.execute(update(Event).where(Event.id == victim).values(at=at.replace(year=2020)))
    assert admin.verify_event_chain().first_bad_id == victim


def test_recomputed_hash_still_breaks_the_next_link(admin):
    """Someone who alters an event and fixes its own hash breaks the link of the next one."""
    busy(admin)
    ids = event_ids(admin)
    victim = ids[2]
    with admin.db.write() as session:
        row = session.get(Event, victim)
        row.details = '{"forged":true}'
        row.hash = audit.chain_hash(
            row.prev_hash,
            {
                "at": row.at,
                "actor": row.actor,
                "action": row.action,
                "key_id": row.key_id,
                "face": row.face,
                "details": row.details,
            },
        )
    status = admin.verify_event_chain()
    assert status.first_bad_id == ids[3]
    assert "removed" in status.reason


def test_removed_event_is_named(admin):
    busy(admin)
    ids = event_ids(admin)
    execute(admin, "DELETE FROM events WHERE id = :id", id=ids[5])
    status = admin.verify_event_chain()
    assert not status.ok and status.first_bad_id == ids[6]
    assert f"after event {ids[4]} was removed" in status.reason


def test_removed_first_event_is_named(admin):
    busy(admin)
    ids = event_ids(admin)
    execute(admin, "DELETE FROM events WHERE id = :id", id=ids[0])
    status = admin.verify_event_chain()
    assert status.first_bad_id == ids[1] and "start of the log" in status.reason


def test_reordered_events_are_named(admin):
    """Swap two events' contents (and hashes) between their rows: the order no longer holds."""
    busy(admin)
    ids = event_ids(admin)
    a, b = ids[3], ids[4]
    columns = ("at", "actor", "action", "key_id", "face", "details", "prev_hash", "hash")
    with admin.db.write() as session:
        first, second = session.get(Event, a), session.get(Event, b)
        values_a = {c: getattr(first, c) for c in columns}
        values_b = {c: getattr(second, c) for c in columns}
        session.execute(update(Event).where(Event.id == a).values(**values_b))
        session.execute(update(Event).where(Event.id == b).values(**values_a))
    status = admin.verify_event_chain()
    assert status.first_bad_id == a
    assert "reordered" in status.reason and f"follows event {b}" in status.reason


def test_deleting_a_key_keeps_its_events(admin):
    issued = admin.create_key("doomed")
    admin.rename_key(issued.key.id, "still doomed")
    admin.revoke_key(issued.key.id)
    before = [e.action for e in admin.list_events(key_id=issued.key.id)]
    admin.delete_keys([issued.key.id])
    after = [e.action for e in admin.list_events(key_id=issued.key.id)]
    assert after == ["key.delete", *before]
    assert before == ["key.revoke", "key.rename", "key.create"]
    assert admin.verify_event_chain().ok


def test_events_verify_cli(admin, db_url):
    from keytui.core.identity import current_login

    busy(admin)
    admin.add_user(current_login(), "viewer")  # the CLI acts as this process's login
    runner = CliRunner()
    count = len(event_ids(admin))
    result = runner.invoke(main, ["events", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"chain intact, {count} events"
    victim = event_ids(admin)[2]
    execute(admin, "UPDATE events SET actor = 'mallory' WHERE id = :id", id=victim)
    result = runner.invoke(main, ["events", "verify", "--db", db_url])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"keytui: audit chain broken at event {victim}: its content or hash was altered"
    )
    result = runner.invoke(main, ["events", "verify", "--json", "--db", db_url])
    assert result.exit_code == 1
    assert f'"first_bad_id": {victim}' in result.stdout


def test_concurrent_writers_in_threads_never_fork_the_chain(make_service):
    """Threads of two services on one database: every event chains onto a distinct one."""
    import threading

    alice = make_service("alice")
    alice.add_user("bob", "admin")
    bob = make_service("bob")
    errors: list[BaseException] = []

    def work(service, prefix):
        try:
            for index in range(15):
                key = service.create_key(f"{prefix} {index}").key
                service.rename_key(key.id, f"{prefix} {index} renamed")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, p))
        for s, p in ((alice, "a"), (bob, "b"), (alice, "c"), (bob, "d"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with alice.db.read() as session:
        prev = list(session.scalars(select(Event.prev_hash)))
    assert len(prev) == len(set(prev)) == 2 + 4 * 30
    assert alice.verify_event_chain().ok


_TEXT = st.text(st.characters(), max_size=30)  # any code point: quotes, controls, astral


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(timezones=st.just(UTC)),
    actor=_TEXT,
    action=_TEXT,
    key_id=st.none() | _TEXT,
    face=_TEXT,
    details=st.dictionaries(_TEXT, _TEXT | st.none()),
)
def test_canonical_is_sorted_compact_ascii_json(at, actor, action, key_id, face, details):
    """The hand-spelled canonical text is exactly what json.dumps gives (hashes depend on it)."""
    assert audit.details_json(details) == json.dumps(details, sort_keys=True, separators=(",", ":"))
    details = audit.details_json(details)
    moment = at.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    expected = json.dumps(
        {
            "at": moment,
            "actor": actor,
            "action": action,
            "key_id": key_id,
            "face": face,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    assert audit.canonical(at, actor, action, key_id, face, details) == expected
    assert audit.canonical(moment, actor, action, key_id, face, details) == expected


def test_every_action_the_service_records_is_one_the_events_filter_offers(admin):
    from keytui.core.values import EVENT_ACTIONS

    ids = busy(admin)
    admin.set_user_role("bob", "viewer")
    admin.remove_user("bob")
    admin.add_role("ops")
    admin.set_role_developers("ops", True)
    admin.remove_role("ops")
    admin.delete_keys([ids[0]])
    seed_demo(admin, 10)
    issued = admin.create_key("probe")
    admin.replace_key(issued.key.id)
    assert not admin.verify(issued.secret).valid  # the old secret: a failed verify
    admin.flush_usage()
    recorded = {event.action for event in admin.list_events(limit=1000)}
    assert recorded == set(EVENT_ACTIONS)
