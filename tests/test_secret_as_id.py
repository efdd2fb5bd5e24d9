"""A secret typed where a key ID is asked for (issues 11, 12): a whole one stands for its key (said
so, with its key ID); one cut short or mistyped is refused; never a character of its random part
is printed, in any command that takes an ID."""

from __future__ import annotations

import pytest

from keytui.core import validate
from keytui.core.errors import InvalidInput
from keytui.core.service import KeyService

from .test_cli import env as env  # noqa: F401 - a fixture
from .test_cli import run, service_on

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings


def random_part(secret: str) -> str:
    return secret[len("kt_") + 10 + 1 :]


def leaks(text: str, secret: str) -> bool:
    """Does ``text`` hold any 4 characters in a row of the secret's random part?"""
    part = random_part(secret)
    return any(part[i : i + 4] in text for i in range(len(part) - 3))


def test_every_command_taking_an_id_takes_a_secret_for_its_key_without_echoing_it(env, tmp_path):
    db = str(tmp_path / "s.db")
    service = service_on(db)
    issued = service.create_key("ci")
    service.close()
    secret, key_id = issued.secret, issued.key.id
    for args in (("keys", "show", secret), ("events", "--key", secret)):
        result = run(env, "--db", db, *args, code=0)
        said = result.stdout + result.stderr
        assert "secret" in result.stderr and key_id in said, (args, said)
        assert not leaks(said, secret), (args, said)
    for given in (f"  {secret[:24].upper()}", secret[:-1] + ("x" if secret[-1] != "x" else "y")):
        for args in (
            ("keys", "show", given),
            ("keys", "rename", given, "new"),
            ("keys", "replace", "--yes", given),
            ("keys", "revoke", "--yes", given),
            ("keys", "delete", "--yes", given),
            ("events", "--key", given),
        ):
            result = run(env, "--db", db, *args, code=2)  # cut short or mistyped: refused
            said = result.stdout + result.stderr
            assert "secret" in said, (args, said)
            assert not leaks(said, secret), (args, said)
    with KeyService.open(db) as again:
        assert again.get_key(key_id).status == "active"  # nothing changed


def test_the_rule_is_in_the_core(make_sqlite_service):
    service = make_sqlite_service("alice")
    issued = service.create_key("ci")
    assert service.get_key(issued.secret).id == issued.key.id
    assert [k.id for k in service.plan_revoke([issued.secret]).revoke] == [issued.key.id]
    cut = issued.secret[:24]
    for call in (
        lambda s: service.get_key(s),
        lambda s: service.plan_revoke([s]),
        lambda s: service.list_events(key_id=s),
    ):
        with pytest.raises(InvalidInput) as refused:
            call(cut)
        assert "secret" in str(refused.value)
        assert not leaks(str(refused.value), issued.secret)
    assert validate.key_ref(" AbC ") == "abc"


def test_the_events_key_filter_takes_the_start_of_an_id(make_sqlite_service):
    service = make_sqlite_service("alice")
    one, two = service.create_key("one").key, service.create_key("two").key
    found = service.list_events(key_id=one.id[:4])
    assert found and {event.key_id for event in found} <= {one.id, two.id}
    assert one.id in {event.key_id for event in found}
    assert [e.key_id for e in service.list_events(key_id=one.id)] == [one.id]
    assert service.list_events(key_id="%") == []  # a wildcard is a character, not a pattern
