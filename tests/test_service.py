"""KeyService: the key lifecycle and its rules, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from keytui.core.changes import wait_until
from keytui.core.errors import (
    InvalidInput,
    LimitReached,
    NotActive,
    NotFound,
    PermissionDenied,
    UnknownUser,
)
from keytui.core.models import Event, Key, KeyRole, Settings, User
from keytui.core.service import IssuedKey, KeyDefaults, KeyInfo, KeyQuery, SkipReason

from .conftest import NOW


def snapshot(service) -> tuple:
    """Everything a refused call could have changed, straight from the tables."""
    with service.db.read() as session:
        keys = [
            tuple(getattr(row, c.key) for c in Key.__table__.columns)
            for row in session.scalars(select(Key).order_by(Key.pk))
        ]
        users = [(u.login, u.role) for u in session.scalars(select(User).order_by(User.login))]
        roles = list(session.scalars(select(KeyRole.name).order_by(KeyRole.name)))
        settings = session.get(Settings, 1)
        events = session.scalar(select(func.count()).select_from(Event))
        return (
            keys,
            users,
            roles,
            (settings.keys_enabled, settings.max_expiry_days, settings.max_keys_per_user),
            events,
        )


def events_of(service, action: str, key_id: str | None = None):
    return [e for e in service.list_events(key_id=key_id, limit=1000) if e.action == action]


@pytest.fixture
def team(make_service, admin):
    """alice (admin), bob and carol (developers), dave (viewer)."""
    admin.add_user("bob", "developer")
    admin.add_user("carol", "developer")
    admin.add_user("dave", "viewer")
    return {
        "alice": admin,
        "bob": make_service("bob"),
        "carol": make_service("carol"),
        "dave": make_service("dave"),
    }


# -- first login, create ----------------------------------------------------------------------


def test_first_login_becomes_admin_and_later_ones_do_not(make_service):
    alice = make_service("alice")
    assert alice.whoami().role == "admin"
    [event] = events_of(alice, "user.add")
    assert event.actor == "alice" and event.details["role"] == "admin"
    bob = make_service("bob")
    assert bob.whoami() is None
    assert [u.login for u in alice.list_users()] == ["alice"]


def test_create_with_defaults(admin):
    issued = admin.create_key("billing worker")
    key = issued.key
    assert (key.name, key.description, key.owner, key.role, key.status) == (
        "billing worker",
        "",
        "alice",
        "read-only",
        "active",
    )
    assert key.created_at == key.updated_at == NOW
    assert key.expires_at is None and key.revoked_at is None and key.last_used_at is None
    assert key.allowed_hosts == () and key.use_count == 0
    assert issued.secret.startswith(f"kt_{key.id}_")
    assert admin.get_key(key.id) == key
    [event] = events_of(admin, "key.create", key.id)
    assert (event.actor, event.face, event.at) == ("alice", "api", NOW)
    assert event.details["name"] == "billing worker" and event.details["owner"] == "alice"


def test_create_with_role_owner_expiry_and_hosts(team):
    alice = team["alice"]
    key = alice.create_key(
        " deploy bot ",
        description="ships",
        owner="bob",
        role="read-write",
        expires="90d",
        allowed_hosts=[
            "10.0.0.0/8",  # host bits set (10.1.2.3/8) are refused: see test_smaller_things
            "API.example.com",
            "*.internal.example.com",
            "api.example.com",
        ],
    ).key
    assert key.name == "deploy bot" and key.description == "ships"
    assert key.owner == "bob" and key.role == "read-write"
    assert key.expires_at == NOW + timedelta(days=90)
    assert key.allowed_hosts == ("10.0.0.0/8", "api.example.com", "*.internal.example.com")
    assert alice.get_key(key.id) == key


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"role": "superuser"}, NotFound),
        ({"owner": "nobody"}, NotFound),
        ({"expires": "2020-01-01"}, InvalidInput),
        ({"expires": "soon"}, InvalidInput),
        ({"allowed_hosts": ["not a host"]}, InvalidInput),
        ({"description": "x" * 501}, InvalidInput),
    ],
)
def test_create_refusals_change_nothing(admin, kwargs, error):
    before = snapshot(admin)
    with pytest.raises(error):
        admin.create_key("k", **kwargs)
    assert snapshot(admin) == before


def test_the_secret_is_shown_once_and_never_kept(admin):
    issued = admin.create_key("k")
    assert issued.secret not in repr(issued) and issued.secret not in str(issued)
    assert "secret" not in {f.name for f in dataclasses.fields(KeyInfo)}
    for shown in (admin.get_key(issued.key.id), *admin.list_keys().keys):
        assert issued.secret not in repr(shown)
        assert "secret" not in shown.to_json()
    with admin.db.read() as session:
        stored = session.scalar(select(Key.secret_hash))
    assert stored.startswith("$argon2id$") and issued.secret not in stored
    assert issued.secret[14:46] not in stored
    for event in admin.list_events(limit=100):
        assert issued.secret[14:46] not in repr(event.details)


# -- replace ------------------------------------------------------------------------------------


def test_replace_takes_effect_at_once_in_every_process(make_service, clock):
    alice = make_service("alice")
    other = make_service("alice")  # another process, with its own cache
    issued = alice.create_key("k")
    assert other.verify(issued.secret).valid  # now cached in `other`
    assert other.verify(issued.secret).valid
    clock.advance(minutes=5)
    replaced = alice.replace_key(issued.key.id)
    assert isinstance(replaced, IssuedKey) and replaced.key.id == issued.key.id
    assert replaced.secret != issued.secret
    assert replaced.key.updated_at == NOW + timedelta(minutes=5)
    assert replaced.key.name == issued.key.name and replaced.key.created_at == NOW
    assert alice.verify(issued.secret).code == "NOT_FOUND"  # the replacing process: at once
    assert alice.verify(replaced.secret).code == "VALID"
    # another process hears it through the change signal (within 100 ms; generous here, as a
    # loaded machine may keep the watcher's thread waiting for a core)
    assert wait_until(lambda: other.verify(issued.secret).code == "NOT_FOUND", 30)
    assert other.verify(replaced.secret).code == "VALID"
    [event] = events_of(alice, "key.replace", issued.key.id)
    assert event.actor == "alice"


def test_replace_refuses_keys_that_are_not_active(admin, clock):
    revoked = admin.create_key("r").key
    admin.revoke_key(revoked.id)
    expiring = admin.create_key("e", expires="1d").key
    clock.advance(days=2)
    before = snapshot(admin)
    for key_id in (revoked.id, expiring.id):
        with pytest.raises(NotActive, match="only active keys"):
            admin.replace_key(key_id)
    with pytest.raises(NotFound):
        admin.replace_key("zzzzzzzzzz")
    assert snapshot(admin) == before


def test_check_answers_as_the_action_would_and_changes_nothing(make_service, clock):
    admin = make_service("alice")
    admin.add_user("bob", "developer")
    admin.add_user("dave", "viewer")
    bob, dave = make_service("bob"), make_service("dave")
    active = admin.create_key("a").key
    bobs = bob.create_key("b").key
    revoked = admin.create_key("r").key
    admin.revoke_key(revoked.id)
    expiring = admin.create_key("e", expires="1d").key
    clock.advance(days=2)
    before = snapshot(admin)
    assert admin.check("replace", active.id).id == active.id
    assert admin.check("create") is None and admin.check("settings") is None
    for action in ("replace", "revoke"):
        for key_id, status in ((revoked.id, "revoked"), (expiring.id, "expired")):
            with pytest.raises(NotActive, match=f"is {status}; only active keys"):
                admin.check(action, key_id)
    for action in ("rename", "delete"):  # any status
        assert admin.check(action, revoked.id).status == "revoked"
    with pytest.raises(PermissionDenied, match="your own keys"):
        bob.check("replace", active.id)
    assert bob.check("replace", bobs.id).owner == "bob"
    for action, key_id in (("create", None), ("revoke", bobs.id), ("settings", None)):
        with pytest.raises(PermissionDenied):
            dave.check(action, key_id)
    with pytest.raises(NotFound):
        admin.check("rename", "zzzzzzzzzz")
    assert snapshot(admin) == before
    admin.update_settings(keys_enabled=False)
    with pytest.raises(LimitReached, match="disabled"):
        admin.check("create")


# -- revoke -------------------------------------------------------------------------------------


def test_revoke_one_key(admin, clock):
    issued = admin.create_key("k")
    clock.advance(hours=1)
    key = admin.revoke_key(issued.key.id)
    assert key.status == "revoked" and key.revoked_by == "alice"
    assert key.revoked_at == NOW + timedelta(hours=1)
    assert admin.get_key(key.id) == key  # stays listed, with when and by whom
    assert [k.id for k in admin.list_keys().keys] == [key.id]
    assert admin.verify(issued.secret).code == "REVOKED"
    before = snapshot(admin)
    with pytest.raises(NotActive):  # irreversible, and only once
        admin.revoke_key(key.id)
    with pytest.raises(NotFound):
        admin.revoke_key("zzzzzzzzzz")
    assert snapshot(admin) == before
    assert len(events_of(admin, "key.revoke", key.id)) == 1


def test_bulk_revoke_of_a_mixed_set(team, clock):
    alice, bob = team["alice"], team["bob"]
    b1, b2, b3 = (bob.create_key(f"b{i}").key for i in range(3))
    b_expiring = bob.create_key("soon", expires="1d").key
    a1 = alice.create_key("alice's").key
    bob.revoke_key(b3.id)
    clock.advance(days=2)
    plan = bob.plan_revoke([b1.id, b2.id, b3.id, b_expiring.id, a1.id, "zzzzzzzzzz"])
    result = bob.revoke_keys([b1.id, b2.id, b3.id, b_expiring.id, a1.id, "zzzzzzzzzz", b1.id])
    assert [k.id for k in plan.revoke] == [k.id for k in result.revoke] == [b1.id, b2.id]
    assert {s.id: s.reason for s in result.skipped} == {
        b3.id: "already revoked",
        b_expiring.id: "expired",
        a1.id: "not yours (owner alice)",
        "zzzzzzzzzz": "not found",
    }
    assert plan.skipped == result.skipped
    assert {s.id: s.why for s in result.skipped}[a1.id] is SkipReason.NOT_YOURS
    # The answer is the keys as revoked, built from the rows read before the UPDATE: what a
    # read after it says.
    assert list(result.revoke) == [alice.get_key(k.id) for k in result.revoke]
    assert {(k.status, k.revoked_by, k.revoked_at) for k in result.revoke} == {
        ("revoked", "bob", clock())
    }
    assert [alice.get_key(k).status for k in (b1.id, b2.id, a1.id, b_expiring.id)] == [
        "revoked",
        "revoked",
        "active",
        "expired",
    ]
    revokes = events_of(alice, "key.revoke")
    assert sorted(e.key_id for e in revokes) == sorted([b1.id, b2.id, b3.id])
    assert all(e.actor == "bob" for e in revokes)
    # An admin may revoke anyone's key.
    assert [k.id for k in alice.revoke_keys([a1.id]).revoke] == [a1.id]


def test_a_developer_cannot_revoke_someone_elses_key(team):
    key = team["alice"].create_key("a").key
    before = snapshot(team["alice"])
    with pytest.raises(PermissionDenied, match="own keys"):
        team["bob"].revoke_key(key.id)
    with pytest.raises(PermissionDenied):
        team["dave"].revoke_keys([key.id])
    assert snapshot(team["alice"]) == before


# -- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_key_and_keeps_its_events(admin):
    issued = admin.create_key("k")
    keep = admin.create_key("keep").key
    admin.revoke_key(issued.key.id)
    [deleted] = admin.delete_keys([issued.key.id])
    assert deleted.id == issued.key.id
    with pytest.raises(NotFound):
        admin.get_key(issued.key.id)
    assert [k.id for k in admin.list_keys().keys] == [keep.id]
    assert admin.verify(issued.secret).code == "NOT_FOUND"
    actions = [e.action for e in admin.list_events(key_id=issued.key.id)]
    assert actions == ["key.delete", "key.revoke", "key.create"]


def test_delete_is_all_or_none(team):
    bob = team["bob"]
    mine = bob.create_key("mine").key
    theirs = team["alice"].create_key("theirs").key
    before = snapshot(bob)
    with pytest.raises(NotFound):
        bob.delete_keys([mine.id, "zzzzzzzzzz"])
    with pytest.raises(PermissionDenied):
        bob.delete_keys([mine.id, theirs.id])
    with pytest.raises(PermissionDenied):
        team["dave"].delete_keys([mine.id])
    assert snapshot(bob) == before
    assert [k.id for k in bob.delete_keys([mine.id])] == [mine.id]


# -- rename -------------------------------------------------------------------------------------


def test_rename_changes_only_name_and_description(admin, clock):
    issued = admin.create_key(
        "old", description="d1", role="read-write", expires="30d", allowed_hosts=["10.0.0.1"]
    )
    clock.advance(minutes=1)
    key = admin.rename_key(issued.key.id, "new", "d2")
    assert (key.name, key.description, key.updated_at) == ("new", "d2", NOW + timedelta(minutes=1))
    unchanged = dataclasses.replace(
        issued.key, name="new", description="d2", updated_at=key.updated_at
    )
    assert key == unchanged == admin.get_key(key.id)
    assert admin.verify(issued.secret, host="10.0.0.1").valid
    [event] = events_of(admin, "key.rename", key.id)
    assert event.details == {"name": ["old", "new"], "description": ["d1", "d2"]}
    with pytest.raises(InvalidInput):
        admin.rename_key(key.id, "")
    assert admin.get_key(key.id).name == "new"


# -- permissions --------------------------------------------------------------------------------


def test_developer_manages_own_keys_only(team):
    bob = team["bob"]
    own = bob.create_key("own")
    assert own.key.owner == "bob"
    bob.rename_key(own.key.id, "own2")
    bob.replace_key(own.key.id)
    bob.revoke_key(own.key.id)
    bob.delete_keys([own.key.id])
    theirs = team["carol"].create_key("theirs").key
    before = snapshot(bob)
    for call in (
        lambda: bob.create_key("x", owner="carol"),
        lambda: bob.rename_key(theirs.id, "mine now"),
        lambda: bob.replace_key(theirs.id),
        lambda: bob.revoke_key(theirs.id),
        lambda: bob.delete_keys([theirs.id]),
        lambda: bob.update_settings(keys_enabled=False),
        lambda: bob.add_user("eve", "admin"),
        lambda: bob.set_user_role("bob", "admin"),
        lambda: bob.add_role("god"),
        lambda: bob.remove_role("read-only"),
        lambda: bob.check_remove_role("read-only"),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert snapshot(bob) == before
    # A developer still reads everything.
    assert {k.id for k in bob.list_keys().keys} == {theirs.id}


def test_viewer_reads_only(team):
    dave = team["dave"]
    key = team["alice"].create_key("k").key
    assert dave.get_key(key.id) == key and dave.counts().active == 1
    assert dave.get_settings().max_keys_per_user == 100
    before = snapshot(dave)
    for call in (
        lambda: dave.create_key("x"),
        lambda: dave.rename_key(key.id, "y"),
        lambda: dave.replace_key(key.id),
        lambda: dave.revoke_key(key.id),
        lambda: dave.delete_keys([key.id]),
        lambda: dave.remove_user("bob"),
        lambda: dave.update_settings(max_keys_per_user=5),
    ):
        with pytest.raises(PermissionDenied, match="viewer may not|own keys"):
            call()
    assert snapshot(dave) == before


def test_admin_does_everything_to_anyones_keys(team):
    alice = team["alice"]
    key = team["bob"].create_key("bob's").key
    alice.rename_key(key.id, "renamed")
    alice.replace_key(key.id)
    alice.revoke_key(key.id)
    alice.delete_keys([key.id])
    assert alice.counts().total == 0


def test_unknown_user_is_told_how_to_be_added(make_service, admin):
    key = admin.create_key("k").key
    eve = make_service("eve")
    before = snapshot(admin)
    for call in (
        lambda: eve.create_key("x"),
        lambda: eve.revoke_key(key.id),
        lambda: eve.list_keys(),
        lambda: eve.get_key(key.id),
    ):
        with pytest.raises(UnknownUser, match="keytui users add eve"):
            call()
    assert snapshot(admin) == before


def test_permits_matches_what_the_methods_enforce(team):
    bob_key = team["bob"].create_key("b").key
    alice_key = team["alice"].create_key("a").key
    assert team["bob"].permits("revoke", bob_key) and not team["bob"].permits("revoke", alice_key)
    assert not team["dave"].permits("create") and team["alice"].permits("settings")


# -- listing ------------------------------------------------------------------------------------


@pytest.fixture
def listed(team, clock):
    """Seven keys of three owners and all three states, created a minute apart."""
    alice, bob = team["alice"], team["bob"]
    made = {}
    for name, service, kwargs in (
        ("alpha", alice, {}),
        ("bravo", bob, {}),
        ("charlie", bob, {"expires": "1d"}),
        ("delta", alice, {}),
        ("echo", team["carol"], {}),
        ("foxtrot", bob, {}),
        ("golf", alice, {"expires": "10d"}),
    ):
        issued = service.create_key(name, **kwargs)
        made[name], made[f"{name} secret"] = issued.key, issued.secret
        clock.advance(minutes=1)
    alice.revoke_keys([made["delta"].id, made["foxtrot"].id])
    clock.advance(days=2)  # charlie expires
    return alice, made


def names(page):
    return [k.name for k in page.keys]


def test_list_newest_first_with_paging(listed):
    alice, _ = listed
    first = alice.list_keys(KeyQuery(limit=3))
    assert names(first) == ["golf", "foxtrot", "echo"] and first.has_more
    second = alice.list_keys(KeyQuery(limit=3, offset=3))
    assert names(second) == ["delta", "charlie", "bravo"] and second.has_more
    last = alice.list_keys(KeyQuery(limit=3, offset=6))
    assert names(last) == ["alpha"] and not last.has_more
    exact = alice.list_keys(KeyQuery(limit=7))
    assert len(exact.keys) == 7 and not exact.has_more
    assert [k.name for k in alice.iter_keys(page_size=2)] == names(exact)
    with pytest.raises(InvalidInput):
        alice.list_keys(KeyQuery(limit=0))


def test_list_filters(listed):
    alice, made = listed
    assert names(alice.list_keys(KeyQuery(status="revoked"))) == ["foxtrot", "delta"]
    assert names(alice.list_keys(KeyQuery(status="expired"))) == ["charlie"]
    assert names(alice.list_keys(KeyQuery(status="active"))) == ["golf", "echo", "bravo", "alpha"]
    assert names(alice.list_keys(KeyQuery(owner="bob"))) == ["foxtrot", "charlie", "bravo"]
    assert names(alice.list_keys(KeyQuery(owner="bob", status="active"))) == ["bravo"]
    # (Search terms too long to turn up inside a random 10-character ID.)
    assert names(alice.list_keys(KeyQuery(search="CAROL"))) == ["echo"]  # by owner
    assert names(alice.list_keys(KeyQuery(search=made["bravo"].id[2:8]))) == ["bravo"]
    assert names(alice.list_keys(KeyQuery(search="lpha"))) == ["alpha"]
    assert alice.count_keys(status="active") == 4
    assert alice.count_keys(search="bravo", owner="bob") == 1
    assert alice.count_keys(search="bravo", owner="alice") == 0
    with pytest.raises(InvalidInput):
        alice.list_keys(KeyQuery(status="dead"))


def test_list_sorts_by_any_column(listed):
    alice, made = listed
    by_name = names(alice.list_keys(KeyQuery(sort="name", descending=False)))
    assert by_name == sorted(by_name)
    assert names(alice.list_keys(KeyQuery(sort="name"))) == by_name[::-1]
    by_owner = [k.owner for k in alice.list_keys(KeyQuery(sort="owner", descending=False)).keys]
    assert by_owner == sorted(by_owner)
    by_status = [k.status for k in alice.list_keys(KeyQuery(sort="status", descending=False)).keys]
    assert by_status == sorted(by_status)
    # "never" sorts after every date, on SQLite and PostgreSQL alike.
    expiring = names(alice.list_keys(KeyQuery(sort="expires_at", descending=False)))
    assert expiring[:2] == ["charlie", "golf"]
    assert names(alice.list_keys(KeyQuery(sort="expires_at")))[-2:] == ["golf", "charlie"]
    # "never used" sorts before every date.
    assert alice.verify(made["echo secret"]).valid
    alice.flush_usage()
    assert names(alice.list_keys(KeyQuery(sort="last_used_at")))[0] == "echo"
    assert names(alice.list_keys(KeyQuery(sort="last_used_at", descending=False)))[-1] == "echo"
    with pytest.raises(InvalidInput):
        alice.list_keys(KeyQuery(sort="secret_hash"))


def test_search_treats_percent_and_underscore_as_text(admin):
    for name in ("100% done", "100 percent", "a_b", "axb", "back\\slash"):
        admin.create_key(name)
    assert names(admin.list_keys(KeyQuery(search="%"))) == ["100% done"]
    assert names(admin.list_keys(KeyQuery(search="a_b"))) == ["a_b"]
    assert names(admin.list_keys(KeyQuery(search="_"))) == ["a_b"]
    assert names(admin.list_keys(KeyQuery(search="\\"))) == ["back\\slash"]
    assert admin.count_keys(search="%") == 1


def test_counts(listed):
    alice, _ = listed
    counts = alice.counts()
    assert (counts.active, counts.expired, counts.revoked, counts.total) == (4, 1, 2, 7)


def test_key_defaults_are_90_days_or_the_maximum_and_read_only(admin):
    """One rule for a new key's defaults, which the app's form and the CLI both take."""
    assert admin.key_defaults() == KeyDefaults("read-only", 90)
    assert admin.key_defaults().expires == "90d"
    admin.update_settings(max_expiry_days=30)
    assert admin.key_defaults().expires_days == 30
    admin.update_settings(max_expiry_days=365)
    assert admin.key_defaults().expires_days == 90
    admin.remove_role("read-only")
    admin.add_role("a-first")
    assert admin.key_defaults().role == "a-first" == admin.create_key("k").key.role


def test_creating_keys_for_others_is_an_admin_permission(make_service):
    alice, bob = make_service("alice"), make_service("bob")
    alice.add_user("bob", "developer")
    assert alice.permits("create_for_others") and not bob.permits("create_for_others")
    assert bob.permits("create") and not bob.permits("settings")
