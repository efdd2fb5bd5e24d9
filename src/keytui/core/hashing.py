"""argon2id hashing of secrets, at OWASP's minimum (t=2, m=19 MiB, p=1)."""

from __future__ import annotations

import hashlib

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1


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


def hash_secret(secret: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    try:
        return hasher.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, hasher: PasswordHasher = DEFAULT_HASHER) -> bool:
    """True when ``stored_hash`` is weaker than ``hasher`` makes. Never a downgrade: verifiers
    with different settings would otherwise rewrite each other's hashes on every verify."""
    try:
        if not hasher.check_needs_rehash(stored_hash):
            return False
        stored = extract_parameters(stored_hash)
    except InvalidHashError:
        return True
    return (
        stored.type is not Type.ID
        or stored.time_cost < hasher.time_cost
        or stored.memory_cost < hasher.memory_cost
        or stored.hash_len < hasher.hash_len
        or stored.salt_len < hasher.salt_len
    )


def fingerprint(secret: str) -> str:
    """SHA-256 of the secret: the key of the in-process verify cache, never stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
