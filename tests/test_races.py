"""Races that would break the rules (issue 10), on SQLite and PostgreSQL.

Each scenario starts its two sides from a ``threading.Barrier`` (two KeyServices, each with its
own engine, so separate connections) and runs ROUNDS times; the rule must hold every time:
"the last admin cannot be removed or demoted", "only the first opener becomes admin", "a removed
key role is held by no key", and "writers over the same keys never deadlock". The first-opener
race runs from separate processes too, started together from a file they wait for.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import func, select, text

from keytui.core.db import open_database
from keytui.core.errors import KeytuiError
from keytui.core.models import Event, Key, KeyRole, User
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, reset_postgres

ROUNDS = 20


def race(*sides: Callable[[], Any]) -> list[Any]:
    """Run the sides at once from a barrier; each result is its return value or the
    KeytuiError it raised (a refusal); anything else fails the test."""
    barrier = threading.Barrier(len(sides))
    results: list[Any] = [None] * len(sides)
    crashes: list[BaseException] = []

    def run(index: int, side: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = side()
        except KeytuiError as exc:
            results[index] = exc
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            crashes.append(exc)

    threads = [threading.Thread(target=run, args=(i, side)) for i, side in enumerate(sides)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if crashes:
        raise crashes[0]
    return results


def admins(service: KeyService) -> list[str]:
    with service.db.read() as session:
        return list(session.scalars(select(User.login).where(User.role == "admin")))


# ---------------------------------------------------------------------------------------------
# The last admin


@pytest.mark.parametrize("how", ["remove", "demote"])
def test_two_admins_removing_each_other_leave_an_admin(make_service, how):
    alice = make_service("alice")
    alice.add_user("bob", "admin")
    bob = make_service("bob")
    services = {"alice": alice, "bob": bob}
    outcomes = set()
    for _round in range(ROUNDS):
        for login in ("alice", "bob"):  # both admins again, from whichever is left
            survivor = services[admins(alice)[0]]
            survivor.put_user(login, "admin")

        def strike(actor: KeyService, target: str) -> Callable[[], Any]:
            if how == "remove":
                return lambda: actor.remove_user(target)
            return lambda: actor.set_user_role(target, "developer")

        results = race(strike(alice, "bob"), strike(bob, "alice"))
        assert admins(alice), f"no admin left after {results}"
        outcomes.add(tuple(isinstance(r, KeytuiError) for r in results))
        assert outcomes <= {(True, False), (False, True)}  # exactly one side refused
    assert services[admins(alice)[0]].verify_event_chain().ok


# ---------------------------------------------------------------------------------------------
# The first opener


def clear_users(service: KeyService) -> None:
    with service.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM users"))
        connection.execute(text("DELETE FROM events"))


def test_two_first_openers_make_one_admin(db_url, clock):
    one = KeyService(open_database(db_url), actor="alice", hasher=FAST_HASHER, clock=clock)
    two = KeyService(open_database(db_url), actor="bob", hasher=FAST_HASHER, clock=clock)
    try:
        for _round in range(ROUNDS):
            clear_users(one)
            race(one.bootstrap, two.bootstrap)
            with one.db.read() as session:
                users = session.execute(select(User.login, User.role)).all()
                events = session.scalar(select(func.count()).select_from(Event))
            assert len(users) == 1 and users[0].role == "admin", users
            assert events == 1  # one user.add
    finally:
        one.close()
        two.close()


OPENER = textwrap.dedent("""
    import sys, time, traceback
    from pathlib import Path
    from keytui.core.service import KeyService

    actor, folder, rounds = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    for n in range(rounds):
        go = folder / f"go-{n}"
        while not go.exists():
            time.sleep(0.001)
        url = go.read_text()
        try:
            service = KeyService.open(url, actor=actor)
            role = service.whoami()
            service.close()
            answer = role.role if role else "none"
        except Exception:
            answer = "error " + traceback.format_exc()
        (folder / f"done-{n}-{actor}.tmp").write_text(answer)
        (folder / f"done-{n}-{actor}.tmp").rename(folder / f"done-{n}-{actor}")
""")


@pytest.mark.clock
def test_two_first_opener_processes_make_one_admin(db_url, tmp_path):
    """Two processes open a database that does not exist yet (SQLite: no file; PostgreSQL: an
    empty schema), each round at the same moment: one admin, and the other is nobody."""
    script = tmp_path / "opener.py"
    script.write_text(OPENER)
    folder = tmp_path / "rounds"
    folder.mkdir()
    actors = ("alice", "bob")
    children = [
        subprocess.Popen(
            [sys.executable, str(script), actor, str(folder), str(ROUNDS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for actor in actors
    ]
    try:
        for n in range(ROUNDS):
            if db_url.startswith("postgresql"):
                reset_postgres(db_url)
                url = db_url
            else:
                url = str(tmp_path / f"round-{n}.db")
            (folder / f"go-{n}.tmp").write_text(url)
            (folder / f"go-{n}.tmp").rename(folder / f"go-{n}")
            answers = {}
            deadline = time.monotonic() + 120
            for actor, child in zip(actors, children, strict=True):
                done = folder / f"done-{n}-{actor}"
                while not done.exists():
                    assert child.poll() is None or done.exists(), child.communicate()
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                answers[actor] = done.read_text()
            assert sorted(answers.values()) == ["admin", "none"], answers
            service = KeyService(open_database(url), actor="alice", hasher=FAST_HASHER)
            try:
                assert [u.role for u in service.list_users()] == ["admin"]
            except KeytuiError:  # alice was not the first: bob is the one admin
                assert answers["bob"] == "admin"
            finally:
                service.close()
    except BaseException:
        for child in children:
            child.kill()
        raise
    finally:
        for child in children:
            child.communicate(timeout=60)


# ---------------------------------------------------------------------------------------------
# A key role removed while a key is created with it


def test_a_role_removed_while_a_key_is_created_with_it(make_service):
    """An admin removes a key role while another user creates a key with it: either the key
    exists and the role stays, or the role is gone and the key was refused. (The creator is an
    admin too, so the test is about the race, not about which roles a developer may grant.)"""
    alice = make_service("alice")
    alice.add_user("bob", "admin")
    bob = make_service("bob")
    for n in range(ROUNDS):
        role = alice.add_role(f"temp-{n}")
        removed, created = race(
            partial(alice.remove_role, role), partial(bob.create_key, f"key {n}", role=role)
        )
        with alice.db.read() as session:
            role_exists = session.get(KeyRole, role) is not None
            holders = session.scalar(select(func.count()).select_from(Key).where(Key.role == role))
        assert role_exists or not holders, (removed, created)
        assert isinstance(removed, KeytuiError) != isinstance(created, KeytuiError)
    orphans = select(func.count()).select_from(Key).where(Key.role.not_in(select(KeyRole.name)))
    with alice.db.read() as session:
        assert session.scalar(orphans) == 0


# ---------------------------------------------------------------------------------------------
# Writers over the same keys, in different orders


KEYS_PER_ROUND = 30


@pytest.mark.parametrize("other", ["delete", "revoke"])
def test_writers_over_the_same_keys_never_deadlock(make_service, other):
    """One admin deletes keys in one order while another deletes or revokes the same keys in
    the opposite order: no deadlock, each either does it all or is refused cleanly."""
    alice = make_service("alice")
    alice.add_user("bob", "admin")
    bob = make_service("bob")
    for n in range(ROUNDS):
        ids = [alice.create_key(f"r{n} k{j}").key.id for j in range(KEYS_PER_ROUND)]
        backwards = list(reversed(ids))
        second = bob.delete_keys if other == "delete" else bob.revoke_keys
        first_result, _second_result = race(
            partial(alice.delete_keys, backwards), partial(second, ids)
        )
        with alice.db.read() as session:
            left = session.scalar(select(func.count()).select_from(Key).where(Key.key_id.in_(ids)))
        assert left == 0  # someone deleted them all (a deadlock would have crashed a side)
        if other == "revoke":  # revoking first leaves them deletable
            assert not isinstance(first_result, KeytuiError), first_result
    assert alice.verify_event_chain().ok
