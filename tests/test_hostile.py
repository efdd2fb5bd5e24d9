"""Hostile input at the core and the command line (issue 5).

Markup, ANSI and OSC escapes, right-to-left overrides, NUL and 10 MB strings are refused with a
clear InvalidInput where they are invalid and shown harmlessly where they are stored; Hypothesis
drives the service and the CLI with arbitrary text: no traceback, no change on a refused call.
Garbage secrets cost no argon2 and no database statement.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, insert, select

from keytui import cli
from keytui.core import keyformat
from keytui.core import service as service_module
from keytui.core import verify as verify_module
from keytui.core.errors import InvalidInput, KeytuiError
from keytui.core.filter import quoted
from keytui.core.identity import current_login
from keytui.core.models import Event, Key

HOSTILE = [
    "[b]bold[/b]",
    "[/",
    "[link=http://evil]x[/link]",
    "\x1b[2J",
    "\x1b]52;c;ZXZpbA==\x07",
    "abc\u202edcba",
    "nul\x00byte",
    "\x9b31m",
    "bell\x07",
    "new\nline",
    "tab\there",
    "\u200f\u2066",
    "x" * 10_000_000,
]
PRINTABLE_BUT_ODD = [
    "[b]bold[/b]",
    "[/",
    "[link=http://evil]x[/link]",
    "🔑 key",
    "ｆｕｌｌ",
    "'; DROP TABLE keys; --",
    "%_\\",
    "{}",
]
NON_PRINTABLE = [s for s in HOSTILE if not s.isprintable()]

hypothesis_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def snapshot(service) -> tuple:
    """Everything a refused call must leave as it was."""
    with service.db.read() as session:
        keys = session.execute(
            select(
                Key.key_id,
                Key.name,
                Key.description,
                Key.owner,
                Key.revoked_at,
                Key.secret_hash,
                Key.allowed_hosts,
            ).order_by(Key.pk)
        ).all()
        events = session.scalar(select(func.count()).select_from(Event))
    return tuple(keys), events, service.get_settings(), tuple(service.list_users())


class StatementCounter:
    def __init__(self, engine):
        self.statements: list[str] = []
        self.engine = engine

    def __call__(self, _conn, _cursor, statement, *_args):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)

    @property
    def selects(self) -> int:
        return sum(s.lstrip().upper().startswith("SELECT") for s in self.statements)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc):
        event.remove(self.engine, "before_cursor_execute", self)


# -- refused where invalid, kept verbatim where valid -----------------------------------------


@pytest.mark.parametrize("bad", NON_PRINTABLE, ids=lambda s: repr(s[:12]))
def test_hostile_text_is_refused_without_change(admin, bad):
    issued = admin.create_key("target")
    before = snapshot(admin)
    calls = [
        lambda: admin.create_key(bad),
        lambda: admin.create_key("ok", description=bad),
        lambda: admin.create_key("ok", owner=bad),
        lambda: admin.create_key("ok", allowed_hosts=[bad]),
        lambda: admin.rename_key(issued.key.id, bad),
        lambda: admin.rename_key(issued.key.id, "ok", bad),
        lambda: admin.add_user(bad, "viewer"),
        lambda: admin.add_role(bad),
    ]
    for call in calls:
        started = time.perf_counter()
        with pytest.raises(InvalidInput) as refused:
            call()
        assert time.perf_counter() - started < 0.5  # bounded before any expensive work
        message = str(refused.value)
        assert message.isprintable() and len(message) < 300
    # Lookups by a hostile ID, login or search find nothing and say so in one clean line.
    for call in (
        lambda: admin.get_key(bad),
        lambda: admin.revoke_key(bad),
        lambda: admin.replace_key(bad),
        lambda: admin.delete_keys([bad]),
        lambda: admin.set_user_role(bad, "viewer"),
        lambda: admin.remove_user(bad),
        lambda: admin.remove_role(bad),
    ):
        with pytest.raises(KeytuiError) as refused:
            call()
        assert str(refused.value).isprintable() and len(str(refused.value)) < 300
    for call in (
        lambda: admin.list_keys(service_module.KeyQuery(search=bad)),
        lambda: admin.list_events(search=bad),
        lambda: admin.count_keys(search=bad),
    ):
        try:
            call()
        except InvalidInput as refused:
            assert str(refused).isprintable()
    assert snapshot(admin) == before


@pytest.mark.parametrize("odd", PRINTABLE_BUT_ODD)
def test_printable_odd_text_is_stored_verbatim(admin, odd):
    issued = admin.create_key(odd, description=odd)
    assert admin.get_key(issued.key.id).name == odd
    assert admin.get_key(issued.key.id).description == odd
    found = admin.list_keys(service_module.KeyQuery(search=quoted(odd, free=True))).keys
    assert [k.id for k in found] == [issued.key.id]


# -- shown harmlessly where stored -------------------------------------------------------------


def test_cli_shows_stored_escapes_harmlessly(admin, db_url):
    """A row written behind keytui's back (raw SQL) with escapes in every text column."""
    admin.add_user(current_login(), "admin")
    evil = "\x1b]52;c;ZXZpbA==\x07[b]x\x1b[2J\u202eevil\x00"
    now = admin.now()
    evil_sql = evil.replace("\x00", "") if not admin.db.is_sqlite else evil  # PG has no NUL
    with admin.db.write() as session:
        session.execute(
            insert(Key),
            [
                {
                    "key_id": "evil000001",
                    "name": evil_sql,
                    "description": evil_sql,
                    "owner": evil_sql,
                    "role": evil_sql,
                    "secret_hash": "x",
                    "created_at": now,
                    "updated_at": now,
                    "use_count": 0,
                    "allowed_hosts": json.dumps([evil_sql]),
                }
            ],
        )
        session.execute(
            insert(Event),
            [
                {  # a forged event: breaks the chain, shown harmlessly
                    "at": now,
                    "actor": evil_sql,
                    "action": evil_sql,
                    "key_id": evil_sql[:16],
                    "face": evil_sql[:16],
                    "details": json.dumps({"x": evil_sql}),
                    "prev_hash": "0",
                    "hash": "0",
                }
            ],
        )
    runner = CliRunner()
    outputs = []
    for args in (
        ["keys", "list"],
        ["keys", "show", "evil000001"],
        ["keys", "list", "--json"],
        ["keys", "show", "evil000001", "--json"],
        ["events"],
    ):
        result = runner.invoke(cli.main, [*args, "--db", db_url])
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout + result.stderr)
    for output in outputs:
        assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
        assert "\x00" not in output and "\x9b" not in output
    assert "[b]x" in outputs[1]  # markup is plain text in a terminal without rich
    assert json.loads(outputs[3])["name"] == evil_sql  # JSON keeps it exactly, escaped


# -- Hypothesis drives the service and the CLI -------------------------------------------------

text = st.one_of(
    st.text(max_size=120),
    st.sampled_from(HOSTILE[:-1]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=90, max_size=600),
)


@hypothesis_settings
@given(
    name=text,
    description=text,
    owner=st.one_of(st.none(), text),
    hosts=st.lists(text, max_size=3),
    new_name=text,
)
def test_service_under_arbitrary_input(admin, name, description, owner, hosts, new_name):
    before = snapshot(admin)
    try:
        issued = admin.create_key(name, description=description, owner=owner, allowed_hosts=hosts)
    except KeytuiError as refused:
        assert str(refused).isprintable()
        assert snapshot(admin) == before
        return
    assert issued.key.name == name.strip()
    key = admin.get_key(issued.key.id)
    assert key.name == name.strip() and key.description == description.strip()
    before = snapshot(admin)
    try:
        admin.rename_key(key.id, new_name)
    except KeytuiError as refused:
        assert str(refused).isprintable()
        assert snapshot(admin) == before
    else:
        assert admin.get_key(key.id).name == new_name.strip()
    admin.delete_keys([key.id])


@hypothesis_settings
@given(
    command=st.sampled_from(["keys", "users", "roles", "settings", "events", "verify"]),
    args=st.lists(
        st.one_of(
            text,
            st.sampled_from(
                [
                    "keys",
                    "create",
                    "list",
                    "show",
                    "rename",
                    "revoke",
                    "delete",
                    "replace",
                    "--name",
                    "--description",
                    "--allowed-host",
                    "--owner",
                    "--json",
                    "--yes",
                    "users",
                    "add",
                    "roles",
                    "events",
                    "verify",
                    "settings",
                    "set",
                    "--search",
                    "--max-keys-per-user",
                ]
            ),
        ),
        max_size=8,
    ),
)
@example(command="keys", args=["list", "\x1b]52;c;ZXZpbA==\x07"])  # click echoed it raw once
@example(command="keys", args=["--\x1b[2J"])
def test_cli_under_arbitrary_arguments(sqlite_url, command, args):
    """Always a command first: bare ``keytui`` would open the full-screen app."""
    runner = CliRunner()
    result = runner.invoke(cli.main, [command, *args, "--db", sqlite_url], input="")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    if result.exit_code not in (0, 2):  # click's own usage errors have their usage lines
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
    assert "\x1b" not in result.stderr


# -- a verify flood --------------------------------------------------------------------------


def test_garbage_secret_flood_costs_no_argon2_and_no_statement(admin, monkeypatch):
    real = admin.create_key("real")
    argon2_calls = []
    original = verify_module.verify_secret
    monkeypatch.setattr(
        verify_module, "verify_secret", lambda *a, **k: argon2_calls.append(1) or original(*a, **k)
    )
    body = real.secret[: -keyformat.CHECKSUM_LENGTH]
    garbage = [
        "",
        "kt_",
        "x" * 10_000_000,
        "\x00" * 50,
        real.secret + "x",
        body + "000000",
        real.secret.upper(),
        "kt_" + "a" * 60,
    ] + [keyformat.new_secret(real.key.id)[:-1] + "!" for _ in range(1000)]
    with StatementCounter(admin.db.engine) as statements:
        for secret in garbage:
            assert admin.verify(secret).code == "MALFORMED"
    assert statements.count == 0 and argon2_calls == []
    # An unknown but well-formed ID: one read each, still no argon2.
    unknown = [keyformat.new_secret(keyformat.new_key_id()) for _ in range(50)]
    with StatementCounter(admin.db.engine) as statements:
        for secret in unknown:
            assert admin.verify(secret).code == "NOT_FOUND"
    assert statements.selects == 50 and argon2_calls == []


def test_wrong_secret_flood_for_a_real_key_is_one_event_per_flush(make_service):
    admin = make_service("alice")
    verifier = make_service("alice", usage_flush_seconds=3600)
    real = admin.create_key("real")
    other = admin.create_key("other")
    refused = ("NOT_FOUND",)  # by the hash's check value: never THROTTLED, no argon2
    for _ in range(200):
        assert verifier.verify(keyformat.new_secret(real.key.id)).code in refused
    for _ in range(30):
        assert verifier.verify(keyformat.new_secret(other.key.id)).code in refused
    assert admin.list_events(action="verify_failed") == []  # nothing per request
    assert verifier.verify(real.secret).valid  # its argon2 run from the key's reserve
    verifier.flush_usage()
    found = {e.key_id: e.details["count"] for e in admin.list_events(action="verify_failed")}
    assert found == {real.key.id: 200, other.key.id: 30}
    verifier.verify(keyformat.new_secret(real.key.id))
    verifier.flush_usage()
    assert len(admin.list_events(action="verify_failed")) == 3
    assert admin.verify_event_chain().ok
