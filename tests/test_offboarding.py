"""Removing a user (issue 10): their keys keep working unless revoked with them, and keytui
says which. In the service (SQLite and PostgreSQL) and at the command line."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner

from keytui.cli import main
from keytui.core.identity import current_login
from keytui.core.service import KeyQuery, KeyService

from .conftest import FAST_HASHER


def test_removing_a_user_says_their_keys_still_work(admin, make_service):
    admin.add_user("bob", "developer")
    bob = make_service("bob")
    keys = [bob.create_key(f"bob {n}") for n in range(3)]
    bob.revoke_key(keys[2].key.id)  # not active: not counted
    assert admin.remove_user("bob") == 2
    assert all(admin.verify(issued.secret).valid for issued in keys[:2])
    event = admin.list_events(limit=1)[0]
    assert (event.action, event.details) == (
        "user.remove",
        {"login": "bob", "role": "developer", "active_keys": 2},
    )


def test_removing_a_user_with_their_keys_revokes_them_at_once(admin, make_service, clock):
    admin.add_user("bob", "developer")
    bob = make_service("bob")
    keys = [bob.create_key(f"bob {n}") for n in range(3)]
    expired = bob.create_key("bob old", expires=clock() + timedelta(days=1))
    revoked_before = bob.create_key("bob revoked")
    bob.revoke_key(revoked_before.key.id)
    mine = admin.create_key("alice's")
    events_before = admin.verify_event_chain().count
    clock.advance(days=2)  # "bob old" has expired: not active, left alone

    assert admin.remove_user("bob", revoke_keys=True) == 3
    for issued in keys:
        assert admin.verify(issued.secret).code == "REVOKED"
    assert admin.get_key(expired.key.id).status == "expired"
    assert admin.get_key(revoked_before.key.id).revoked_by == "bob"
    assert admin.verify(mine.secret).valid
    events = admin.list_events(limit=4)
    assert [e.action for e in events] == ["user.remove", "key.revoke", "key.revoke", "key.revoke"]
    assert events[0].details == {"login": "bob", "role": "developer", "revoked_keys": 3}
    assert {e.key_id for e in events[1:]} == {k.key.id for k in keys}
    assert all(e.details["reason"] == "owner removed" for e in events[1:])
    assert admin.verify_event_chain().count == events_before + 4
    assert admin.verify_event_chain().ok


def test_a_refused_removal_revokes_nothing(admin, make_service):
    admin.add_user("bob", "developer")
    bob = make_service("bob")
    issued = admin.create_key("alice's")
    try:
        bob.remove_user("alice", revoke_keys=True)
    except Exception as exc:  # noqa: BLE001 - the refusal itself is checked below
        assert "may not manage users" in str(exc)
    assert admin.verify(issued.secret).valid
    assert admin.list_events(limit=1)[0].action == "key.create"


def test_cli_users_remove_says_and_revokes(tmp_path):
    db = str(tmp_path / "k.db")
    me = current_login()
    service = KeyService.open(db, actor=me, hasher=FAST_HASHER)
    service.add_user("bob", "developer")
    service.add_user("carol", "developer")
    service.add_user("dave", "viewer")
    service.create_key("bob 1", owner="bob")
    service.create_key("bob 2", owner="bob")
    carols = service.create_key("carol 1", owner="carol")
    service.close()

    runner = CliRunner()
    result = runner.invoke(main, ["users", "remove", "bob", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "Removed bob. Their 2 active keys still work; see them with: "
        "keytui keys list --owner bob --status active"
    )
    result = runner.invoke(main, ["users", "remove", "carol", "--revoke-keys", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Removed carol and revoked their 1 active key."
    result = runner.invoke(main, ["users", "remove", "dave", "--db", db])
    assert result.stdout.strip() == "Removed dave (no active keys)."

    service = KeyService.open(db, actor=me, hasher=FAST_HASHER)
    try:
        assert service.verify(carols.secret).code == "REVOKED"
        bobs = service.iter_keys(KeyQuery(owner="bob"))
        assert [k.status for k in bobs] == ["active", "active"]
    finally:
        service.close()
