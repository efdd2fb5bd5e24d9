"""argon2id hashing of secrets, at OWASP's minimum (t=2, m=19 MiB, p=1).

Every hash keytui makes carries a **check value**: the first :data:`CHECK_BYTES` bytes of the
secret's SHA-256, written as the first bytes of the argon2 salt (a salt of
:data:`TAGGED_SALT_BYTES` bytes: the check value, then 16 random ones). A verifier compares it
before it runs argon2, so a wrong secret costs one SHA-256, not ~20 ms of argon2, except one in
2**32 (see :func:`check_of`). The check value gives away 32 bits of a hash of a secret with
about 190 random bits: it makes no guess at the secret cheaper to confirm than argon2 by more
than those 32 bits (158 bits of work remain). Hashes without one (made before it existed)
verify as before and get one when they next verify (:func:`needs_rehash`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
CHECK_BYTES = 4
SALT_RANDOM_BYTES = 16
TAGGED_SALT_BYTES = CHECK_BYTES + SALT_RANDOM_BYTES


def make_hasher(
    time_cost: int = TIME_COST, memory_cost: int = MEMORY_COST_KIB, parallelism: int = PARALLELISM
) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
    )


DEFAULT_HASHER = make_hasher()


def check_value(secret: str) -> bytes:
    """The check value of ``secret`` (as given: callers strip it first, as argon2 sees it)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()[:CHECK_BYTES]


def hash_secret(secret: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    """An argon2id hash of ``secret`` whose salt starts with its check value."""
    return hasher.hash(secret, salt=check_value(secret) + os.urandom(SALT_RANDOM_BYTES))


def check_of(stored_hash: str) -> bytes | None:
    """The check value a stored hash carries, or None (made before check values, or not
    keytui's: a salt of any other length). A secret whose :func:`check_value` differs is wrong
    without argon2; one whose value matches still needs argon2 to be right."""
    parts = stored_hash.split("$")  # $argon2id$v=19$m=...,t=...,p=...$SALT$HASH
    if len(parts) != 6:
        return None
    encoded = parts[4]
    try:
        salt = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return salt[:CHECK_BYTES] if len(salt) == TAGGED_SALT_BYTES else None


def verify_secret(stored_hash: str, secret: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    try:
        return hasher.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def readable(stored_hash: str) -> bool:
    """Whether ``stored_hash`` has an argon2 hash's shape (parameters, base64 salt and hash),
    checked without argon2: a False from :func:`verify_secret` on one that is not is the row's
    damage, not a wrong secret."""
    try:
        extract_parameters(stored_hash)
    except InvalidHashError:
        return False
    parts = stored_hash.split("$")
    if len(parts) != 6 or not parts[4] or not parts[5]:
        return False
    try:
        for part in parts[4:]:
            base64.b64decode(part + "=" * (-len(part) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def needs_rehash(stored_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when ``stored_hash`` is weaker than ``hasher`` makes, or carries no check value
    and ``hasher`` is not weaker than it. Never a downgrade: verifiers with different settings
    would otherwise rewrite each other's hashes on every verify."""
    try:
        stored = extract_parameters(stored_hash)
    except InvalidHashError:
        return True
    weaker = (
        stored.type is not Type.ID
        or stored.time_cost < hasher.time_cost
        or stored.memory_cost < hasher.memory_cost
        or stored.hash_len < hasher.hash_len
        or stored.salt_len < hasher.salt_len
    )
    if weaker:
        return True
    if check_of(stored_hash) is not None:
        return False
    return (  # no check value: add one, at the same strength at least
        stored.time_cost <= hasher.time_cost
        and stored.memory_cost <= hasher.memory_cost
        and stored.parallelism == hasher.parallelism
    )


def fingerprint(secret: str) -> str:
    """SHA-256 of the secret: the key of the in-process verify cache, never stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
