"""The verify path: is a presented secret a current, active key allowed from this host?

A :class:`Verifier` is held by each :class:`~keytui.core.service.KeyService`; it owns the
prepared row query, the in-process caches, the parsed allowed-host rules, the per-key flood
buckets and a :class:`~keytui.core.usage.UsageWriter` (counts, every verification of a key by
hour and outcome, refusals and rehashes written in batches, off the request path). The
service's ``verify`` and ``flush_usage`` delegate to it.

Three answers, from the cheapest:

- **warm**: a secret this process has verified, while its change watcher (see
  :mod:`keytui.core.changes`) is sure it hears every change: a SHA-256, a dict lookup, the
  expiry and host checks. No query. A change drops exactly the keys it names (everything, for a
  change of the installation or a lost signal) before the watcher vouches for its connection
  again, so memory is never older than the last change the watcher has read.
- **read-through**: one prepared read of the key's row; argon2 only for a secret whose current
  hash this process has not matched it against yet, whose check value (see
  :mod:`keytui.core.hashing`) is the hash's, and not more often per key than its flood bucket
  allows.
- **refused without work**: malformed (no read); a check value that is not the key's (no
  argon2; no read either while the watcher is live and the key's check value is remembered):
  that is how a flood of wrong secrets is answered; a secret already found wrong against the
  key's current hash (no argon2); THROTTLED (no argon2): a secret that passes the check value
  while the key's *reserve* of argon2 runs is empty (one wrong secret in 2**32 passes, so
  wrong secrets cannot crowd the real one out of it), or one of a hash made before check
  values while the key's flood *bucket* is empty (its wrong secrets share it with its real one).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from time import monotonic

from argon2 import PasswordHasher
from sqlalchemy import bindparam, select

from . import changes, keyformat
from .clock import DAMAGED_TIME, Seconds
from .db import Database
from .hashing import (
    CHECK_BYTES,
    check_of,
    check_value,
    hash_secret,
    needs_rehash,
    readable,
    verify_secret,
)
from .hosts import AllowedHosts, parse_hosts
from .models import Key, Settings
from .usage import (
    DISABLED,
    EXPIRED,
    HOST_DENIED,
    REVOKED,
    THROTTLED,
    WRONG_SECRET,
    EventWriter,
    UsageBuffer,
    UsageWriter,
)
from .values import SkipReason, VerifyCode, VerifyResult

__all__ = ["AllowedHosts", "SkipReason", "UsageBuffer", "Verifier", "VerifyCode", "VerifyResult"]

Watch = Callable[[Callable[[changes.Change], None]], changes.ChangeWatcher]
log = logging.getLogger("keytui.verify")

# Floods: per key and process, the argon2 runs of secrets that pass the key's check value come
# from a reserve of FLOOD_BURST runs at once and FLOOD_RATE a second after that (~18 ms each:
# about 4% of one core); beyond it they are answered THROTTLED unchecked. Wrong secrets refused
# by the check value take a token from a bucket of the same size (how throttles() sees a
# flood); a hash made before check values takes its runs from that bucket.
FLOOD_RATE = 2.0
FLOOD_BURST = 5.0
WRONG_KEPT = 10_000  # secrets found wrong (their SHA-256 and the hash they failed against)

# Refusals that name no key, made once: a flood's every guess returns one (VerifyResult is frozen).
_MALFORMED = VerifyResult(False, VerifyCode.MALFORMED)
_NOT_FOUND = VerifyResult(False, VerifyCode.NOT_FOUND)
_THROTTLED = VerifyResult(False, VerifyCode.THROTTLED)
_DISABLED = VerifyResult(False, VerifyCode.DISABLED)


def _digest(secret: str) -> bytes | None:
    """The SHA-256 of ``secret``, by which memory knows it; None when it is not text."""
    try:
        return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    except AttributeError:  # not text at all
        return None


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


@dataclass(frozen=True, slots=True)
class Known:
    """What the warm path needs of a key whose secret verified here, its answers built once."""

    key_id: str
    expires: float | None  # seconds since the epoch (the warm path reads no datetime)
    hosts: AllowedHosts | None  # None: any host
    answer: VerifyResult  # VALID, or REVOKED (for good)
    expired: VerifyResult
    refused: VerifyResult  # HOST_NOT_ALLOWED


@dataclass
class VerifyStats:
    """Counts since the service opened, for a face's metrics (read without a lock: figures)."""

    warm: int = 0  # answered from memory
    read: int = 0  # answered after reading the key's row
    argon2: int = 0  # argon2 runs
    checked: int = 0  # refused by the hash's check value, without argon2
    throttled: int = 0  # refused unchecked by a key's flood bucket


class Verifier:
    """verify() for one service: its database, clock, hasher and event writer.

    ``warm``: True starts the change watcher (and so the warm path) at the first verify, None
    at the second (a one-shot ``keytui verify`` pays for no thread), False never (every verify
    reads the key's row)."""

    HOST_RULES_KEPT = 10_000  # parsed allowed-host lists kept (by their stored text)

    def __init__(
        self,
        database: Database,
        *,
        now: Callable[[], datetime],
        seconds: Seconds | None = None,
        hasher: PasswordHasher,
        write_events: EventWriter,
        watch: Watch | None = None,
        warm: bool | None = None,
        flush_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.db = database
        self.now = now
        # The same clock as seconds since the epoch, for the warm path (clock.seconds_clock)
        self.seconds: Seconds = seconds or (lambda: now().timestamp())
        self.hasher = hasher
        self.write_events = write_events
        self.writer = UsageWriter(database, write_events, flush_seconds, now)
        self.usage = self.writer.usage
        self.failed = self.writer.failed  # key ID -> [refused secrets, last]
        self.throttled = self.writer.throttled  # key ID -> [of those, unchecked, last]
        self.hours = self.writer.hours  # (key ID, hour) -> counts by outcome, last use, refusal
        self.stats = VerifyStats()
        self.warm = warm if watch is not None else False
        self.watcher: changes.ChangeWatcher | None = None
        self._watch = watch
        self._verifies = 0  # read-through verifies before the watcher starts
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        # sha256(secret) -> the argon2 hash it matched: skips argon2 on a read-through while
        # the key's hash is unchanged. Kept across changes (the row read decides).
        self._matched: dict[bytes, str] = {}
        # sha256(secret) -> Known: the warm path. Dropped by changes; filled only while live.
        self._known: dict[bytes, Known] = {}
        self._by_key: dict[str, set[bytes]] = {}
        self._epoch = 0  # moves (under _cache_lock) with every change that drops entries
        self._disabled_epoch = -1  # the epoch in which keys were read as disabled
        self._wrong: dict[bytes, str] = {}  # sha256(secret) -> the hash it did not match
        # key ID -> its current hash's check value (b"": it has none): wrong secrets refused
        # without a read. Dropped by changes like _known; filled only while live.
        self._checks: dict[str, bytes] = {}
        self._buckets: dict[str, list[float]] = {}  # key ID -> [tokens, at (POSIX s)]
        self._reserve: dict[str, list[float]] = {}  # the same, for secrets passing the check
        self._hosts: dict[str, AllowedHosts] = {}  # stored allowed_hosts text -> parsed
        self._damaged_seen: set[str] = set()
        self._start_lock = threading.Lock()

    # -- the watcher -----------------------------------------------------------------------------

    def _start_watching(self) -> None:
        with self._start_lock:
            if self.watcher is None and self._watch is not None:
                self.watcher = self._watch(self._on_change)

    def _on_change(self, change: changes.Change) -> None:
        """From the watcher's thread, before it vouches for its connection again."""
        if change.file_gone:
            self._file_gone()
            return
        if not (change.key_ids or change.installation or change.resync):
            return  # use counts only
        with self._cache_lock:
            self._epoch += 1
            if change.installation or change.resync:
                self._known.clear()
                self._by_key.clear()
                self._checks.clear()
                return
            for key_id in change.key_ids:
                self._checks.pop(key_id, None)
                for digest in self._by_key.pop(key_id, ()):
                    self._known.pop(digest, None)

    def _file_gone(self) -> None:
        """The SQLite file was deleted or replaced: what memory holds may no longer be what is
        at the path, and the watcher watches the old file. Forget it all and read every verify
        from then on (the file this process opened; restart it to open the new one)."""
        log.warning("the database file was deleted or replaced: reading every verify through")
        with self._cache_lock:
            self._epoch += 1
            self.warm = False
            self.watcher = None  # not started again: warm is False
            self._known.clear()
            self._by_key.clear()
            self._checks.clear()

    def forget(self, change: changes.Change) -> None:
        """Drop what a change made by this service names, before it commits (a read that
        slips in before the commit is dropped again when the watcher hears the change)."""
        self._on_change(change)

    @property
    def answering_from_memory(self) -> bool:
        """True while the warm path is on (the watcher is live and vouched for)."""
        watcher = self.watcher
        return watcher is not None and time.monotonic() < watcher.sure_until

    # -- verify ------------------------------------------------------------------------------------

    def verify(self, secret: str, host: str | None = None) -> VerifyResult:
        """Is ``secret`` a current, active key allowed from ``host``?

        A secret verified here before answers from memory while the change watcher is sure it
        hears every change; otherwise the key's row is read (a malformed secret costs no read;
        an unknown ID no argon2; a secret already matched against the key's current hash no
        argon2 either)."""
        # The warm path, spelled out (each call saved is a tenth of its time): the SHA-256, the
        # watcher's lease, a lookup, the answer's checks and its count.
        try:
            digest = sha256(secret.encode("utf-8", "surrogatepass")).digest()
        except AttributeError:  # not text at all
            return _MALFORMED
        watcher = self.watcher
        if watcher is not None and monotonic() < watcher.sure_until:
            known = self._known.get(digest)
            if known is not None:
                self.stats.warm += 1
                return self._answer(known, host)
        return self._read_through(secret, digest, host)

    def _remembered(self, digest: bytes, host: str | None) -> VerifyResult | None:
        """The warm path: the answer for a secret verified before, while memory is trusted."""
        if self.answering_from_memory:
            known = self._known.get(digest)
            if known is not None:
                self.stats.warm += 1
                return self._answer(known, host)
        return None

    def answer_in_memory(self, secret: str, host: str | None = None) -> VerifyResult | None:
        """:meth:`verify`'s answer when it needs no read and no argon2, else None (nothing
        counted): for a face that answers these at once and sends the rest to a thread
        (``keytui serve``, on its event loop). While the watcher is live: a secret verified
        before, keys disabled, a secret whose check value is not its key's remembered one
        (every guess of a flood), a flood against a key whose hash has no check value; at any
        time, a malformed secret. A secret that passes the check may need argon2: None."""
        digest = _digest(secret)
        if digest is None:
            return _MALFORMED
        remembered = self._remembered(digest, host)
        if remembered is not None:
            return remembered
        parsed = keyformat.parse_secret(secret)
        if parsed is None:
            return _MALFORMED
        if not self.answering_from_memory:
            return None
        return self._refused_in_memory(parsed.key_id, secret, digest, host, self.seconds())

    def _refused_in_memory(
        self, key_id: str, secret: str, digest: bytes, host: str | None, at: float
    ) -> VerifyResult | None:
        """The refusals :meth:`verify` makes from memory while the watcher is live (see
        :meth:`answer_in_memory`), counted; None when the key's row must be read."""
        if self._disabled_epoch == self._epoch:
            self._count(key_id, DISABLED, host, at)  # a flush drops IDs of no key
            return _DISABLED
        known_check = self._checks.get(key_id)
        if known_check:  # the key's current check value, remembered: no read, no argon2
            stripped = secret.strip()
            check = digest[:CHECK_BYTES] if len(stripped) == len(secret) else None
            if known_check != (check or check_value(stripped)):
                return self._mismatch(key_id, at, host)
        elif (
            known_check is not None
            and digest not in self._matched
            and digest not in self._wrong
            and self.throttles(key_id, at)  # a hash without one, and a flood
        ):
            return self._throttled(key_id, at, host)  # no read, no argon2
        return None

    def _answer(self, known: Known, host: str | None) -> VerifyResult:
        at = self.seconds()
        if not known.answer.valid:
            self._count(known.key_id, REVOKED, host, at)
            return known.answer  # revoked
        if known.expires is not None and known.expires <= at:
            self._count(known.key_id, EXPIRED, host, at)
            return known.expired  # from the instant it expires, no notice needed
        if known.hosts is not None and not known.hosts.allows(host):
            self._count(known.key_id, HOST_DENIED, host, at)
            return known.refused
        if self.writer.used(known.key_id, host, at):
            self.writer.ask()
        return known.answer

    def _count(self, key_id: str, outcome: int, host: str | None, at: float) -> None:
        """Count a verification of ``key_id`` by its outcome (usage.HourlyUsage: in memory)."""
        if self.hours.add(key_id, outcome, host, at):
            self.writer.ask()

    def _read_through(self, secret: str, digest: bytes, host: str | None) -> VerifyResult:
        parsed = keyformat.parse_secret(secret)
        if parsed is None:
            return _MALFORMED
        if self.watcher is None and self.warm is not False:
            self._verifies += 1
            if self.warm or self._verifies >= 2:
                self._start_watching()
                self.writer.start()
        elif not self.writer.started:
            self._verifies += 1
            if self._verifies >= 2:
                self.writer.start()
        sure = self.answering_from_memory
        at = self.seconds()
        if sure:
            refused = self._refused_in_memory(parsed.key_id, secret, digest, host, at)
            if refused is not None:
                return refused
        matched = self._matched.get(digest)
        wrong = self._wrong.get(digest)
        stripped = secret.strip()
        check = digest[:CHECK_BYTES] if len(stripped) == len(secret) else None
        epoch = self._epoch  # before the read: a change heard after it makes the read stale
        self.stats.read += 1
        try:
            # One prepared statement on a plain connection: no ORM session, no statement
            # building (they cost more than the query itself).
            with self.db.engine.connect() as connection:
                row = connection.execute(VERIFY_ROW, {"key_id": parsed.key_id}).first()
            if row is not None and not row.keys_enabled:
                with self._cache_lock:
                    if sure and epoch == self._epoch:
                        self._disabled_epoch = epoch
                if row.pk is not None:
                    self._count(row.key_id, DISABLED, host, at)
                return _DISABLED
            if row is None or row.pk is None:
                return _NOT_FOUND
            hosts = self.allowed_hosts(row.allowed_hosts)
            if DAMAGED_TIME in (row.expires_at, row.revoked_at):  # read back from a non-time
                raise ValueError("a stored time is not a time")
        except (ValueError, TypeError, OverflowError) as exc:  # not SQLAlchemy's: the data's
            return self._damaged(parsed.key_id, exc)
        stored = row.secret_hash
        if matched != stored:
            if wrong == stored:
                return self._refuse(row.key_id, at, host)  # found wrong before: no argon2
            stored_check = check_of(stored)
            if sure:
                self._remember_check(row.key_id, stored_check or b"", epoch)
            buckets = self._buckets
            if stored_check is not None:
                if stored_check != (check or check_value(stripped)):
                    return self._mismatch(row.key_id, at, host)
                buckets = self._reserve  # passes the check: a flood cannot have emptied it
            if not self._admit(row.key_id, at, buckets):
                return self._throttled(row.key_id, at, host)
            self.stats.argon2 += 1
            if not verify_secret(stored, stripped, self.hasher):
                if not readable(stored):  # not a wrong secret: a hash argon2 cannot read
                    return self._damaged(row.key_id, ValueError("its secret hash is unreadable"))
                with self._cache_lock:
                    self._matched.pop(digest, None)  # it matched an older hash (replaced)
                    self._wrong[digest] = stored
                    if len(self._wrong) > WRONG_KEPT:
                        del self._wrong[next(iter(self._wrong))]
                return self._refuse(row.key_id, at, host)
            self._refund(row.key_id, buckets)  # a matching secret costs its key no run
            if needs_rehash(stored, self.hasher):
                self.writer.rehash(row.key_id, stored, hash_secret(stripped, self.hasher))
                with self._cache_lock:  # (it may get a check value: read it again)
                    self._checks.pop(row.key_id, None)
            with self._cache_lock:
                self._matched[digest] = stored
                self._wrong.pop(digest, None)
                if len(self._matched) > self._cache_size:
                    del self._matched[next(iter(self._matched))]
        ident = {
            "key_id": row.key_id,
            "owner": row.owner,
            "role": row.role,
            "expires_at": row.expires_at,
        }
        known = Known(
            row.key_id,
            None if row.expires_at is None else row.expires_at.timestamp(),
            None if hosts.any_host else hosts,
            VerifyResult(False, VerifyCode.REVOKED, **ident)
            if row.revoked_at is not None
            else VerifyResult(True, VerifyCode.VALID, **ident),
            VerifyResult(False, VerifyCode.EXPIRED, **ident),
            VerifyResult(False, VerifyCode.HOST_NOT_ALLOWED, **ident),
        )
        if sure:
            self._remember(digest, known, epoch)
        return self._answer(known, host)

    def _remember(self, digest: bytes, known: Known, epoch: int) -> None:
        """Keep a read for the warm path, unless a change was heard since the read began (it
        may have missed that change; the watcher drops entries under the same lock)."""
        with self._cache_lock:
            if epoch != self._epoch:
                return
            if digest not in self._known and len(self._known) >= self._cache_size:
                oldest = next(iter(self._known))
                dropped = self._known.pop(oldest)
                self._by_key.get(dropped.key_id, set()).discard(oldest)
            self._known[digest] = known
            self._by_key.setdefault(known.key_id, set()).add(digest)

    def _remember_check(self, key_id: str, check: bytes, epoch: int) -> None:
        with self._cache_lock:
            if epoch == self._epoch:
                if key_id not in self._checks and len(self._checks) >= self._cache_size:
                    del self._checks[next(iter(self._checks))]
                self._checks[key_id] = check

    def _damaged(self, key_id: str, exc: Exception) -> VerifyResult:
        if key_id not in self._damaged_seen:  # once per key and process: no log flood
            self._damaged_seen.add(key_id)
            log.warning("key %s: its row is damaged (%s); refusing it", key_id, exc)
        return VerifyResult(False, VerifyCode.DAMAGED, key_id=key_id)

    def _refuse(self, key_id: str, at: float, host: str | None = None) -> VerifyResult:
        """A wrong secret for a real key: counted in memory, written as one
        ``key.verify_failed`` event per key and flush, never a row per request."""
        if self.writer.refused(key_id, WRONG_SECRET, host, at):
            self.writer.ask()
        return _NOT_FOUND

    # -- floods ------------------------------------------------------------------------------------

    def _mismatch(self, key_id: str, at: float, host: str | None = None) -> VerifyResult:
        """A secret whose check value is not its key's: wrong for certain, without argon2. It
        still takes a token from the key's bucket, which is how :meth:`throttles` sees a flood."""
        self.stats.checked += 1
        self._admit(key_id, at, self._buckets)
        return self._refuse(key_id, at, host)

    def throttles(self, key_id: str, at: float | None = None) -> bool:
        """Is ``key_id`` under a flood just now (its bucket empty)? Then a secret of it not
        matched here before, of a hash made before check values, is answered THROTTLED with
        no argon2 (and no read while the watcher is live). A secret that passes its key's check
        value (its real secret, or one wrong secret in 2**32) takes its one argon2 run from the
        key's reserve instead (:data:`FLOOD_BURST` + :data:`FLOOD_RATE`/s, which wrong secrets
        cannot empty), once per secret and process."""
        bucket = self._buckets.get(key_id)
        if bucket is None:
            return False
        if at is None:
            at = self.seconds()
        return bucket[0] + max(0.0, at - bucket[1]) * FLOOD_RATE < 1.0

    def _throttled(self, key_id: str, at: float, host: str | None = None) -> VerifyResult:
        self.stats.throttled += 1
        if self.writer.refused(key_id, THROTTLED, host, at):
            self.writer.ask()
        return _THROTTLED

    def _admit(self, key_id: str, at: float, buckets: dict[str, list[float]]) -> bool:
        """Take one token from ``key_id``'s bucket in ``buckets`` (taken before the run, so
        threads running at once cannot overdraw it); False when it is empty."""
        with self._cache_lock:
            bucket = buckets.get(key_id)
            if bucket is None:
                if len(buckets) >= WRONG_KEPT:  # forget buckets full again
                    for full in [k for k, (_t, a) in buckets.items() if at - a > 60]:
                        del buckets[full]
                bucket = buckets[key_id] = [FLOOD_BURST, at]
            tokens = min(FLOOD_BURST, bucket[0] + max(0.0, at - bucket[1]) * FLOOD_RATE)
            bucket[1] = at
            if tokens < 1.0:
                bucket[0] = tokens
                return False
            bucket[0] = tokens - 1.0
            return True

    def _refund(self, key_id: str, buckets: dict[str, list[float]]) -> None:
        with self._cache_lock:
            bucket = buckets.get(key_id)
            if bucket is not None:
                bucket[0] = min(FLOOD_BURST, bucket[0] + 1.0)

    # -- host rules --------------------------------------------------------------------------------

    def allowed_hosts(self, stored: str | None) -> AllowedHosts:
        """A key row's allowed hosts, parsed on first sight only (:class:`Damaged` if they
        cannot be)."""
        if not stored or stored == "[]":
            return AllowedHosts()
        rule = self._hosts.get(stored)
        if rule is None:
            rule = parse_hosts(stored)
            if len(self._hosts) >= self.HOST_RULES_KEPT:
                self._hosts.clear()
            self._hosts[stored] = rule
        return rule

    # -- writes, off the request path (see UsageWriter) ------------------------------------------

    def flush(self, *, wait: bool = True) -> bool:
        return self.writer.flush(wait=wait)

    def close(self) -> None:
        self.writer.close()
