"""The ``keytui`` command line, through the installed console script (and CliRunner where a real
process adds nothing): every command, JSON shapes, exit codes, one-line refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keytui.cli import main
from keytui.core.db import open_database
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER

pytestmark = pytest.mark.clock  # the installed console script

KEYTUI = Path(sys.executable).parent / "keytui"
KEY_FIELDS = {
    "id",
    "name",
    "description",
    "owner",
    "role",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "revoked_at",
    "revoked_by",
    "last_used_at",
    "allowed_hosts",
}
ME = current_login()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No inherited database URL; a private data directory in case a default is ever opened."""
    clean = {k: v for k, v in os.environ.items() if k != "KEYTUI_DATABASE_URL"}
    clean["XDG_DATA_HOME"] = str(tmp_path / "data")
    return clean


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.db")


def check_stderr(stderr: str, code: int, answer: bool) -> None:
    """Never a traceback. A refusal (exit 1) is one line that says why; bad usage (exit 2) ends
    with a line that says what was wrong (click adds its usage lines above it). ``answer``: the
    command's result is on stdout (verify's rejections, revoke's JSON), nothing need be on
    stderr."""
    assert "Traceback" not in stderr
    # a new database is announced once, before whatever the command says (test_new_database)
    lines = [
        line
        for line in stderr.strip().splitlines()
        if not line.startswith("keytui: created a new keytui database at ")
    ]
    if code == 1 and not answer:
        assert len(lines) == 1 and lines[0].startswith("keytui: "), stderr
    elif code == 2:
        assert lines and lines[-1].startswith(("keytui: ", "Error: ")), stderr


def run(
    env, *args: str, stdin: str | None = None, code: int = 0, answer: bool = False
) -> subprocess.CompletedProcess:
    """Run the real console script; check its exit code and stderr."""
    result = subprocess.run(
        [str(KEYTUI), *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
    check_stderr(result.stderr, code, answer)
    return result


def refusal(result) -> str:
    return result.stderr.strip()


def invoke(*args: str, stdin: str = "", code: int = 0, answer: bool = False):
    """CliRunner, for checks where a separate process adds nothing."""
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert result.exit_code == code, (args, result.output, result.stderr, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    check_stderr(result.stderr, code, answer)
    return result


def service_on(path: str, actor: str = ME) -> KeyService:
    service = KeyService(open_database(path), actor=actor, hasher=FAST_HASHER)
    service.bootstrap()
    return service


# -- through the console script -----------------------------------------------------------------


def test_a_key_from_create_to_delete(env, db):
    created = json.loads(
        run(
            env,
            "keys",
            "create",
            "--db",
            db,
            "--name",
            "billing",
            "--description",
            "the billing worker",
            "--role",
            "read-write",
            "--expires",
            "30d",
            "--allowed-host",
            "10.0.0.0/8",
            "--allowed-host",
            "api.example.com",
            "--json",
        ).stdout
    )
    assert KEY_FIELDS | {"secret"} <= set(created)
    assert (created["name"], created["owner"], created["role"], created["status"]) == (
        "billing",
        ME,
        "read-write",
        "active",
    )
    assert created["allowed_hosts"] == ["10.0.0.0/8", "api.example.com"]
    assert created["created_at"].endswith("Z") and created["expires_at"].endswith("Z")
    key_id, old_secret = created["id"], created["secret"]

    shown = json.loads(run(env, "keys", "show", key_id, "--db", db, "--json").stdout)
    assert KEY_FIELDS <= set(shown) and "secret" not in shown
    assert old_secret not in json.dumps(shown)

    run(env, "keys", "rename", key_id, "billing v2", "--db", db)
    replaced = json.loads(run(env, "keys", "replace", key_id, "--yes", "--json", "--db", db).stdout)
    assert KEY_FIELDS | {"secret"} <= set(replaced)
    assert replaced["id"] == key_id and replaced["name"] == "billing v2"
    assert replaced["secret"] != old_secret

    rejected = run(env, "verify", "--db", db, stdin=old_secret + "\n", code=1, answer=True)
    assert rejected.stdout.strip() == "NOT_FOUND"
    valid = json.loads(
        run(
            env,
            "verify",
            "--host",
            "10.1.2.3",
            "--json",
            "--db",
            db,
            stdin=replaced["secret"] + "\n",
        ).stdout
    )
    assert valid == {
        "valid": True,
        "code": "VALID",
        "key_id": key_id,
        "owner": ME,
        "role": "read-write",
    }
    host = run(
        env,
        "verify",
        "--host",
        "192.0.2.1",
        "--db",
        db,
        stdin=replaced["secret"],
        code=1,
        answer=True,
    )
    assert host.stdout.startswith("HOST_NOT_ALLOWED")

    revoked = json.loads(run(env, "keys", "revoke", key_id, "--yes", "--json", "--db", db).stdout)
    assert [k["id"] for k in revoked["revoked"]] == [key_id] and revoked["skipped"] == []
    assert revoked["revoked"][0]["revoked_by"] == ME
    again = run(env, "keys", "revoke", key_id, "--yes", "--db", db, code=1)
    assert "already revoked" in refusal(again)

    run(env, "keys", "delete", key_id, "--yes", "--db", db)
    assert "no key" in refusal(run(env, "keys", "show", key_id, "--db", db, code=1))
    events = json.loads(run(env, "events", "--key", key_id, "--json", "--db", db).stdout)
    changes = [e for e in events if e["action"] != "key.verify_failed"]
    assert [e["action"] for e in changes] == [
        "key.delete",
        "key.revoke",
        "key.replace",
        "key.rename",
        "key.create",
    ]
    assert all(e["face"] == "cli" and e["actor"] == ME for e in changes)
    for secret in (old_secret, replaced["secret"]):
        assert secret[14:46] not in json.dumps(events)


def test_create_prints_the_secret_alone_on_stdout(env, db):
    result = run(env, "keys", "create", "--name", "plain", "--db", db)
    secret = result.stdout.strip()
    assert result.stdout.count("\n") == 1 and secret.startswith("kt_")
    assert "shown once" in result.stderr and secret not in result.stderr
    assert run(env, "verify", "--db", db, stdin=secret).stdout.startswith("VALID")


def test_destructive_commands_need_yes_without_a_terminal(env, db):
    service = service_on(db)
    keys = [service.create_key(f"k{i}").key.id for i in range(2)]
    service.close()
    for args in (
        ["keys", "replace", keys[0]],
        ["keys", "revoke", *keys],
        ["keys", "delete", keys[1]],
    ):
        assert "--yes" in refusal(run(env, *args, "--db", db, code=2))
    service = service_on(db)
    assert [service.get_key(k).status for k in keys] == ["active", "active"]
    assert [e.action for e in service.list_events()] == ["key.create", "key.create", "user.add"]
    service.close()


def test_a_terminal_is_asked_and_no_keeps_everything(env, db):
    import pty

    service = service_on(db)
    key_id = service.create_key("k").key.id
    service.close()
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(KEYTUI), "keys", "revoke", key_id, "--db", db],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        os.write(controller, b"n\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 1 and "irreversible" in err and "cancelled" in err
    service = service_on(db)
    assert service.get_key(key_id).status == "active"
    service.close()


def test_bad_usage_and_bad_databases_exit_cleanly(env, tmp_path):
    assert "frobnicate" in run(env, "keys", "frobnicate", code=2).stderr
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("this is not a database\n" * 100)
    for target in (str(not_a_db), "nosuchdriver://x/y"):
        result = run(env, "keys", "list", "--db", target, code=1)
        assert "database" in refusal(result)


def test_list_pages_through_more_than_500_keys(env, db):
    service = service_on(db)
    from keytui.core.demo import seed_demo

    seed_demo(service, 1203)
    revoked = service.count_keys(status="revoked")
    service.close()
    listed = json.loads(run(env, "keys", "list", "--db", db, "--json").stdout)
    assert len(listed) == len({k["id"] for k in listed}) == 1203
    assert all(KEY_FIELDS <= set(k) and "secret" not in k for k in listed)
    text = run(env, "keys", "list", "--status", "revoked", "--db", db).stdout.splitlines()
    assert text[0].startswith("ID") and len(text) == revoked + 1
    assert all(" revoked " in line for line in text[1:])
    capped = json.loads(
        run(
            env, "keys", "list", "--limit", "7", "--sort", "name", "--asc", "--json", "--db", db
        ).stdout
    )
    assert [k["name"] for k in capped] == sorted(k["name"] for k in listed)[:7]


def test_database_url_from_the_environment(env, db):
    created = run(
        {**env, "KEYTUI_DATABASE_URL": f"sqlite:///{db}"},
        "keys",
        "create",
        "--name",
        "from env",
        "--json",
    )
    key_id = json.loads(created.stdout)["id"]
    assert (
        json.loads(run(env, "keys", "show", key_id, "--json", "--db", db).stdout)["name"]
        == "from env"
    )
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"


def test_unknown_user_is_refused_until_added(env, db):
    alice = service_on(db, actor="alice")
    alice.create_key("alice's")
    before = alice.counts().total
    for args in (["keys", "create", "--name", "mine"], ["keys", "list"]):
        result = run(env, *args, "--db", db, code=1)
        assert f"keytui users add {ME}" in refusal(result)
    alice.add_user(ME, "viewer")
    assert "alice's" in run(env, "keys", "list", "--db", db).stdout
    refused = run(env, "keys", "create", "--name", "mine", "--db", db, code=1)
    assert "viewer may not create keys" in refusal(refused)
    assert alice.counts().total == before
    alice.close()


# -- through CliRunner (same entry point, in process) -------------------------------------------


def test_users_roles_and_settings(db):
    invoke("users", "add", "bob", "--role", "developer", "--db", db)
    users = json.loads(invoke("users", "list", "--json", "--db", db).stdout)
    assert sorted((u["login"], u["role"]) for u in users) == sorted(
        [("bob", "developer"), (ME, "admin")]
    )
    assert all(u["created_at"].endswith("Z") and "+00:00" not in u["created_at"] for u in users)
    invoke("users", "set-role", "bob", "viewer", "--db", db)
    assert "bob" in invoke("users", "list", "--db", db).stdout
    assert "last admin" in invoke("users", "set-role", ME, "viewer", "--db", db, code=1).stderr
    assert "last admin" in invoke("users", "remove", ME, "--db", db, code=1).stderr
    invoke("users", "remove", "bob", "--db", db)
    invoke("users", "add", "x", "--role", "owner", "--db", db, code=2)
    invoke("users", "remove", "nobody", "--db", db, code=1)

    invoke("roles", "add", "deploy", "--db", db)
    assert invoke("roles", "list", "--db", db).stdout.splitlines() == [
        "deploy",
        "read-only  (developers may grant it)",
        "read-write",
    ]
    assert json.loads(invoke("roles", "list", "--json", "--db", db).stdout)[0] == "deploy"
    invoke("keys", "create", "--name", "d", "--role", "deploy", "--db", db)
    assert "revoke or delete" in invoke("roles", "remove", "deploy", "--db", db, code=1).stderr
    invoke("roles", "add", "Bad Role", "--db", db, code=2)

    assert json.loads(invoke("settings", "show", "--json", "--db", db).stdout) == {
        "keys_enabled": True,
        "max_expiry_days": None,
        "max_keys_per_user": 100,
        "require_reason": False,
    }
    invoke("settings", "set", "--max-expiry-days", "30", "--max-keys-per-user", "2", "--db", db)
    shown = invoke("settings", "show", "--db", db).stdout
    assert "30" in shown and "2" in shown
    invoke("keys", "create", "--name", "second", "--db", db)
    limit = invoke("keys", "create", "--name", "third", "--db", db, code=1)
    assert "(2)" in limit.stderr
    invoke("settings", "set", "--max-keys-per-user", "5", "--db", db)
    assert (
        "within 30 days"
        in invoke("keys", "create", "--name", "n", "--expires", "never", "--db", db, code=1).stderr
    )
    invoke("settings", "set", "--max-expiry-days", "none", "--disable", "--db", db)
    assert json.loads(invoke("settings", "show", "--json", "--db", db).stdout) == {
        "keys_enabled": False,
        "max_expiry_days": None,
        "max_keys_per_user": 5,
        "require_reason": False,
    }
    assert "disabled" in invoke("keys", "create", "--name", "n", "--db", db, code=1).stderr
    invoke("settings", "set", "--db", db, code=2)  # nothing to set
    invoke("settings", "set", "--max-keys-per-user", "0", "--db", db, code=2)
    invoke("settings", "set", "--max-expiry-days", "soon", "--db", db, code=2)

    events = json.loads(invoke("events", "--limit", "2", "--json", "--db", db).stdout)
    assert [e["action"] for e in events] == ["settings.update"] * 2
    assert set(events[0]) >= {"id", "at", "actor", "action", "key_id", "face", "details"}
    assert events[0]["details"]["keys_enabled"] == [True, False]
    text = invoke("events", "--action", "role.add", "--db", db).stdout.splitlines()
    assert len(text) == 1 and "role.add" in text[0] and "deploy" in text[0]


def test_verify_reads_only_stdin(db):
    service = service_on(db)
    secret = service.create_key("k").secret
    service.update_settings(keys_enabled=False)
    service.close()
    result = invoke("verify", "--json", "--db", db, stdin=secret + "\n", code=1, answer=True)
    assert json.loads(result.stdout)["code"] == "DISABLED"
    invoke("verify", secret, "--db", db, code=2)  # never as an argument
    assert invoke("verify", "--db", db, stdin="", code=1, answer=True).stdout.strip() == "MALFORMED"


def test_bulk_revoke_reports_skipped_keys(db):
    service = service_on(db)
    active, done = (service.create_key(n).key.id for n in ("a", "b"))
    service.revoke_key(done)
    service.close()
    result = invoke(
        "keys",
        "revoke",
        active,
        done,
        "zzzzzzzzzz",
        "--yes",
        "--json",
        "--db",
        db,
        code=0,  # some revoked: a success that names what it skipped
        answer=True,
    )
    body = json.loads(result.stdout)
    assert [k["id"] for k in body["revoked"]] == [active]
    assert body["skipped"] == [
        {"id": done, "reason": "already revoked"},
        {"id": "zzzzzzzzzz", "reason": "not found"},
    ]
    text = invoke("keys", "revoke", active, done, "--yes", "--db", db, code=1, answer=True)
    assert text.stderr.splitlines() == [
        f"keytui: skipped 2: {active} (already revoked), {done} (already revoked)"
    ]  # nothing could be revoked: exit 1


def test_list_text_is_safe_for_a_terminal(db):
    service = service_on(db)
    service.create_key("[b]bold[/b]")
    service.close()
    listed = invoke("keys", "list", "--search", "[b]", "--db", db).stdout
    assert "[b]bold[/b]" in listed and "\x1b" not in listed
    assert "no keys match" in invoke("keys", "list", "--search", "nothing", "--db", db).stderr


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["keys", "create", "--name", "x", "--expires", "yesterday"], 2, "not an expiry"),
        (["keys", "create", "--name", ""], 2, "empty"),
        (["keys", "list", "--status", "dead"], 2, "dead"),
        (["keys", "frobnicate"], 2, "frobnicate"),
        (["keys", "show", "zzzzzzzzzz"], 1, "no key with ID"),
        (["keys", "create", "--name", "x", "--role", "god"], 1, "no key role"),
    ],
)
def test_exit_codes_and_one_line_refusals(db, args, code, says):
    # The console script's own exit codes are checked above; these run in process.
    assert says in invoke(*args, "--db", db, code=code).stderr


def test_db_option_before_the_command(db):
    service = service_on(db)
    key_id = service.create_key("early").key.id
    service.close()
    assert (
        json.loads(invoke("--db", db, "keys", "show", key_id, "--json").stdout)["name"] == "early"
    )


def test_usage_errors_are_one_line_naming_the_help(tmp_path):
    """A mistyped command or option: one line on stderr, exit 2, and where the help is."""
    import subprocess
    import sys
    from pathlib import Path

    keytui = Path(sys.executable).parent / "keytui"
    for args, words in (
        (["keys", "lst"], "No such command 'lst'"),
        (["keys", "create"], "Missing option '--name'"),
        (["keys", "list", "--limit", "x"], "--limit"),
    ):
        done = subprocess.run(
            [str(keytui), "--db", str(tmp_path / "k.db"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert words in lines[0] and "--help" in lines[0]


def test_a_revoke_of_many_unknown_ids_says_so_in_one_line(db):
    """Hypothesis found `keys revoke '' 0 00` printing a line per ID."""
    service_on(db).close()
    result = invoke("keys", "revoke", "", "0", "00", "--yes", "--db", db, code=1, answer=True)
    assert result.stderr.splitlines() == [
        "keytui: skipped 3: '' (not found), 0 (not found), 00 (not found)"
    ]


def test_the_service_is_closed_with_the_command(db):
    """The command's service closes with its context (click's call_on_close): the use that
    verify counted in memory is written before the command returns."""
    service = service_on(db)
    issued = service.create_key("counted")
    invoke("verify", "--db", db, stdin=issued.secret + "\n")
    assert service.get_key(issued.key.id).use_count == 1
    service.close()


def test_create_defaults_to_90_days_or_the_maximum(db):
    """The CLI's default expiry is the service's key_defaults(), as the app's form."""
    from datetime import datetime, timedelta

    def lifetime() -> timedelta:
        key = json.loads(invoke("keys", "create", "--name", "d", "--json", "--db", db).stdout)
        created, expires = (datetime.fromisoformat(key[f]) for f in ("created_at", "expires_at"))
        return expires - created

    assert lifetime() == timedelta(days=90)
    invoke("settings", "set", "--max-expiry-days", "30", "--db", db)
    assert lifetime() == timedelta(days=30)
