"""The verify path: is a presented secret a current, active key allowed from this host?

A :class:`Verifier` is held by each :class:`~keytui.core.service.KeyService`; it owns the
prepared row query, the in-process cache of verified secrets, the parsed allowed-host rules,
the usage buffers (counts written in batches) and the rehash of hashes made with older
parameters. The service's ``verify`` and ``flush_usage`` delegate to it.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from argon2 import PasswordHasher
from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import changes, keyformat
from .db import Database
from .hashing import fingerprint, hash_secret, needs_rehash, verify_secret
from .models import Key, Settings
from .values import SkipReason, VerifyCode, VerifyResult, iso_utc

__all__ = ["AllowedHosts", "SkipReason", "UsageBuffer", "Verifier", "VerifyCode", "VerifyResult"]

EventWriter = Callable[[Session, Iterable[tuple[str, str | None, dict[str, Any]]]], None]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# verify()'s one read: the kill switch and the key's current state, built once.
VERIFY_ROW = (
    select(
        Settings.keys_enabled,
        Key.pk,
        Key.key_id,
        Key.owner,
        Key.role,
        Key.secret_hash,
        Key.revoked_at,
        Key.expires_at,
        Key.allowed_hosts,
    )
    .select_from(Settings)
    .outerjoin(Key, Key.key_id == bindparam("key_id"))
    .where(Settings.id == 1)
)


@dataclass(frozen=True)
class AllowedHosts:
    """A key's allowed hosts, parsed once: empty means any host. Entries are host names
    (``*.example.com`` matches subdomains), IP addresses or CIDR networks, normalised by
    :func:`validate.host`."""

    networks: tuple[Network, ...] = ()
    suffixes: tuple[str, ...] = ()  # ".example.com" for "*.example.com"
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allowed: Iterable[str]) -> AllowedHosts:
        networks: list[Network] = []
        suffixes: list[str] = []
        names: set[str] = set()
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:])
                else:
                    names.add(entry)
        return cls(tuple(networks), tuple(suffixes), frozenset(names))

    @property
    def any_host(self) -> bool:
        return not (self.networks or self.suffixes or self.names)

    def allows(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        host = host.strip().lower()
        if host in self.names or any(host.endswith(suffix) for suffix in self.suffixes):
            return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (dual-stack sockets)
        return any(
            address.version == network.version and address in network for network in self.networks
        )


class UsageBuffer:
    """Counts verifications in memory and writes them in batches, not once per request."""

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[Any, list[Any]] = {}  # key pk (or ID) -> [count, last used]
        self.last_flush: datetime | None = None
        self.lock = threading.Lock()

    def add(self, pk: int | str, now: datetime) -> bool:
        """Record one use; True when it is time to flush."""
        minute = now.replace(second=0, microsecond=0)
        with self.lock:
            entry = self.pending.setdefault(pk, [0, minute])
            entry[0] += 1
            entry[1] = max(entry[1], minute)
            if self.last_flush is None:
                self.last_flush = now
            return (now - self.last_flush).total_seconds() >= self.flush_seconds or len(
                self.pending
            ) >= 10_000

    def take(self, now: datetime) -> dict[Any, list[Any]]:
        with self.lock:
            pending, self.pending = self.pending, {}
            self.last_flush = now
            return pending

    def give_back(self, taken: dict[Any, list[Any]]) -> None:
        """Put counts taken for a write that failed back, for the next try."""
        with self.lock:
            for pk, (count, last) in taken.items():
                entry = self.pending.setdefault(pk, [0, last])
                entry[0] += count
                entry[1] = max(entry[1], last)


class Verifier:
    """verify() for one service: its database, clock, hasher and event writer."""

    HOST_RULES_KEPT = 10_000  # parsed allowed-host lists kept (by their stored text)

    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime],
        hasher: PasswordHasher,
        write_events: EventWriter,
        flush_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.db = database
        self.now = now
        self.hasher = hasher
        self.write_events = write_events
        self.usage = UsageBuffer(flush_seconds)
        self.failed = UsageBuffer(flush_seconds)  # key ID -> [wrong secrets, last minute]
        self._verified: OrderedDict[str, str] = OrderedDict()  # sha256(secret) -> argon2 hash
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._hosts: dict[str, AllowedHosts] = {}  # stored allowed_hosts text -> parsed

    def allowed_hosts(self, stored: str | None) -> AllowedHosts:
        """A key row's allowed hosts, parsed on first sight only."""
        if not stored or stored == "[]":
            return AllowedHosts()
        rule = self._hosts.get(stored)
        if rule is None:
            rule = AllowedHosts.parse(json.loads(stored))
            if len(self._hosts) >= self.HOST_RULES_KEPT:
                self._hosts.clear()
            self._hosts[stored] = rule
        return rule

    def verify(self, secret: str, host: str | None = None) -> VerifyResult:
        """Is ``secret`` a current, active key allowed from ``host``?

        A malformed secret costs no database read; an unknown ID no argon2; a secret already
        verified by this process no argon2 either, but its key's status and current hash are
        re-read every time, so a revoke or replace anywhere is seen at once.
        """
        parsed = keyformat.parse_secret(secret)
        if parsed is None:
            return VerifyResult(False, VerifyCode.MALFORMED)
        now = self.now()
        # One prepared statement on a plain connection: no ORM session, no statement building
        # (they cost more than the query itself; a verifier runs this thousands of times a second).
        with self.db.engine.connect() as connection:
            row = connection.execute(VERIFY_ROW, {"key_id": parsed.key_id}).first()
        if row is not None and not row.keys_enabled:
            return VerifyResult(False, VerifyCode.DISABLED)
        if row is None or row.pk is None:
            return VerifyResult(False, VerifyCode.NOT_FOUND)
        digest = fingerprint(secret.strip())
        with self._cache_lock:
            cached = self._verified.get(digest)
        if cached != row.secret_hash:
            if not verify_secret(row.secret_hash, secret.strip(), self.hasher):
                # A wrong secret for a real key ID: counted in memory, written as one
                # key.verify_failed event per key and flush, never a row per request.
                if self.failed.add(row.key_id, now):
                    self.flush()
                return VerifyResult(False, VerifyCode.NOT_FOUND)
            stored = row.secret_hash
            if needs_rehash(stored, self.hasher):
                stored = self.rehash(row.pk, stored, secret.strip())
            with self._cache_lock:
                self._verified[digest] = stored
                self._verified.move_to_end(digest)
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        ident = {
            "key_id": row.key_id,
            "owner": row.owner,
            "role": row.role,
            "expires_at": row.expires_at,
        }
        if row.revoked_at is not None:
            return VerifyResult(False, VerifyCode.REVOKED, **ident)
        if row.expires_at is not None and row.expires_at <= now:
            return VerifyResult(False, VerifyCode.EXPIRED, **ident)
        if not self.allowed_hosts(row.allowed_hosts).allows(host):
            return VerifyResult(False, VerifyCode.HOST_NOT_ALLOWED, **ident)
        if self.usage.add(row.pk, now):
            self.flush()
        return VerifyResult(True, VerifyCode.VALID, **ident)

    def rehash(self, pk: int, old_hash: str, secret: str) -> str:
        """Upgrade a hash made with older parameters, unless the key was replaced meanwhile."""
        new_hash = hash_secret(secret, self.hasher)
        with self.db.write() as session:
            result = cast(
                "CursorResult[Any]",
                session.execute(
                    update(Key)
                    .where(Key.pk == pk, Key.secret_hash == old_hash)
                    .values(secret_hash=new_hash)
                ),
            )
        return new_hash if result.rowcount else old_hash

    def flush(self) -> None:
        """Write buffered use counts and last-used minutes, and one ``key.verify_failed`` event
        per key that saw wrong secrets (with their count); called in batches and on close."""
        pending = self.usage.take(self.now())
        failed = self.failed.take(self.now())
        if not pending and not failed:
            return
        try:
            with self.db.write() as session:
                # Row locks first and in key order, the chain lock (taken by the events) last:
                # the order every writer follows, so a flush never deadlocks with a replace.
                for pk, (count, last) in sorted(pending.items()):
                    session.execute(
                        update(Key)
                        .where(Key.pk == pk)
                        .values(
                            use_count=Key.use_count + count,
                            last_used_at=case(
                                (or_(Key.last_used_at.is_(None), Key.last_used_at < last), last),
                                else_=Key.last_used_at,
                            ),
                        )
                        .execution_options(synchronize_session=False)
                    )
                changes.notify(session)  # the app shows use counts: they changed
                if failed:
                    self.write_events(
                        session,
                        [
                            ("key.verify_failed", key_id, {"count": count, "last": iso_utc(last)})
                            for key_id, (count, last) in sorted(failed.items())
                        ],
                    )
        except SQLAlchemyError:  # keep the counts for the next try
            self.usage.give_back(pending)
            self.failed.give_back(failed)
