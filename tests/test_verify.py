"""KeyService.verify: every result code, what each rejection costs, the cache, rehashing, usage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

import keytui.core.verify as verify_module
from keytui.core import keyformat
from keytui.core.changes import wait_until
from keytui.core.hashing import (
    DEFAULT_HASHER,
    check_of,
    check_value,
    make_hasher,
    needs_rehash,
)
from keytui.core.models import Key

from .conftest import FAST_HASHER, NOW, altered


@contextmanager
def sql_log(service) -> Iterator[list[str]]:
    """Every SQL statement ``service`` sends while the block runs."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(service.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(service.db.engine, "before_cursor_execute", record)


@pytest.fixture
def argon2_calls(monkeypatch) -> list[str]:
    """Counts the argon2 verifications the service runs."""
    calls: list[str] = []
    real = verify_module.verify_secret

    def counting(stored_hash, secret, hasher=DEFAULT_HASHER):
        calls.append(stored_hash)
        return real(stored_hash, secret, hasher)

    monkeypatch.setattr(verify_module, "verify_secret", counting)
    return calls


def stored_hash(service, key_id: str) -> str:
    with service.db.read() as session:
        return session.scalar(select(Key.secret_hash).where(Key.key_id == key_id))


# -- the codes ----------------------------------------------------------------------------------


def test_valid_names_the_key_owner_and_role(admin):
    issued = admin.create_key("k", role="read-write")
    result = admin.verify(issued.secret)
    assert (result.valid, result.code, result.key_id, result.owner, result.role) == (
        True,
        "VALID",
        issued.key.id,
        "alice",
        "read-write",
    )
    assert result.to_json() == {
        "valid": True,
        "code": "VALID",
        "key_id": issued.key.id,
        "owner": "alice",
        "role": "read-write",
    }
    assert admin.verify(f"  {issued.secret}\n").valid


@pytest.mark.parametrize("secret", ["", "hello", "kt_" + "x" * 60, None])
def test_malformed(admin, secret):
    result = admin.verify(secret)
    assert (result.valid, result.code, result.key_id) == (False, "MALFORMED", None)


def test_bad_checksum_is_malformed(admin):
    secret = admin.create_key("k").secret
    typo = secret[:20] + ("A" if secret[20] != "A" else "B") + secret[21:]
    assert admin.verify(typo).code == "MALFORMED"


def test_not_found(admin):
    issued = admin.create_key("k")
    assert admin.verify(keyformat.new_secret("zzzzzzzzzz")).code == "NOT_FOUND"
    # The right ID with another random part: no key, and nothing said about the real one.
    forged = admin.verify(keyformat.new_secret(issued.key.id))
    assert (forged.code, forged.key_id, forged.owner) == ("NOT_FOUND", None, None)


def test_revoked(make_service):
    alice = make_service("alice")
    issued = alice.create_key("k")
    alice.revoke_key(issued.key.id)
    result = alice.verify(issued.secret)
    assert (result.valid, result.code, result.key_id) == (False, "REVOKED", issued.key.id)
    # A guess at a revoked key's secret learns nothing more than a guess at any other.
    assert alice.verify(keyformat.new_secret(issued.key.id)).code == "NOT_FOUND"


def test_expired(admin, clock):
    issued = admin.create_key("k", expires="1d")
    clock.advance(hours=23)
    assert admin.verify(issued.secret).code == "VALID"
    clock.advance(hours=1)
    result = admin.verify(issued.secret)
    assert (result.valid, result.code) == (False, "EXPIRED")


def test_disabled(admin):
    issued = admin.create_key("k")
    admin.update_settings(keys_enabled=False)
    result = admin.verify(issued.secret)
    assert (result.valid, result.code) == (False, "DISABLED")
    assert admin.verify(keyformat.new_secret("zzzzzzzzzz")).code == "DISABLED"


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("10.20.30.40", True),
        ("11.0.0.1", False),
        ("2001:db8::1", True),
        ("2001:db9::1", False),
        ("192.168.1.7", True),
        ("192.168.1.8", False),
        ("api.example.com", True),
        ("API.Example.COM", True),
        (" api.example.com ", True),
        ("api.example.com.evil.net", False),
        ("xapi.example.com", False),
        ("a.internal.example.com", True),
        ("a.b.internal.example.com", True),
        ("internal.example.com", False),
        ("evilinternal.example.com", False),
        (None, False),
        ("", False),
    ],
)
def test_allowed_hosts(admin, host, valid):
    secret = admin.create_key(
        "k",
        allowed_hosts=[
            "10.0.0.0/8",
            "2001:db8::/32",
            "192.168.1.7",
            "api.example.com",
            "*.internal.example.com",
        ],
    ).secret
    result = admin.verify(secret, host=host)
    assert result.code == ("VALID" if valid else "HOST_NOT_ALLOWED")
    assert result.valid is valid


def test_no_allowed_hosts_means_any(admin):
    secret = admin.create_key("k").secret
    assert admin.verify(secret).valid and admin.verify(secret, host="203.0.113.9").valid


# -- what a rejection costs ---------------------------------------------------------------------


def test_malformed_costs_no_database_query(admin, argon2_calls):
    secret = admin.create_key("k").secret
    typo = secret[:-1] + ("0" if secret[-1] != "0" else "1")
    with sql_log(admin) as statements:
        for garbage in ("", "garbage", typo, "kt_" + "a" * 50, secret + "x"):
            assert admin.verify(garbage).code == "MALFORMED"
    assert statements == [] and argon2_calls == []
    with sql_log(admin) as statements:  # the listener does see a real verify
        admin.verify(secret)
    assert statements


def test_unknown_id_costs_no_argon2(admin, argon2_calls):
    admin.create_key("k")
    for _ in range(5):
        assert admin.verify(keyformat.new_secret(keyformat.new_key_id())).code == "NOT_FOUND"
    assert argon2_calls == []


@pytest.mark.parametrize("warm", [False, True])
def test_a_verified_secret_skips_argon2_but_sees_revoke_and_replace(
    make_service, argon2_calls, warm
):
    alice = make_service("alice")
    verifier = make_service("alice", warm=warm)  # a long-running verifier elsewhere
    first, second = alice.create_key("one"), alice.create_key("two")
    assert verifier.verify(first.secret).valid and verifier.verify(second.secret).valid
    assert len(argon2_calls) == 2
    for _ in range(5):
        assert verifier.verify(first.secret).valid
    assert len(argon2_calls) == 2  # cached
    wrong = keyformat.new_secret(first.key.id)
    assert verifier.verify(wrong).code == "NOT_FOUND"
    assert verifier.verify(wrong).code == "NOT_FOUND"
    assert len(argon2_calls) == 2  # refused by the hash's check value: no argon2 at all

    alice.revoke_key(first.key.id)
    replaced = alice.replace_key(second.key.id)
    if warm:  # answered from memory until the watcher hears the change (tens of ms)
        assert wait_until(lambda: verifier.verify(first.secret).code == "REVOKED", 10)
        assert wait_until(lambda: verifier.verify(second.secret).code == "NOT_FOUND", 10)
    assert verifier.verify(first.secret).code == "REVOKED"
    assert verifier.verify(second.secret).code == "NOT_FOUND"
    assert verifier.verify(replaced.secret).code == "VALID"
    assert verifier.verifier.answering_from_memory is warm


def test_rehash_upgrades_an_old_hash_on_verify(make_service):
    old = make_service("alice", hasher=FAST_HASHER)
    issued = old.create_key("k")
    before = stored_hash(old, issued.key.id)
    stronger = make_hasher(time_cost=2, memory_cost=2048)
    new = make_service("alice", hasher=stronger)
    assert new.verify(issued.secret).valid
    new.flush_usage()  # hashed on the verify, written by the (background) flush
    after = stored_hash(new, issued.key.id)
    assert after != before and "m=2048,t=2" in after and not needs_rehash(after, stronger)
    assert check_of(after) == check_value(issued.secret)  # the check value kept
    assert new.verify(issued.secret).valid  # cached under the new hash
    new.flush_usage()
    assert stored_hash(new, issued.key.id) == after  # no rehash the second time
    # A verifier still on the old settings must not downgrade it (or two verifiers with
    # different settings would rewrite the hash on every verify).
    assert old.verify(issued.secret).valid
    old.flush_usage()
    assert stored_hash(old, issued.key.id) == after


def legacy_hash(service, key_id: str, secret: str) -> str:
    """Store a hash made before check values (a plain 16-byte random salt) for ``key_id``."""
    old = FAST_HASHER.hash(secret)
    with service.db.write() as session:
        session.execute(update(Key).where(Key.key_id == key_id).values(secret_hash=old))
    return old


def test_every_hash_carries_the_secrets_check_value(admin):
    issued = admin.create_key("k")
    stored = stored_hash(admin, issued.key.id)
    assert check_of(stored) == check_value(issued.secret) and len(check_value("x")) == 4
    assert check_of(FAST_HASHER.hash(issued.secret)) is None  # another salt length: none
    for broken in ("", "$argon2id$v=19$m=1024,t=1,p=1$!!!$x", "plain text"):
        assert check_of(broken) is None
    replaced = admin.replace_key(issued.key.id)
    assert check_of(stored_hash(admin, issued.key.id)) == check_value(replaced.secret)


def test_a_hash_without_a_check_value_gets_one_when_it_verifies(make_service, argon2_calls):
    alice = make_service("alice")
    issued = alice.create_key("k")
    before = legacy_hash(alice, issued.key.id, issued.secret)
    verifier = make_service("alice", warm=False)
    wrong = keyformat.new_secret(issued.key.id)
    assert verifier.verify(wrong).code == "NOT_FOUND"
    assert len(argon2_calls) == 1  # no check value to refuse it by: argon2
    assert verifier.verify(f" {issued.secret}\n").valid  # (the check is of what argon2 sees)
    verifier.flush_usage()
    after = stored_hash(alice, issued.key.id)
    assert after != before and check_of(after) == check_value(issued.secret)
    assert "m=1024,t=1" in after  # the same strength: not a rehash for parameters
    other = make_service("alice", warm=False)
    runs = len(argon2_calls)
    assert other.verify(keyformat.new_secret(issued.key.id)).code == "NOT_FOUND"
    assert len(argon2_calls) == runs  # refused by the check value now
    assert other.verify(issued.secret).valid
    # a verifier with weaker settings does not rewrite a stronger hash to add a check value
    strong = make_hasher(time_cost=2, memory_cost=2048)
    assert not needs_rehash(strong.hash(issued.secret), FAST_HASHER)
    assert needs_rehash(strong.hash(issued.secret), strong)


def test_real_hasher_uses_owasp_parameters(admin):
    from keytui.core.hashing import DEFAULT_HASHER, hash_secret, verify_secret

    secret = keyformat.new_secret("0123456789")
    hashed = hash_secret(secret, DEFAULT_HASHER)
    assert hashed.startswith("$argon2id$") and "m=19456,t=2,p=1" in hashed
    assert verify_secret(hashed, secret) and not verify_secret(hashed, altered(secret))


# -- usage --------------------------------------------------------------------------------------


def test_usage_is_counted_in_batches(make_service, clock):
    alice = make_service("alice")
    issued = alice.create_key("busy")
    clock.advance(seconds=37)
    with sql_log(alice) as statements:
        for _ in range(60):
            assert alice.verify(issued.secret).valid
    updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) <= 2  # far fewer writes than verifies
    alice.flush_usage()
    key = alice.get_key(issued.key.id)
    assert key.use_count == 60
    assert key.last_used_at == NOW  # 12:00:37 kept to the minute


def test_usage_is_flushed_on_close_and_over_time(make_service, clock):
    admin = make_service("alice")
    issued = admin.create_key("k")
    verifier = make_service("alice", usage_flush_seconds=30)
    for _ in range(3):
        verifier.verify(issued.secret)
    assert admin.get_key(issued.key.id).use_count == 0  # still buffered
    clock.advance(seconds=31)
    verifier.verify(issued.secret)  # time to write the batch: the background flush does
    assert wait_until(lambda: admin.get_key(issued.key.id).use_count == 4, 10)
    key = admin.get_key(issued.key.id)
    assert key.use_count == 4 and key.last_used_at == NOW
    clock.advance(minutes=5)
    verifier.verify(issued.secret)
    verifier.close()
    key = admin.get_key(issued.key.id)
    assert key.use_count == 5 and key.last_used_at == NOW + timedelta(minutes=5)


def test_rejected_verifies_are_not_counted_as_use(admin):
    issued = admin.create_key("k", allowed_hosts=["10.0.0.1"])
    admin.verify(issued.secret, host="10.9.9.9")
    admin.verify(keyformat.new_secret(issued.key.id))
    admin.flush_usage()
    assert admin.get_key(issued.key.id).use_count == 0


def test_an_ipv4_mapped_caller_matches_its_ipv4_network(admin):
    """Dual-stack servers report IPv4 callers as ::ffff:a.b.c.d."""
    issued = admin.create_key("mapped", allowed_hosts=["10.0.0.0/8"])
    assert admin.verify(issued.secret, host="::ffff:10.1.2.3").code == "VALID"
    assert admin.verify(issued.secret, host="::ffff:192.168.1.1").code == "HOST_NOT_ALLOWED"


def test_allowed_hosts_are_parsed_once_per_key(admin, monkeypatch):
    """The host rules of a key are parsed on its first verify, not on every one."""
    issued = admin.create_key("parsed once", allowed_hosts=["10.0.0.0/8", "*.example.com"])
    parsed: list[object] = []
    real = verify_module.AllowedHosts.parse.__func__

    def counting(cls, allowed):
        parsed.append(allowed)
        return real(cls, allowed)

    monkeypatch.setattr(verify_module.AllowedHosts, "parse", classmethod(counting))
    for host in ("10.1.2.3", "a.example.com", "192.168.0.1", "10.9.9.9"):
        admin.verify(issued.secret, host=host)
    assert len(parsed) == 1


def test_codes_are_typed_and_print_as_before(admin):
    result = admin.verify("garbage")
    assert result.code is verify_module.VerifyCode.MALFORMED
    assert result.to_json()["code"] == "MALFORMED" and f"{result.code}" == "MALFORMED"
