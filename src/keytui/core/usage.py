"""Use counts kept in memory and written in batches, never a row per request: per key ID, a
count and the last minute it was used. :class:`UsageWriter` writes them (and a verifier's
refusals and rehashes) from a background thread that waits for no writer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, case, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from . import changes
from .models import Key
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

    ``add`` is on the warm path: a lock, a dict lookup and a comparison of times. The last use
    is kept as given and cut to the minute when written."""

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[str, list[Any]] = {}  # key ID -> [count, last used]
        self.due: datetime | None = None  # when the oldest buffered count should be written
        self.lock = threading.Lock()

    def add(self, key_id: str, now: datetime, count: int = 1) -> bool:
        """Record ``count`` uses; True when a flush should be asked for."""
        with self.lock:
            entry = self.pending.get(key_id)
            if entry is None:
                self.pending[key_id] = [count, now]
                if self.due is None:
                    self.due = now + timedelta(seconds=self.flush_seconds)
                return len(self.pending) >= PENDING_MAX or now >= self.due
            entry[0] += count
            if now > entry[1]:
                entry[1] = now
            if now >= self.due:  # type: ignore[operator]  # set with the first entry
                self.due = now + timedelta(seconds=self.flush_seconds)  # ask once, not per call
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


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class UsageWriter:
    """A verifier's buffers (use counts, refused and throttled secrets, rehashed hashes), written
    by a background thread every ``flush_seconds`` or when asked, and by :meth:`flush`."""

    def __init__(self, database: Database, write_events: EventWriter, flush_seconds: float):
        self.db = database
        self.write_events = write_events
        self.usage = UsageBuffer(flush_seconds)
        self.failed = UsageBuffer(flush_seconds)  # key ID -> [refused secrets, last]
        self.throttled = UsageBuffer(flush_seconds)  # key ID -> [of those, unchecked, last]
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
        """Write buffered use counts and last-used minutes, pending rehashes, and one
        ``key.verify_failed`` event per key that saw refused secrets (with their count).

        The background flush (``wait=False``) waits for no writer: on PostgreSQL it skips the
        rows a writer holds (``SKIP LOCKED``) and gives up on other locks after
        :data:`FLUSH_LOCK_TIMEOUT`; what it could not write is kept for the next try. False
        when something was kept back. One flush at a time: an explicit one waits for the
        background one to end, so what it returns after has been written."""
        with self._flush_lock:
            done = self._flush_usage(wait)
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
