"""The change signal: a long-running KeyService (the app, a verifier) learns of every change made
by any process that shares its database, within tens of milliseconds, without a keypress.

*That* something changed comes from the database itself:

- SQLite: ``PRAGMA data_version``, which moves whenever another connection commits, polled on a
  connection of the watcher's own every :data:`POLL_SECONDS` (a few microseconds a poll);
- PostgreSQL: ``NOTIFY keytui_changes``, sent inside every writing transaction (see
  :func:`notify`: the audit log's appender and the usage flush call it) and delivered at commit
  to a ``LISTEN`` connection of the watcher's own.

*What* changed is read from the audit log: every change writes its events in its own
transaction, and appenders hold the chain lock until they commit, so events become visible in id
order and "the events after the last one seen" is exactly what changed meanwhile. After a lost
connection the watcher subscribes again first and then reads the events it missed, so nothing
falls between the two; until then it is not :attr:`ChangeWatcher.live`, and whoever caches must
read through.

A connection can also die without a word (a network cut leaves no FIN): the watcher proves its
connection works every few tens of milliseconds (SQLite's poll; on PostgreSQL a read of the
events after the last one seen, at least every :data:`PING_SECONDS`), and
:attr:`ChangeWatcher.sure_until` says until when (``time.monotonic()``) the last proof vouches
for it: :data:`LEASE_SECONDS` after it. A cache answers from memory only before that instant,
so a silent loss is read through after at most the lease, and a loss the driver sees (a killed
backend, a restarted server) at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from .db import Database

CHANNEL = "keytui_changes"
POLL_SECONDS = 0.02  # SQLite: how often data_version is read (the app's and verifiers' bound)
FILE_CHECK_SECONDS = 1.0  # SQLite: how often the watcher checks the file is still there
PING_SECONDS = 0.03  # PostgreSQL: with no notice for this long, read the events anyway
LEASE_SECONDS = 0.1  # a proof of the connection vouches for this long (see sure_until)
RETRY_SECONDS = 0.5  # after a lost connection, the first wait before subscribing again
WHOLE_INSTALLATION = ("settings.", "user.", "role.")  # actions that may change any answer
KEY_ACTIONS = ("key.create", "key.replace", "key.rename", "key.revoke", "key.delete")

log = logging.getLogger("keytui.changes")


def notify(session: Session) -> None:
    """Say, inside a writing transaction, that it changed something (PostgreSQL delivers it at
    commit, and drops it on rollback). SQLite needs nothing: its data_version moves by itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@dataclass(frozen=True)
class Change:
    """What changed since the previous notice.

    ``key_ids``: keys created, renamed, replaced, revoked or deleted. ``installation``: settings,
    users or key roles changed, so any answer may differ. ``resync``: the watcher may have missed
    changes (its connection was lost) and is not live until it has caught up; drop what you
    cache. A notice with none of these still means rows changed (use counts, last used)."""

    key_ids: frozenset[str] = field(default_factory=frozenset)
    installation: bool = False
    resync: bool = False
    last_event_id: int = 0
    # SQLite: the database file was deleted or replaced (Database.file_gone); said once. Writes
    # are refused from then on; tell the user.
    file_gone: bool = False

    @classmethod
    def from_events(cls, rows: Iterable[tuple[int, str, str | None]], after: int) -> Change:
        keys: set[str] = set()
        installation = False
        last = after
        for event_id, action, key_id in rows:
            last = max(last, event_id)
            if action.startswith(WHOLE_INSTALLATION):
                installation = True
            elif key_id and action in KEY_ACTIONS:
                keys.add(key_id)
            elif action == "demo.seed":
                installation = True
        return cls(frozenset(keys), installation, False, last)


_SINCE = "SELECT id, action, key_id FROM events WHERE id > %s ORDER BY id"
_LAST = "SELECT COALESCE(MAX(id), 0) FROM events"


class ChangeWatcher:
    """A thread that calls ``on_change(Change)`` (from that thread) after every change to the
    database made by anyone, this process included. ``live`` is True while it is sure it hears
    every change; ``generation`` counts the notices that named keys or the installation (a
    cache compares it before and after a read to know whether the read may be stale);
    ``sure_until`` (``time.monotonic()``) is when the last proof that the connection works
    stops vouching for it (0 while not live): a plain float, cheap to read on a hot path."""

    def __init__(
        self,
        database: Database,
        on_change: Callable[[Change], None],
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.database = database
        self.on_change = on_change
        self.poll_seconds = poll_seconds
        self.generation = 0
        self.last_event_id = 0
        self.heard_event_id = 0  # the last event whose change on_change has returned from
        self.sure_until = 0.0
        self._live = threading.Event()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._connection: Any = None  # SQLAlchemy's pooled connection, checked out for good
        self._gone_told = False
        # Held while the connection is dropped: a second stop() (the app's own, then the
        # service's close) returns only once the first has closed it. It returned at once, and
        # the process could end while the other thread was still closing it (on SQLite the
        # last close checkpoints and removes the write-ahead log: it stayed).
        self._drop_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="keytui-changes", daemon=True)

    @property
    def live(self) -> bool:
        return self._live.is_set()

    def start(self, wait: float = 5.0) -> ChangeWatcher:
        """Start watching; wait (up to ``wait`` seconds) until the first subscription stands,
        or until it is stopped (the service closed meanwhile: the thread, if it started, sees
        the stop before it subscribes, or is joined by ``stop``)."""
        if not self._stop.is_set():
            self._thread.start()
        wait_until(lambda: self._started.is_set() or self._stop.is_set(), wait)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._lapse()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._drop_connection()

    def wait_live(self, timeout: float) -> bool:
        return wait_until(self._live.is_set, timeout)

    def _vouch(self, proved: float) -> None:
        """The connection answered a read that began at ``proved`` (``time.monotonic()``), and
        every change committed before it has been handed on: memory may be trusted for a lease
        from that instant (not from now: a thread that stalls after the read must not stretch
        it)."""
        if self._live.is_set():
            self.sure_until = proved + LEASE_SECONDS

    def _lapse(self) -> None:
        self.sure_until = 0.0
        self._live.clear()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = RETRY_SECONDS
        first = True
        while not self._stop.is_set():
            try:
                proved = time.monotonic()
                self._subscribe(first)
                first = False
                delay = RETRY_SECONDS
                self._live.set()
                self._vouch(proved)
                self._started.set()
                self._watch()
            except Exception as exc:  # noqa: BLE001 - any loss of the connection
                was_live = self._live.is_set()
                self._lapse()
                self._drop_connection()
                if self._stop.is_set():
                    break
                if was_live or first:
                    log.warning(
                        "change signal lost (%s); reading through until it is back",
                        type(exc).__name__,
                    )
                self._started.set()
                self._deliver(Change(resync=True, last_event_id=self.last_event_id))
                nap(self._stop, delay)
                delay = min(delay * 2, 5.0)
        self._lapse()
        # Stopped: the thread drops its own connection too (stop() joins it for 5 s at most, and
        # a connect slower than that would store its connection after stop() had dropped none)
        self._drop_connection()

    def _subscribe(self, first: bool) -> None:
        """Connect and subscribe; then catch up with the events missed meanwhile (after the
        subscription, so a change made between the two is heard either way)."""
        fairy = self.database.engine.raw_connection()
        self._connection = fairy
        raw: Any = fairy.driver_connection
        if self.database.is_sqlite:
            self._data_version = self._scalar(raw, "PRAGMA data_version")
        else:
            raw.autocommit = True
            raw.execute(f"LISTEN {CHANNEL}")
        if first:
            self.last_event_id = self.heard_event_id = int(self._scalar(raw, _LAST))
        else:
            self._catch_up(raw)
            log.warning("change signal back; answers come from memory again")

    def _watch(self) -> None:
        raw = self._connection.driver_connection
        if self.database.is_sqlite:
            checked = time.monotonic()
            while not nap(self._stop, self.poll_seconds):
                if not self._gone_told and time.monotonic() - checked >= FILE_CHECK_SECONDS:
                    checked = time.monotonic()
                    if self.database.file_gone():
                        self._gone_told = True
                        self._deliver(Change(last_event_id=self.last_event_id, file_gone=True))
                proved = time.monotonic()
                version = self._scalar(raw, "PRAGMA data_version")
                if version != self._data_version:
                    self._data_version = version
                    self._catch_up(raw)
                self._vouch(proved)  # changes committed before this poll have been delivered
        else:
            while not self._stop.is_set():
                heard = False
                for _notice in raw.notifies(timeout=PING_SECONDS, stop_after=None):
                    heard = True
                    break  # one is enough: the events say what changed
                # Read the events after the last one seen, notice or not: a dead connection
                # raises here, and a live one has then handed on every change committed before
                # this read began (a notice still on its way would only repeat it).
                proved = time.monotonic()
                self._catch_up(raw, deliver_empty=heard)
                self._vouch(proved)

    def _catch_up(self, raw: Any, *, deliver_empty: bool = True) -> None:
        rows = self._rows(raw, _SINCE, (self.last_event_id,))
        if not rows and not deliver_empty:
            return
        change = Change.from_events(rows, self.last_event_id)
        self.last_event_id = change.last_event_id
        self._deliver(change)
        self.heard_event_id = change.last_event_id

    def _deliver(self, change: Change) -> None:
        if change.key_ids or change.installation or change.resync or change.file_gone:
            self.generation += 1
        try:
            self.on_change(change)
        except Exception:  # a subscriber's failure must not stop the signal
            log.exception("a change subscriber failed")

    # -- driver-level reads (the watcher's own connection, outside any transaction) -------------

    def _rows(self, raw: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self.database.is_sqlite:
            sql = sql.replace("%s", "?")
        cursor = raw.cursor()
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _scalar(self, raw: Any, sql: str) -> Any:
        return self._rows(raw, sql)[0][0]

    def _drop_connection(self) -> None:
        with self._drop_lock:
            fairy, self._connection = self._connection, None
            if fairy is None:
                return
            try:
                fairy.invalidate()  # never back into the pool: it holds a LISTEN
            except Exception:  # noqa: BLE001 - it is already gone
                pass


def nap(event: threading.Event, seconds: float, step: float = 0.05) -> bool:
    """Sleep up to ``seconds``, waking early once ``event`` is set; True when it is.

    ``time.sleep`` in slices rather than ``event.wait(timeout)``: a timed wait on a lock is an
    absolute deadline on the monotonic clock, which a shifted clock (libfaketime, as the CI's
    year-ahead run uses) turns into a wait that never times out."""
    deadline = time.monotonic() + seconds
    while not event.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(step, left))
    return event.is_set()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass (for callers and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
