"""Use counts kept in memory and written in batches, never a row per request: per key ID, a
count and the last minute it was used; and per key and hour, every verification by outcome
(:class:`HourlyUsage`, the ``key_usage`` table of migration 0006, kept :data:`KEPT_HOURS`).
:class:`UsageWriter` writes them (and a verifier's refusals and rehashes) from a background
thread that waits for no writer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import changes
from .models import Key, KeyUsage
from .values import iso_utc

if TYPE_CHECKING:
    from .db import Database

EventWriter = Callable[[Session, Iterable[tuple[str, str | None, dict[str, Any]]]], None]

PENDING_MAX = 10_000  # keys with buffered counts before a flush is asked for early

# The usage flush's one statement, run once for all its keys (executemany): built per key
# through the ORM it cost ~0.6 ms of CPU a key, holding the GIL, so a server's flush of 1,000
# keys stalled its event loop for most of a second.
_KEYS_TABLE = cast(Table, Key.__table__)
_KEYS = _KEYS_TABLE.c
_USED_LAST = bindparam("used_last", type_=_KEYS.last_used_at.type)
USAGE_ADD = (
    update(_KEYS_TABLE)
    .where(_KEYS.key_id == bindparam("used_key"))
    .values(
        use_count=_KEYS.use_count + bindparam("used_count"),
        last_used_at=case(
            (or_(_KEYS.last_used_at.is_(None), _KEYS.last_used_at < _USED_LAST), _USED_LAST),
            else_=_KEYS.last_used_at,
        ),
    )
)
FLUSH_LOCK_TIMEOUT = "200ms"  # PostgreSQL: a background flush waits no longer for a lock
FLUSH_RETRY_SECONDS = 1.0  # and tries again after this


class UsageBuffer:
    """Counts in memory, by key ID, written in batches by a flush, never once per request.

    ``add`` is on the warm path: a lock, a dict lookup and a comparison of times (seconds since
    the epoch: no datetime is made per request). The last use is cut to the minute when
    written."""

    def __init__(self, flush_seconds: float, lock: threading.Lock | None = None) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[str, list[Any]] = {}  # key ID -> [count, last used (seconds)]
        self.due: float | None = None  # when the oldest buffered count should be written
        self.lock = lock or threading.Lock()

    def add(self, key_id: str, at: float, count: int = 1) -> bool:
        """Record ``count`` uses at ``at`` (seconds since the epoch); True when a flush should
        be asked for."""
        with self.lock:
            return self.add_locked(key_id, at, count)

    def add_locked(self, key_id: str, at: float, count: int = 1) -> bool:
        """:meth:`add`, for a caller that holds ``lock``."""
        entry = self.pending.get(key_id)
        if entry is None:
            self.pending[key_id] = [count, at]
            if self.due is None:
                self.due = at + self.flush_seconds
            return len(self.pending) >= PENDING_MAX or at >= self.due
        entry[0] += count
        if at > entry[1]:
            entry[1] = at
        if at >= self.due:  # type: ignore[operator]  # set with the first entry
            self.due = at + self.flush_seconds  # ask once, not per call
            return True
        return False

    def take(self) -> dict[str, list[Any]]:
        with self.lock:
            pending, self.pending = self.pending, {}
            self.due = None
            return pending

    def give_back(self, taken: dict[str, list[Any]]) -> None:
        """Put counts taken for a write that failed (or was put off) back, for the next try."""
        if not taken:
            return
        with self.lock:
            for key_id, (count, last) in taken.items():
                entry = self.pending.setdefault(key_id, [0, last])
                entry[0] += count
                entry[1] = max(entry[1], last)
            if self.due is None:
                self.due = max(last for _count, last in taken.values())


def minute(at: float) -> datetime:
    """``at`` (seconds since the epoch, as the buffers keep times) cut to its minute."""
    return datetime.fromtimestamp(int(at // 60) * 60, UTC)


class UsageWriter:
    """A verifier's buffers (use counts, refused and throttled secrets, rehashed hashes), written
    by a background thread every ``flush_seconds`` or when asked, and by :meth:`flush`."""

    def __init__(
        self,
        database: Database,
        write_events: EventWriter,
        flush_seconds: float,
        now: Callable[[], datetime],
    ):
        self.db = database
        self.write_events = write_events
        self.now = now
        # One lock for every count: a verify counts in two buffers under one acquisition
        # (used(), refused())
        self._counts_lock = threading.Lock()
        self.usage = UsageBuffer(flush_seconds, self._counts_lock)
        # (key ID, hour) -> counts by outcome, last use and refusal
        self.hours = HourlyUsage(self._counts_lock)
        # key ID -> [refused secrets, last]; [of those, unchecked, last]
        self.failed = UsageBuffer(flush_seconds, self._counts_lock)
        self.throttled = UsageBuffer(flush_seconds, self._counts_lock)
        self._rehash: list[tuple[str, str, str]] = []  # (key ID, old hash, new hash)
        self._rehash_lock = threading.Lock()
        self._lock_start = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._asked = threading.Event()
        self._flush_lock = threading.Lock()
        self._closing = threading.Event()

    @property
    def started(self) -> bool:
        return self._flusher is not None

    def used(self, key_id: str, host: str | None, at: float) -> bool:
        """Count a valid verification of ``key_id`` (the warm path's one lock); True when a
        flush should be asked for."""
        with self._counts_lock:
            ask = self.usage.add_locked(key_id, at)
            return self.hours.add_locked(key_id, VALID, host, at) or ask

    def refused(self, key_id: str, outcome: int, host: str | None, at: float) -> bool:
        """Count a refused secret of ``key_id`` (WRONG_SECRET, or THROTTLED: also counted as
        unchecked) for its ``key.verify_failed`` event and its hour; True when a flush should
        be asked for."""
        with self._counts_lock:
            if outcome == THROTTLED:
                self.throttled.add_locked(key_id, at)
            ask = self.failed.add_locked(key_id, at)
            return self.hours.add_locked(key_id, outcome, host, at) or ask

    def rehash(self, key_id: str, old_hash: str, new_hash: str) -> None:
        """Write ``new_hash`` over ``old_hash`` at the next flush (unless replaced meanwhile)."""
        with self._rehash_lock:
            self._rehash.append((key_id, old_hash, new_hash))
        self.ask()

    def start(self) -> None:
        with self._lock_start:
            if self._flusher is None and not self._closing.is_set():
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="keytui-usage", daemon=True
                )
                self._flusher.start()

    def ask(self) -> None:
        if self._flusher is None:
            self.start()
        self._asked.set()

    def _flush_loop(self) -> None:
        while not self._closing.is_set():
            changes.nap(self._asked, self.usage.flush_seconds)
            self._asked.clear()
            if self._closing.is_set():
                break
            if not self.flush(wait=False):
                changes.nap(self._closing, FLUSH_RETRY_SECONDS)  # some counts wait for a writer

    def close(self) -> None:
        """Stop the background flush, then write what is left (waiting for writers)."""
        self._closing.set()
        self._asked.set()
        flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout=30)
        self.flush()

    def flush(self, *, wait: bool = True) -> bool:
        """Write buffered use counts and last-used minutes, the hourly counts by outcome
        (:meth:`HourlyUsage.flush`), pending rehashes, and one ``key.verify_failed`` event per
        key that saw refused secrets (with their count).

        The background flush (``wait=False``) waits for no writer: on PostgreSQL it skips the
        rows a writer holds (``SKIP LOCKED``) and gives up on other locks after
        :data:`FLUSH_LOCK_TIMEOUT`; what it could not write is kept for the next try. False
        when something was kept back. One flush at a time: an explicit one waits for the
        background one to end, so what it returns after has been written."""
        with self._flush_lock:
            done = self._flush_usage(wait)
            timeout = None if wait else FLUSH_LOCK_TIMEOUT
            done = self.hours.flush(self.db, self.now(), timeout) and done
            done = self._flush_rehash(wait) and done
            return self._flush_failed(wait) and done

    def _begin(self, session: Session, wait: bool) -> None:
        if not wait and not self.db.is_sqlite:
            session.execute(text(f"SET LOCAL lock_timeout = '{FLUSH_LOCK_TIMEOUT}'"))

    def _flush_usage(self, wait: bool) -> bool:
        pending = self.usage.take()
        if not pending:
            return True
        kept: dict[str, list[Any]] = {}
        try:
            with self.db.write() as session:
                self._begin(session, wait)
                ids = sorted(pending)
                # Row locks in key order (the order every writer follows); rows a writer holds
                # are skipped, not waited for, by the background flush. A key that is gone
                # (deleted) takes its counts with it: usage is by key ID, never by row id.
                lock = select(Key.key_id).where(Key.key_id.in_(ids)).order_by(Key.key_id)
                got = set(session.scalars(lock.with_for_update(skip_locked=not wait)))
                if len(got) < len(ids):
                    there = set(session.scalars(select(Key.key_id).where(Key.key_id.in_(ids))))
                    kept = {k: pending[k] for k in there - got}
                if got:
                    session.execute(
                        USAGE_ADD,
                        [
                            {
                                "used_key": key_id,
                                "used_count": pending[key_id][0],
                                "used_last": minute(pending[key_id][1]),
                            }
                            for key_id in sorted(got)
                        ],
                    )
                    changes.notify(session)  # the app shows use counts: they changed
        except SQLAlchemyError:  # keep the counts for the next try
            self.usage.give_back(pending)
            return False
        self.usage.give_back(kept)
        return not kept

    def _flush_rehash(self, wait: bool) -> bool:
        with self._rehash_lock:
            rehash, self._rehash = self._rehash, []
        if not rehash:
            return True
        try:
            with self.db.write() as session:
                self._begin(session, wait)
                for key_id, old_hash, new_hash in sorted(rehash):
                    session.execute(  # unless the key was replaced meanwhile
                        update(Key)
                        .where(Key.key_id == key_id, Key.secret_hash == old_hash)
                        .values(secret_hash=new_hash)
                    )
        except SQLAlchemyError:
            with self._rehash_lock:
                self._rehash[:0] = rehash
            return False
        return True

    def _flush_failed(self, wait: bool) -> bool:
        failed = self.failed.take()
        if not failed:
            return True
        throttled = self.throttled.take()
        events = []
        for key_id, (count, last) in sorted(failed.items()):
            details: dict[str, Any] = {"count": count, "last": iso_utc(minute(last))}
            if key_id in throttled:
                details["throttled"] = throttled[key_id][0]
            events.append(("key.verify_failed", key_id, details))
        try:
            with self.db.write() as session:
                self._begin(session, wait)  # the audit chain's lock: not waited for long
                self.write_events(session, events)
        except SQLAlchemyError:
            self.failed.give_back(failed)
            self.throttled.give_back(throttled)
            return False
        return True


# -- verifications per key and hour, by outcome ---------------------------------------------------

# The outcomes counted, in the order of a buffered entry's counts (and the table's columns).
OUTCOMES = ("valid", "revoked", "expired", "disabled", "host_denied", "wrong_secret", "throttled")
VALID, REVOKED, EXPIRED, DISABLED, HOST_DENIED, WRONG_SECRET, THROTTLED = range(len(OUTCOMES))
_USED_AT, _USED_HOST, _REFUSED_AT, _REFUSED_HOST = range(len(OUTCOMES), len(OUTCOMES) + 4)
KEPT_HOURS = 90 * 24  # hourly buckets kept: 90 days
PRUNE_HOURS = 24  # at most this many hours of old buckets deleted by one flush
HOST_MAX = 255  # characters of a client host kept
PRUNE_LOCK = int.from_bytes(b"keytuipr", "big", signed=True)  # one pruner at a time (PostgreSQL)
# Buckets kept in memory while flushes fail (a verifier's role without the key_usage grant, a
# database away): beyond this the oldest hours are dropped, with one warning.
HELD_MAX = 200_000
log = logging.getLogger("keytui.usage")


def hour_of(moment: datetime) -> int:
    """The hour ``moment`` falls in, as whole hours since 1970-01-01 UTC (the table's ``hour``)."""
    return int(moment.timestamp()) // 3600


class HourlyUsage:
    """Verifications counted in memory per (key ID, hour) and outcome, with the last use and the
    last refusal of the hour and their client hosts; written in batches by :meth:`flush`.

    ``add`` is on the request path: a lock and a dict lookup. A key ID that is no key (the kill
    switch answers before any read) is dropped by the flush, which writes existing keys only."""

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self.pending: dict[tuple[str, int], list[Any]] = {}
        self.lock = lock or threading.Lock()
        self.pruned = -1  # the hour of the last prune that found nothing more to delete
        self.dropped = False  # counts were dropped once (a warning said so)
        self._span = (0.0, 0.0, 0)  # the hour of the last add: its start, end, number

    def add(self, key_id: str, outcome: int, host: str | None, at: float) -> bool:
        """Count one verification at ``at`` (seconds since the epoch); True when a flush should
        be asked for (many keys buffered)."""
        with self.lock:
            return self.add_locked(key_id, outcome, host, at)

    def add_locked(self, key_id: str, outcome: int, host: str | None, at: float) -> bool:
        """:meth:`add`, for a caller that holds ``lock``."""
        start, end, hour = self._span
        if not start <= at < end:  # a new hour
            hour = int(at // 3600)
            start = hour * 3600.0
            self._span = (start, start + 3600.0, hour)
        slot = _USED_AT if outcome == VALID else _REFUSED_AT
        entry = self.pending.get((key_id, hour))
        if entry is None:
            entry = self.pending[(key_id, hour)] = [0] * len(OUTCOMES) + [None] * 4
            entry[outcome] = 1
            entry[slot], entry[slot + 1] = at, host
            return len(self.pending) >= PENDING_MAX
        entry[outcome] += 1
        last = entry[slot]
        if last is None or at >= last:
            entry[slot], entry[slot + 1] = at, host
        return False

    def take(self) -> dict[tuple[str, int], list[Any]]:
        with self.lock:
            pending, self.pending = self.pending, {}
            return pending

    def give_back(self, taken: dict[tuple[str, int], list[Any]]) -> None:
        """Put counts taken for a write that failed back, for the next try."""
        with self.lock:
            for bucket, counts in taken.items():
                entry = self.pending.get(bucket)
                if entry is None:
                    self.pending[bucket] = counts
                    continue
                for outcome in range(len(OUTCOMES)):
                    entry[outcome] += counts[outcome]
                for slot in (_USED_AT, _REFUSED_AT):
                    at = counts[slot]
                    if at is not None and (entry[slot] is None or at > entry[slot]):
                        entry[slot], entry[slot + 1] = at, counts[slot + 1]
            if len(self.pending) > HELD_MAX:
                oldest = sorted(self.pending, key=lambda bucket: bucket[1])
                for bucket in oldest[: len(self.pending) - HELD_MAX]:
                    del self.pending[bucket]
                if not self.dropped:
                    log.warning(
                        "hourly usage counts could not be written for a while; the oldest "
                        "are dropped (does this role have the key_usage grant?)"
                    )
                self.dropped = True

    def flush(self, database: Database, now: datetime, lock_timeout: str | None = None) -> bool:
        """Add the buffered counts to ``key_usage`` (one upsert per key and hour, in key order,
        so verifiers on several hosts add up and never wait on each other in a cycle), then
        prune buckets older than :data:`KEPT_HOURS` once an hour. ``lock_timeout``
        (PostgreSQL): wait no longer for a lock; what could not be written is kept for the next
        try (False)."""
        taken = self.take()
        if taken:
            try:
                with database.write() as session:
                    if lock_timeout and not database.is_sqlite:
                        session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                    ids = sorted({key_id for key_id, _hour in taken})
                    there: set[str] = set()
                    for chunk in range(0, len(ids), 500):
                        found = select(Key.key_id).where(Key.key_id.in_(ids[chunk : chunk + 500]))
                        there.update(session.scalars(found))
                    rows = [
                        _row(key_id, hour, counts)
                        for (key_id, hour), counts in sorted(taken.items())
                        if key_id in there  # a deleted key takes its counts with it
                    ]
                    if rows:
                        session.connection().execute(_upsert(database.is_sqlite), rows)
            except SQLAlchemyError:
                self.give_back(taken)
                return False
        self.prune(database, hour_of(now), lock_timeout)
        return True

    def prune(self, database: Database, hour: int, lock_timeout: str | None = None) -> None:
        """Delete buckets older than :data:`KEPT_HOURS` (at most :data:`PRUNE_HOURS` hours of them
        a call): one indexed ``min(hour)`` an hour when there is nothing to delete. A prune that
        fails is tried again at the next flush; the counts never depend on it."""
        if hour <= self.pruned:
            return
        cutoff = hour - KEPT_HOURS + 1
        done = True
        try:
            with database.write() as session:
                if not database.is_sqlite:
                    if lock_timeout:
                        session.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                    mine = session.scalar(
                        select(func.pg_try_advisory_xact_lock(PRUNE_LOCK))  # another host prunes
                    )
                    if not mine:
                        self.pruned = hour
                        return
                oldest = session.scalar(select(func.min(KeyUsage.hour)))
                if oldest is not None and oldest < cutoff:
                    upto = min(cutoff, oldest + PRUNE_HOURS)
                    session.execute(delete(KeyUsage).where(KeyUsage.hour < upto))
                    done = upto >= cutoff
        except SQLAlchemyError:
            return
        if done:
            self.pruned = hour


def _row(key_id: str, hour: int, counts: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"key_id": key_id, "hour": hour}
    row.update(zip(OUTCOMES, counts, strict=False))
    for slot, name in ((_USED_AT, "used"), (_REFUSED_AT, "refused")):
        at, host = counts[slot], counts[slot + 1]
        row[f"{name}_at"] = minute(at) if at is not None else None
        row[f"{name}_host"] = host[:HOST_MAX] if isinstance(host, str) and host else None
    return row


def _upsert(sqlite: bool) -> Any:
    """INSERT ... ON CONFLICT (key_id, hour) DO UPDATE: each count added to the row's, the last
    use (refusal) and its host taken when newer. Atomic on both databases: two flushers add."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    statement: Any = (sqlite_insert if sqlite else pg_insert)(KeyUsage)
    new, old = statement.excluded, statement.table.c
    values: dict[str, Any] = {outcome: old[outcome] + new[outcome] for outcome in OUTCOMES}
    for name in ("used", "refused"):
        at, host = f"{name}_at", f"{name}_host"
        newer: ColumnElement[bool] = and_(
            new[at].is_not(None), or_(old[at].is_(None), new[at] >= old[at])
        )
        values[at] = case((newer, new[at]), else_=old[at])
        values[host] = case((newer, new[host]), else_=old[host])
    return statement.on_conflict_do_update(index_elements=["key_id", "hour"], set_=values)
