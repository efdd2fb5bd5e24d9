"""Reasons for revoke, replace and delete (issue 12), on SQLite and PostgreSQL: stored in every
event of the change, validated (bounded, printable, never a secret), required when an admin
sets "require a reason" (the service refuses, from every face, and changes nothing); the bulk
revoke's plan (every key, by owner; skipped keys by name; all the active keys); the CLI's
--reason, settings --require-reason, keys show and scan --revoke."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from keytui.core.errors import InvalidInput, ReasonRequired
from keytui.core.models import Event
from keytui.core.service import KeyService
from keytui.core.validate import REASON_MAX

from .test_cli import invoke, service_on
from .test_races import ROUNDS, race


def events_of(service: KeyService, action: str) -> list[dict]:
    return [e.details for e in service.list_events(action=action, limit=1000)]


def event_count(service: KeyService) -> int:
    return len(service.list_events(limit=10_000))


def test_a_reason_is_in_every_event_of_the_change(admin):
    admin.add_user("bob", "developer")
    fleet = [admin.create_key(f"fleet {n}", owner="bob").key.id for n in range(5)]
    result = admin.revoke_keys(fleet, reason="  offboarding #123 ")
    assert len(result.revoke) == 5
    revokes = admin.list_events(action="key.revoke")
    assert {e.key_id for e in revokes} == set(fleet)
    assert all(e.details["reason"] == "offboarding #123" for e in revokes)  # trimmed

    one = admin.create_key("one").key
    admin.replace_key(one.id, reason="rotation after the audit")
    assert events_of(admin, "key.replace") == [
        {"name": "one", "reason": "rotation after the audit"}
    ]
    admin.delete_keys([one.id, fleet[0]], reason="cleanup")
    deletes = events_of(admin, "key.delete")
    assert len(deletes) == 2 and all(d["reason"] == "cleanup" for d in deletes)

    # no reason: no reason entry at all (not an empty one)
    two = admin.create_key("two").key
    admin.revoke_key(two.id)
    assert admin.list_events(action="key.revoke", limit=1)[0].details == {"name": "two"}
    assert admin.revocation_reason(two.id) is None
    assert admin.revocation_reason(fleet[1]) == "offboarding #123"
    assert admin.revocation_reason(admin.create_key("three").key.id) is None  # not revoked


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("x" * (REASON_MAX + 1), f"at most {REASON_MAX} characters"),
        ("line one\nline two", "printable characters only"),
        ("bell\x07", "printable characters only"),
        ("esc \x1b]52;c;aGk=\x07", "printable characters only"),
    ],
)
def test_a_bad_reason_is_refused_and_changes_nothing(admin, reason, words):
    key = admin.create_key("k").key
    before = event_count(admin)
    for change in (
        lambda: admin.revoke_keys([key.id], reason=reason),
        lambda: admin.revoke_key(key.id, reason=reason),
        lambda: admin.replace_key(key.id, reason=reason),
        lambda: admin.delete_keys([key.id], reason=reason),
        lambda: admin.check_reason("revoke", reason),
    ):
        with pytest.raises(InvalidInput) as refused:
            change()
        assert words in str(refused.value) and "\n" not in str(refused.value)
        assert refused.value.field == "reason"
    assert admin.get_key(key.id).status == "active"
    assert event_count(admin) == before


def test_a_reason_never_holds_a_secret(admin):
    issued = admin.create_key("leaked")
    random_part = issued.secret.split("_")[2]
    for reason in (
        f"leaked: {issued.secret}",
        f"found {issued.secret[:-6]} in a paste",  # cut short, checksum gone: still refused
        issued.secret.upper(),
    ):
        with pytest.raises(InvalidInput) as refused:
            admin.revoke_key(issued.key.id, reason=reason)
        assert "may not hold a secret" in str(refused.value)
        assert random_part[:8] not in str(refused.value)
    assert admin.get_key(issued.key.id).status == "active"
    admin.revoke_key(
        issued.key.id, reason=f"leaked in a paste; key {issued.key.id}"
    )  # the ID is fine
    dumped = json.dumps([e.to_json() for e in admin.list_events(limit=100)])
    assert random_part not in dumped


def test_require_a_reason_is_one_rule_for_every_change(make_service):
    admin = make_service("alice")
    admin.add_user("bob", "developer")
    bob = make_service("bob")
    mine = admin.create_key("mine").key
    his = bob.create_key("his").key
    assert not admin.get_settings().require_reason
    with pytest.raises(Exception, match="may not change settings"):
        bob.update_settings(require_reason=True)
    with pytest.raises(InvalidInput, match="on or off"):
        admin.update_settings(require_reason="yes")  # type: ignore[arg-type]
    settings = admin.update_settings(require_reason=True)
    assert settings.require_reason and settings.to_json()["require_reason"] is True
    assert events_of(admin, "settings.update")[0] == {"require_reason": [False, True]}

    before = event_count(admin)
    for service, key in ((admin, mine), (bob, his)):
        for change in (
            lambda s=service, k=key: s.revoke_keys([k.id]),
            lambda s=service, k=key: s.revoke_key(k.id, reason="   "),  # blank is none
            lambda s=service, k=key: s.replace_key(k.id),
            lambda s=service, k=key: s.delete_keys([k.id], reason=""),
            lambda s=service: s.check_reason("delete", None),
        ):
            with pytest.raises(ReasonRequired) as refused:
                change()
            assert "requires a reason" in str(refused.value)
            assert refused.value.field == "reason" and refused.value.exit_code == 2
    assert event_count(admin) == before
    assert {admin.get_key(k.id).status for k in (mine, his)} == {"active"}
    plan = bob.plan_revoke([his.id])
    assert plan.reason_required and len(plan.revoke) == 1

    assert bob.check_reason("revoke", " lost laptop ") == "lost laptop"
    bob.revoke_key(his.id, reason="lost laptop")
    admin.replace_key(mine.id, reason="yearly rotation")
    admin.delete_keys([mine.id], reason="no longer needed")
    assert admin.revocation_reason(his.id) == "lost laptop"
    # removing a user revokes their keys with its own reason ("owner removed")
    admin.create_key("left behind", owner="bob")
    assert admin.remove_user("bob", revoke_keys=True) == 1
    assert events_of(admin, "key.revoke")[0]["reason"] == "owner removed"

    admin.update_settings(require_reason=False)
    admin.revoke_key(admin.create_key("free again").key.id)


def test_the_plan_names_skipped_keys_and_sees_every_active_key(make_service):
    admin = make_service("alice")
    admin.add_user("bob", "developer")
    a = admin.create_key("a").key
    b = admin.create_key("b", owner="bob").key
    gone = admin.create_key("gone").key
    admin.revoke_key(gone.id)
    plan = admin.plan_revoke([a.id, b.id, gone.id, "nokey00000"])
    assert plan.every_active and not plan.reason_required
    assert {k.id for k in plan.revoke} == {a.id, b.id}
    names = {s.id: (s.name, s.reason) for s in plan.skipped}
    assert names == {gone.id: ("gone", "already revoked"), "nokey00000": (None, "not found")}
    assert not admin.plan_revoke([a.id]).every_active  # b stays active
    bob = make_service("bob")
    mine = bob.plan_revoke([a.id, b.id])
    assert not mine.every_active  # bob may revoke b only; a stays active
    assert [(s.name, s.reason) for s in mine.skipped] == [("a", "not yours (owner alice)")]
    assert not admin.plan_revoke([gone.id]).every_active  # nothing to revoke


def test_turning_the_rule_on_while_revoking_without_a_reason(make_service):
    """From a barrier, many rounds: an admin turns "require a reason" on while another revokes
    without one. Either the revoke came first (its event before the setting's) or it was
    refused: never a reason-less revoke after the rule was on."""
    admin = make_service("alice")
    other = make_service("alice")
    outcomes = set()
    for _round in range(ROUNDS):
        admin.update_settings(require_reason=False)
        key = admin.create_key(f"k{_round}").key
        switched, revoked = race(
            lambda: admin.update_settings(require_reason=True),
            lambda k=key: other.revoke_keys([k.id]),
        )
        assert not isinstance(switched, Exception)
        outcomes.add(type(revoked).__name__)
        with admin.db.read() as session:
            rows = session.execute(
                select(Event.id, Event.action, Event.details)
                .where(Event.action.in_(["settings.update", "key.revoke"]))
                .order_by(Event.id.desc())
                .limit(2)
            ).all()
        if isinstance(revoked, ReasonRequired):
            assert admin.get_key(key.id).status == "active"
            continue
        assert admin.get_key(key.id).status == "revoked"
        revoke = next(row for row in rows if row.action == "key.revoke")
        setting = next(row for row in rows if row.action == "settings.update")
        assert "reason" not in json.loads(revoke.details)
        assert revoke.id < setting.id, "a reason-less revoke committed after the rule was on"
    assert outcomes <= {"ReasonRequired", "RevokePlan"}


# -- the command line ---------------------------------------------------------------------------


def test_cli_reasons_and_require_reason(db_url, tmp_path: Path):
    service = service_on(db_url)
    service.add_user("bob", "developer")
    fleet = [service.create_key(f"bob {n}", owner="bob").key.id for n in range(3)]
    mine = service.create_key("mine").key.id

    shown = invoke("settings", "set", "--require-reason", "--db", db_url).stdout
    assert "require a reason:   yes" in shown
    assert json.loads(invoke("settings", "show", "--json", "--db", db_url).stdout)["require_reason"]
    for args in (
        ("keys", "revoke", "--filter", "owner:bob", "--yes"),
        ("keys", "revoke", fleet[0], "--yes"),
        ("keys", "replace", mine, "--yes"),
        ("keys", "delete", mine, "--yes"),
    ):
        refused = invoke(*args, "--db", db_url, code=2)
        assert "requires a reason to" in refused.stderr and "--reason TEXT" in refused.stderr
    long = invoke(
        "keys", "revoke", fleet[0], "--reason", "x" * 201, "--yes", "--db", db_url, code=2
    )
    assert "at most 200 characters" in long.stderr
    assert {service.get_key(k).status for k in [*fleet, mine]} == {"active"}

    dry = invoke("keys", "revoke", "--filter", "owner:bob", "--dry-run", "--db", db_url).stdout
    assert "Reason: required in this installation; give one with --reason TEXT" in dry
    dry = invoke(
        "keys", "revoke", "--filter", "owner:bob", "--dry-run", "--reason", "offboarding #123",
        "--db", db_url,
    ).stdout  # fmt: skip
    assert "Reason: offboarding #123" in dry and "Dry run: nothing changed." in dry

    done = invoke(
        "keys", "revoke", "--filter", "owner:bob status:active", "--reason", "offboarding #123",
        "--yes", "--json", "--db", db_url,
    ).stdout  # fmt: skip
    assert json.loads(done)["revoke_reason"] == "offboarding #123"
    events = invoke("events", "--action", "revoke", "--db", db_url).stdout
    assert events.count('"reason": "offboarding #123"') == 3
    show = invoke("keys", "show", fleet[1], "--db", db_url).stdout
    assert "Reason:        offboarding #123" in show
    assert (
        json.loads(invoke("keys", "show", fleet[1], "--json", "--db", db_url).stdout)[
            "revoke_reason"
        ]
        == "offboarding #123"
    )

    replaced = invoke("keys", "replace", mine, "--reason", "rotation", "--yes", "--db", db_url)
    assert replaced.stdout.startswith("kt_")
    invoke("keys", "delete", mine, "--reason", "not needed", "--yes", "--db", db_url)
    reasons = [e.details.get("reason") for e in service.list_events(key_id=mine)]
    assert reasons[:2] == ["not needed", "rotation"]
    assert (
        "require a reason:   no"
        in invoke("settings", "set", "--no-require-reason", "--db", db_url).stdout
    )


def test_scan_revoke_records_where_the_secret_was_found(db_url, tmp_path: Path):
    service = service_on(db_url)
    service.update_settings(require_reason=True)  # scan's reason satisfies the rule
    leaked = service.create_key("leaked")
    kept = service.create_key("kept").key
    (tmp_path / "repo").mkdir()
    config = tmp_path / "repo" / "config.env"
    config.write_text(f"API_KEY={leaked.secret}\n")
    result = invoke("scan", str(tmp_path / "repo"), "--revoke", "--yes", "--db", db_url)
    assert "Revoked key" in result.stdout
    assert service.get_key(leaked.key.id).status == "revoked"
    assert service.get_key(kept.id).status == "active"
    reason = service.revocation_reason(leaked.key.id)
    assert reason == f"secret found by keytui scan in {config}"
    assert leaked.secret.split("_")[2] not in json.dumps(
        [e.to_json() for e in service.list_events(limit=100)]
    )


def test_scan_reason_stays_within_bounds():
    from keytui.cli.scan import scan_reason

    many = [f"/srv/repo/some/deep/directory/file{n:03}.py" for n in range(40)]
    reason = scan_reason(many)
    assert len(reason) <= REASON_MAX and reason.endswith("more file(s)")
    assert reason.startswith("secret found by keytui scan in /srv/repo/some/deep/directory/file000")
    secretish = "kt_abcdefghij_ABCDEFGHIJKLMNOP"
    assert scan_reason([f"/tmp/{secretish}.txt"]) == "secret found by keytui scan in 1 file(s)"
    assert scan_reason(["a.py", "a.py", "b.py"]) == "secret found by keytui scan in a.py, b.py"
