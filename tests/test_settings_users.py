"""Installation settings, users and key roles: admins only, and the rules that guard them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keytui.core.errors import Conflict, InvalidInput, LimitReached, NotFound, PermissionDenied
from keytui.core.service import UNSET

from .conftest import NOW
from .test_service import events_of, snapshot


@pytest.fixture
def team(make_service, admin):
    """alice (admin), bob (developer), dave (viewer)."""
    admin.add_user("bob", "developer")
    admin.add_user("dave", "viewer")
    return {"alice": admin, "bob": make_service("bob"), "dave": make_service("dave")}


# -- settings -----------------------------------------------------------------------------------


def test_keys_disabled_refuses_verify_and_create(admin):
    issued = admin.create_key("k")
    admin.update_settings(keys_enabled=False)
    assert admin.verify(issued.secret).code == "DISABLED"
    before = snapshot(admin)
    with pytest.raises(LimitReached, match="disabled"):
        admin.create_key("new")
    assert snapshot(admin) == before
    admin.update_settings(keys_enabled=True)
    assert admin.verify(issued.secret).code == "VALID"
    [off, on] = reversed(events_of(admin, "settings.update"))
    assert off.details == {"keys_enabled": [True, False]}
    assert on.details == {"keys_enabled": [False, True]}


def test_max_expiry_applies_to_new_keys_only(admin):
    forever = admin.create_key("forever")
    admin.update_settings(max_expiry_days=30)
    assert admin.get_key(forever.key.id).expires_at is None
    assert admin.verify(forever.secret).valid
    assert admin.create_key("default").key.expires_at == NOW + timedelta(days=30)
    assert admin.create_key("short", expires="7d").key.expires_at == NOW + timedelta(days=7)
    assert admin.create_key("exact", expires="30d").key.expires_at == NOW + timedelta(days=30)
    before = snapshot(admin)
    for expires in (None, "never", "31d", "2030-01-01"):
        with pytest.raises(LimitReached, match="within 30 days"):
            admin.create_key("long", expires=expires)
    assert snapshot(admin) == before
    admin.update_settings(max_expiry_days=None)
    assert admin.create_key("again", expires="never").key.expires_at is None


def test_max_keys_per_user(team):
    alice, bob = team["alice"], team["bob"]
    alice.update_settings(max_keys_per_user=2)
    first = bob.create_key("1").key
    bob.create_key("2")
    before = snapshot(bob)
    with pytest.raises(LimitReached, match=r"maximum per user \(2\)"):
        bob.create_key("3")
    with pytest.raises(LimitReached, match="2"):
        alice.create_key("for bob", owner="bob")
    assert snapshot(bob) == before
    alice.create_key("alice has her own count")
    bob.revoke_key(first.id)  # only active keys count
    bob.create_key("3")
    for bad in (0, 1001, -1):
        with pytest.raises(InvalidInput, match="between 1 and 1000"):
            alice.update_settings(max_keys_per_user=bad)
    assert alice.get_settings().max_keys_per_user == 2


def test_a_new_installation(admin):
    current = admin.get_settings()
    assert (current.keys_enabled, current.max_expiry_days, current.max_keys_per_user) == (
        True,
        None,
        100,
    )
    assert current.to_json() == {
        "keys_enabled": True,
        "max_expiry_days": None,
        "max_keys_per_user": 100,
        "require_reason": False,
    }
    assert admin.list_roles() == ["read-only", "read-write"]


def test_only_admins_change_settings_and_each_change_is_an_event(team):
    for login in ("bob", "dave"):
        before = snapshot(team[login])
        with pytest.raises(PermissionDenied, match="may not change settings"):
            team[login].update_settings(keys_enabled=False, max_keys_per_user=5)
        assert snapshot(team[login]) == before
    alice = team["alice"]
    alice.update_settings(max_expiry_days=90, max_keys_per_user=7)
    [event] = events_of(alice, "settings.update")
    assert event.details == {"max_expiry_days": [None, 90], "max_keys_per_user": [100, 7]}
    alice.update_settings(max_expiry_days=UNSET, max_keys_per_user=7)  # no change, no event
    assert len(events_of(alice, "settings.update")) == 1
    assert alice.update_settings(max_expiry_days=None).max_expiry_days is None


@pytest.mark.parametrize("bad", [0, -1, 36_501, "30"])
def test_max_expiry_days_bounds(admin, bad):
    before = snapshot(admin)
    with pytest.raises(InvalidInput, match="maximum expiry"):
        admin.update_settings(max_expiry_days=bad)
    assert snapshot(admin) == before


# -- users and roles ----------------------------------------------------------------------------


def test_last_admin_cannot_be_demoted_or_removed(admin):
    before = snapshot(admin)
    with pytest.raises(Conflict, match="last admin"):
        admin.set_user_role("alice", "developer")
    with pytest.raises(Conflict, match="last admin"):
        admin.remove_user("alice")
    assert snapshot(admin) == before
    admin.add_user("bob", "admin")
    admin.set_user_role("alice", "viewer")
    assert {u.login: u.role for u in admin.list_users()} == {"alice": "viewer", "bob": "admin"}


def test_users_add_set_role_remove(admin):
    admin.add_user("bob", "viewer")
    with pytest.raises(Conflict, match="already a user"):
        admin.add_user("bob", "developer")
    with pytest.raises(InvalidInput):
        admin.add_user("bad login!", "viewer")
    with pytest.raises(InvalidInput):
        admin.add_user("carol", "owner")
    admin.set_user_role("bob", "developer")
    admin.remove_user("bob")
    with pytest.raises(NotFound):
        admin.remove_user("bob")
    actions = [e.action for e in admin.list_events(limit=10)][:3]
    assert actions == ["user.remove", "user.set_role", "user.add"]


def test_key_roles(admin):
    assert admin.list_roles() == ["read-only", "read-write"]
    admin.add_role("deploy")
    with pytest.raises(Conflict):
        admin.add_role("deploy")
    with pytest.raises(InvalidInput):
        admin.add_role("Not A Role")
    key = admin.create_key("k", role="deploy").key
    before = snapshot(admin)
    # check_remove_role (asked before the app's question) refuses as remove_role does
    for attempt in (admin.check_remove_role, admin.remove_role):
        with pytest.raises(Conflict, match="1 unrevoked key grants the role deploy; revoke or"):
            attempt("deploy")
    assert snapshot(admin) == before
    admin.revoke_key(key.id)
    before = snapshot(admin)
    admin.check_remove_role("deploy")
    assert snapshot(admin) == before  # the check changed nothing
    admin.remove_role("deploy")
    assert admin.list_roles() == ["read-only", "read-write"]
    for attempt in (admin.check_remove_role, admin.remove_role):
        with pytest.raises(NotFound):
            attempt("deploy")


def test_put_user_adds_or_changes_the_role_and_says_which(team):
    admin = team["alice"]
    user, added = admin.put_user("erin", "viewer")
    assert added and user.role == "viewer"
    user, added = admin.put_user("erin", "developer")
    assert not added and user.role == "developer"
    assert [e.action for e in admin.list_events(limit=2)] == ["user.set_role", "user.add"]
    with pytest.raises(PermissionDenied):
        team["bob"].put_user("frank", "viewer")
    with pytest.raises(InvalidInput):
        admin.put_user("not a login!", "viewer")
    with pytest.raises(Conflict):  # the last admin keeps the role
        admin.put_user("alice", "viewer")
