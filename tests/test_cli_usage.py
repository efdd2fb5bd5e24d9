"""``keytui keys usage ID [--json]``: the numbers the details screen shows, for an ID or a pasted
secret, without counting a use; refusals are one line."""

from __future__ import annotations

import json

import pytest

from keytui.core import keyformat

from .test_cli import db, env, invoke, service_on

__all__ = ["db", "env"]  # the fixtures, shared with test_cli

pytestmark = pytest.mark.clock  # test_cli's fixtures, on the real clock as the CLI runs


def test_usage_prints_the_numbers_for_an_id_or_a_secret(db):
    service = service_on(db)
    issued = service.create_key("worker")
    for _ in range(3):
        assert service.verify(issued.secret, host="10.0.0.9").valid
    assert not service.verify(keyformat.new_secret(issued.key.id), host="203.0.113.5").valid
    service.close()  # writes the buffered counts

    found = json.loads(invoke("--db", db, "keys", "usage", issued.key.id, "--json").stdout)
    assert (found["uses_24h"], found["use_count"], found["last_used_host"]) == (3, 3, "10.0.0.9")
    assert found["outcomes_24h"]["valid"] == 3 and found["outcomes_24h"]["wrong_secret"] == 1
    assert found["last_refused_host"] == "203.0.113.5"
    assert len(found["hourly"]) == 24 and found["hourly"][-1] == 3
    assert len(found["daily"]) == 30 and found["daily"][-1] == 3
    assert found["heavy"] is False and found["refused"] is False

    shown = invoke("--db", db, "keys", "usage", issued.secret).stdout  # a pasted secret
    assert issued.secret not in shown and issued.secret.split("_")[-1] not in shown
    assert "Last used:" in shown and "from 10.0.0.9" in shown
    assert "3 in 24 h" in shown and "wrong_secret" in shown
    again = json.loads(invoke("--db", db, "keys", "usage", issued.key.id, "--json").stdout)
    assert again["use_count"] == 3  # reading usage is no use


def test_usage_refuses_in_one_line(db):
    service = service_on(db)
    issued = service.create_key("worker")
    service.close()
    missing = invoke("--db", db, "keys", "usage", "zzzzzzzzzz", code=1)
    assert "no key with ID" in missing.stderr
    broken = issued.secret[:-2] + ("aa" if not issued.secret.endswith("aa") else "bb")
    refused = invoke("--db", db, "keys", "usage", broken, code=2)
    assert broken not in refused.stderr and broken.split("_")[-1] not in refused.stderr


def test_usage_of_a_secrets_tail_repeats_none_of_it(db):
    """The random part of a secret pasted without its kt_ and ID is no key ID: the refusal
    says so without a word of it (it was echoed, lower-cased, cut at 20 characters)."""
    service = service_on(db)
    issued = service.create_key("worker")
    service.close()
    tail = issued.secret.split("_")[-1]
    missing = invoke("--db", db, "keys", "usage", tail, code=1)
    assert "no key with ID like that (38 characters" in missing.stderr
    assert tail[:8].lower() not in missing.stderr.lower()
