"""Issue 10, "Bypasses": demo data only into a database of one's own, the key roles developers
may grant, and --read-only as read-only on every face. Each rule is the service's."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import func, select

from keytui.core.demo import seed_demo
from keytui.core.errors import Conflict, PermissionDenied, ReadOnly
from keytui.core.models import Event, Key, KeyRole, User

from .test_cli import KEYTUI, ME, check_stderr, env, service_on

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

__all__ = ["env"]  # the CLI tests' fixture


def table_counts(service) -> tuple[int, ...]:
    with service.db.read() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Key, User, KeyRole, Event)
        )


def test_developers_grant_only_the_roles_admins_allow(make_service):
    alice = make_service("alice")
    alice.add_user("bob", "developer")
    bob = make_service("bob")
    assert bob.grantable_roles() == ["read-only"]
    assert alice.grantable_roles() == ["read-only", "read-write"]
    assert bob.key_defaults().role == "read-only"
    assert bob.create_key("ro", role="read-only").key.role == "read-only"
    before = table_counts(alice)
    with pytest.raises(PermissionDenied, match="may not create keys with the role read-write"):
        bob.create_key("rw", role="read-write")
    assert table_counts(alice) == before
    assert alice.create_key("rw for bob", owner="bob", role="read-write").key.owner == "bob"
    alice.set_role_developers("read-write", True)
    assert bob.create_key("rw", role="read-write").key.role == "read-write"
    alice.add_role("deploy")
    with pytest.raises(PermissionDenied):
        bob.create_key("deploy", role="deploy")
    alice.set_role_developers("read-write", False)
    with pytest.raises(PermissionDenied):
        bob.create_key("rw again", role="read-write")
    with pytest.raises(PermissionDenied):
        bob.set_role_developers("deploy", True)
    assert alice.list_role_grants() == [
        ("deploy", False),
        ("read-only", True),
        ("read-write", False),
    ]
    assert [e.details for e in alice.list_events(action="role.update")] == [
        {"role": "read-write", "developers": [True, False]},
        {"role": "read-write", "developers": [False, True]},
    ]


def test_a_read_only_service_refuses_every_change(make_service):
    alice = make_service("alice")
    key = alice.create_key("k").key.id
    alice.add_user("bob", "developer")
    reader = make_service("alice", read_only=True)
    before = table_counts(alice)
    for change in (
        lambda: reader.create_key("x"),
        lambda: reader.replace_key(key),
        lambda: reader.rename_key(key, "y"),
        lambda: reader.revoke_key(key),
        lambda: reader.revoke_keys([key]),
        lambda: reader.delete_keys([key]),
        lambda: reader.update_settings(max_keys_per_user=5),
        lambda: reader.add_user("carol", "viewer"),
        lambda: reader.set_user_role("bob", "viewer"),
        lambda: reader.remove_user("bob"),
        lambda: reader.add_role("deploy"),
        lambda: reader.remove_role("read-write"),
        lambda: reader.set_role_developers("read-write", True),
        lambda: seed_demo(reader, 3),
    ):
        with pytest.raises(ReadOnly, match="read-only"):
            change()
    assert table_counts(alice) == before
    assert not reader.permits("create")
    assert reader.get_key(key).name == "k"  # reading still works


def test_demo_seeds_only_a_database_whose_only_user_is_the_caller(make_service):
    alice = make_service("alice")
    alice.add_user("victor", "viewer")
    victor = make_service("victor")
    before = table_counts(alice)
    with pytest.raises(Conflict, match="only user is you"):
        seed_demo(victor, 20)
    with pytest.raises(Conflict, match="only user is you"):
        seed_demo(alice, 20)  # an admin too: the others would get demo users and keys
    assert table_counts(alice) == before


def test_demo_on_a_real_database_is_refused_from_the_cli(env, tmp_path):
    real = str(tmp_path / "real.db")
    service = service_on(real, actor="root-admin")
    service.add_user(ME, "viewer")
    before = table_counts(service)
    result = subprocess.run(
        [str(KEYTUI), "demo", "--db", real, "--keys", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # after "Seeding 5 demo keys…"
    assert last.startswith("keytui: ") and "only user is you" in last
    assert table_counts(service) == before
    service.close()


def test_read_only_flag_refuses_changes_from_the_cli(env, tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    key = service.create_key("k").key.id
    before = table_counts(service)
    for args in (
        ["keys", "create", "--name", "x"],
        ["keys", "revoke", key, "--yes"],
        ["keys", "rename", key, "y"],
        ["roles", "add", "deploy"],
        ["settings", "set", "--disable"],
    ):
        result = subprocess.run(
            [str(KEYTUI), "--read-only", *args, "--db", db],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        check_stderr(result.stderr, 1, False)
        assert "read-only" in result.stderr
        assert result.stdout == ""
    assert table_counts(service) == before
    service.close()
