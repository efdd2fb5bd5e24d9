"""``keys list --filter`` and ``keys revoke --filter``: the filter language on the command line,
on both databases; the revoke prints its plan, asks (or takes --yes), and --dry-run only prints."""

from __future__ import annotations

import json

from .test_cli import invoke, service_on


def test_list_and_revoke_by_filter(db_url):
    service = service_on(db_url)
    service.add_user("bob", "developer")
    service.add_user("alice", "developer")
    bob = [service.create_key(f"bob {n}", owner="bob").key.id for n in range(3)]
    bobcat = service.create_key("bobcat exporter", owner="alice").key.id
    service.revoke_keys([bob[2]])

    def listed(*args: str) -> set[str]:
        found = invoke("keys", "list", *args, "--json", "--db", db_url).stdout
        return {key["id"] for key in json.loads(found)}

    assert listed("--filter", "owner:bob status:active") == set(bob[:2])
    assert listed("--search", "bob") == {*bob, bobcat}  # free words: name, ID or owner
    assert listed("--filter", "bob -owner:bob") == {bobcat}
    assert listed("--filter", 'name:"bobcat exporter"') == {bobcat}
    bad = invoke("keys", "list", "--filter", "colour:red", "--db", db_url, code=2)
    assert "owner: role: status:" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    dry = invoke("keys", "revoke", "--filter", "owner:bob", "--dry-run", "--db", db_url).stdout
    assert "2 key(s) of 1 owner(s) will be revoked (filter: owner:bob)" in dry
    assert "\nbob: 2 key(s)\n" in dry
    [skip_line] = [line for line in dry.splitlines() if bob[2] in line]
    assert "bob 2" in skip_line and skip_line.endswith("already revoked")  # name and why
    assert "Dry run: nothing changed." in dry
    assert service.get_key(bob[0]).status == "active"
    refused = invoke("keys", "revoke", "--filter", "owner:bob", "--db", db_url, code=2)
    assert "needs --yes" in refused.stderr  # no terminal to ask on
    assert service.get_key(bob[0]).status == "active"

    done = invoke("keys", "revoke", "--filter", "owner:bob", "--yes", "--json", "--db", db_url)
    result = json.loads(done.stdout)
    assert {key["id"] for key in result["revoked"]} == set(bob[:2])
    assert result["skipped"] == [{"id": bob[2], "reason": "already revoked"}]
    assert service.get_key(bobcat).status == "active"
    assert {e.key_id for e in service.list_events(action="key.revoke")} >= set(bob)

    nothing = invoke("keys", "revoke", "--filter", "owner:nobody", "--yes", "--db", db_url, code=1)
    assert "no keys match" in nothing.stderr
    invoke("keys", "revoke", bob[0], "--filter", "owner:bob", "--db", db_url, code=2)
    invoke("keys", "revoke", "--db", db_url, code=2)
    invoke("keys", "revoke", "--filter", "status:gone", "--yes", "--db", db_url, code=2)
    assert service.get_key(bobcat).status == "active"


def test_revoke_plan_counts_per_owner_and_lists_the_rest(db_url):
    service = service_on(db_url)
    for login in ("bob", "alice"):
        service.add_user(login, "developer")
    for n in range(25):
        service.create_key(f"fleet {n}", owner="bob" if n % 5 else "alice")
    plan = invoke("keys", "revoke", "--filter", "fleet", "--dry-run", "--db", db_url).stdout
    assert "25 key(s) of 2 owner(s) will be revoked" in plan
    lines = plan.splitlines()
    alice, bob = lines.index("alice: 5 key(s)"), lines.index("bob: 20 key(s)")
    # every key, under its owner (not the first few): alice's 5, then bob's 20
    assert all("fleet" in line for line in lines[alice + 1 : alice + 6])
    assert bob == alice + 6 and all("fleet" in line for line in lines[bob + 1 : bob + 21])
    assert "… and" not in plan
    assert "Warning: these are ALL the active keys of this installation" in plan
