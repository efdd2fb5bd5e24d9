"""Issue 10, "Bad data never becomes a traceback": rows altered by hand into values that are no
values list as damaged (and fail closed), events verify names the event; typed input that is no
input (huge limits, bad URLs, closed stdin, huge IDs) is one line and a non-zero exit."""

from __future__ import annotations

import json
import string
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from keytui.cli import main
from keytui.core.clock import DAMAGED_TIME
from keytui.core.errors import InvalidInput
from keytui.core.values import KeyQuery

from .conftest import closes_descriptors
from .test_cli import KEYTUI, check_stderr, env, invoke, service_on

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

__all__ = ["env"]  # the CLI tests' fixture


def execute(service, sql: str, **params) -> None:
    with service.db.engine.begin() as connection:
        connection.execute(text(sql), params)


def tamper(service, postgres: bool) -> tuple[str, str, int]:
    """Three keys and their events; one key's expiry and one event's time made impossible,
    another key's allowed hosts made not JSON. Returns (expiry key, hosts key, event id)."""
    bad_expiry = service.create_key("bad expiry", expires="30d").key.id
    bad_hosts = service.create_key("bad hosts", allowed_hosts=["10.0.0.1"]).key.id
    service.create_key("fine")
    impossible = "infinity" if postgres else "2026-02-30 00:00:00.000000"
    execute(
        service, "UPDATE keys SET expires_at = :v WHERE key_id = :k", v=impossible, k=bad_expiry
    )
    execute(service, "UPDATE keys SET allowed_hosts = 'not json' WHERE key_id = :k", k=bad_hosts)
    victim = service.list_events(action="key.create")[-1].id
    garbage = "infinity" if postgres else "garbage"
    execute(service, "UPDATE events SET at = :v WHERE id = :i", v=garbage, i=victim)
    execute(service, "UPDATE events SET details = '{not json' WHERE id = :i", i=victim + 1)
    return bad_expiry, bad_hosts, victim


def test_damaged_rows_list_as_damaged_and_fail_closed(make_service, db_url):
    service = make_service("alice")
    bad_expiry, bad_hosts, victim = tamper(service, "postgres" in db_url)
    keys = {key.id: key for key in service.iter_keys()}
    assert keys[bad_expiry].damaged == ("expires_at",)
    assert keys[bad_expiry].expires_at == DAMAGED_TIME
    assert keys[bad_expiry].status == "expired"  # a damaged expiry fails closed
    assert keys[bad_hosts].damaged == ("allowed_hosts",)
    assert service.get_key(bad_expiry).to_json()["damaged"] == ["expires_at"]
    assert service.get_key(bad_hosts).allowed_hosts == ()
    assert service.counts().total == 3
    events = {event.id: event for event in service.list_events(limit=100)}
    assert events[victim].damaged == ("at",)
    assert events[victim + 1].damaged == ("details",)
    status = service.verify_event_chain()
    assert not status.ok and status.first_bad_id == victim
    assert "time" in status.reason


def test_damaged_rows_in_the_cli(tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    bad_expiry, bad_hosts, victim = tamper(service, False)
    service.close()
    broken = invoke("events", "verify", "--db", db, code=1)
    assert f"broken at event {victim}" in broken.stderr
    listed = invoke("keys", "list", "--db", db).stdout
    assert listed.count("damaged") >= 2
    shown = invoke("keys", "show", bad_hosts, "--db", db).stdout
    assert "Damaged:" in shown and "allowed_hosts" in shown
    assert "Allowed hosts: damaged" in shown
    assert "damaged" in invoke("keys", "show", bad_expiry, "--db", db).stdout
    assert json.loads(invoke("keys", "show", bad_expiry, "--json", "--db", db).stdout)["damaged"]
    assert "(damaged: at)" in invoke("events", "--db", db).stdout
    assert json.loads(invoke("keys", "list", "--json", "--db", db).stdout)


@pytest.mark.parametrize("command", [("keys", "list"), ("events",)])
def test_huge_limits_are_bad_usage(tmp_path, command):
    db = str(tmp_path / "cli.db")
    service_on(db).close()
    result = invoke(*command, "--limit", "99999999999999999999", "--db", db, code=2)
    assert "--limit" in result.stderr


def test_the_service_bounds_pages(make_sqlite_service):
    service = make_sqlite_service("alice")
    with pytest.raises(InvalidInput):
        service.list_keys(KeyQuery(limit=10**20))
    with pytest.raises(InvalidInput):
        service.list_events(limit=10**20)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{dir}/x.db?timeout=abc",
        "sqlite:///{dir}/x.db?mode=ro",
        "sqlite:///{dir}/x.db?check_same_thread=maybe",
        "postgresql://u@[::1/x",
        "postgresql://u:secretpw@[::1/x",
        "nosuchdriver://x/y",
    ],
)
def test_bad_urls_are_one_line_and_leave_no_file(tmp_path, url):
    target = url.format(dir=tmp_path)
    result = invoke("keys", "list", "--db", target, code=2 if "?" in url or "[" in url else 1)
    assert "secretpw" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def run_closed(env, script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script, "bash", str(KEYTUI), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@closes_descriptors
def test_closed_stdin_is_one_line(env, tmp_path):
    db = str(tmp_path / "cli.db")
    service = service_on(db)
    key = service.create_key("k").key.id
    verify = run_closed(env, '"$@" <&-', "verify", "--db", db)
    assert verify.returncode == 2
    check_stderr(verify.stderr, 2, False)
    revoke = run_closed(env, '"$@" <&-', "keys", "revoke", key, "--db", db)
    assert revoke.returncode == 2
    check_stderr(revoke.stderr, 2, False)
    assert "--yes" in revoke.stderr
    assert service.get_key(key).status == "active"
    service.close()


def test_a_huge_id_is_not_echoed_whole(tmp_path):
    db = str(tmp_path / "cli.db")
    service_on(db).close()
    huge = "a" * 100_000
    for args in (
        ("keys", "revoke", huge, "--yes"),
        ("keys", "revoke", huge),
        ("keys", "show", huge),
        ("keys", "delete", huge, "--yes"),
        ("keys", "rename", huge, "x"),
        ("keys", "replace", huge, "--yes"),
        ("events", "--key", huge),
    ):
        result = CliRunner().invoke(main, [*args, "--db", db])
        assert result.exit_code in (1, 2), (args, result.exception)
        assert "Traceback" not in result.stderr
        assert len(result.stderr) < 400, (args, len(result.stderr))


ID_TEXT = st.text(
    alphabet=st.sampled_from(string.printable + "é\x00\x1b\u202e"), min_size=0, max_size=300
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(
        [("keys", "show"), ("keys", "revoke", "--yes"), ("keys", "delete", "--yes")]
    ),
    key_id=ID_TEXT,
)
@example(command=("keys", "show"), key_id="-h")
@example(command=("keys", "revoke", "--yes"), key_id="-x")
def test_any_id_is_a_clean_refusal(tmp_path_factory, command, key_id):
    db = str(tmp_path_factory.getbasetemp() / "hypothesis.db")
    if not Path(db).exists():
        service_on(db).close()
    result = CliRunner().invoke(main, [*command, key_id, "--db", db])
    if key_id in ("-h", "--help"):  # not an ID: the help option, as on every command
        assert result.exit_code == 0 and "Usage:" in result.output, (command, result.output)
        return
    assert result.exit_code in (1, 2), (command, key_id, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.stderr
    assert len(result.stderr) < 2000


def test_json_nested_past_the_parser_is_damage_not_a_traceback(make_service):
    """Allowed hosts and event details nested deeper than the JSON parser recurses (a
    RecursionError, not a ValueError) read as damaged, and verify refuses the key."""
    service = make_service("alice")
    issued = service.create_key("deep", allowed_hosts=["10.0.0.1"])
    deep = "[" * 100_000
    execute(
        service, "UPDATE keys SET allowed_hosts = :v WHERE key_id = :k", v=deep, k=issued.key.id
    )
    event = service.list_events(action="key.create")[0].id
    execute(service, "UPDATE events SET details = :v WHERE id = :i", v=deep, i=event)
    assert service.get_key(issued.key.id).damaged == ("allowed_hosts",)
    assert {e.id: e for e in service.list_events(limit=10)}[event].damaged == ("details",)
    assert service.verify(issued.secret).code.name == "DAMAGED"
    assert not service.verify_event_chain().ok


@pytest.mark.parametrize(
    "garbage", ["garbage", "$argon2id$v=19$m=19456,t=2,p=1$!!!$zz", "$argon2id$v=19$m=1$x$y"]
)
def test_a_garbage_hash_verifies_as_damaged(make_service, garbage):
    """A secret hash argon2 cannot read is the row's damage, said so (DAMAGED, no traceback),
    not a wrong secret (it answered NOT_FOUND, as a wrong secret does)."""
    service = make_service("alice")
    issued = service.create_key("garbled")
    execute(
        service, "UPDATE keys SET secret_hash = :h WHERE key_id = :k", h=garbage, k=issued.key.id
    )
    result = service.verify(issued.secret)
    assert not result.valid
    assert result.code.name == "DAMAGED"
