"""The change signal: a watcher hears changes made by other processes, says what changed, and
after a lost connection reads through (not live), subscribes again and catches up."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from keytui.core.changes import Change, wait_until

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

CHILD = """
import sys
from keytui.core.service import KeyService
service = KeyService.open(sys.argv[1], actor="alice")
getattr(service, sys.argv[2])(*sys.argv[3:])
service.close()
"""


def other_process(url: str, method: str, *args: str) -> None:
    """Make a change from a separate process, as another admin or the CLI would."""
    subprocess.run([sys.executable, "-c", CHILD, url, method, *args], check=True, timeout=60)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self.lock:
            self.changes.append(change)

    def keys(self) -> set[str]:
        with self.lock:
            return set().union(*(c.key_ids for c in self.changes)) if self.changes else set()

    def any(self, predicate) -> bool:
        with self.lock:
            return any(predicate(c) for c in self.changes)


def test_a_change_in_another_process_names_its_key(make_service, db_url):
    admin = make_service("alice")
    issued = admin.create_key("payments", expires=None)
    heard = Recorder()
    watcher = admin.watch(heard)
    assert watcher.live
    other_process(db_url, "revoke_key", issued.key.id)
    assert wait_until(lambda: issued.key.id in heard.keys(), 10)
    assert not heard.any(lambda c: c.installation or c.resync)


def test_settings_change_concerns_the_whole_installation(make_service, db_url):
    admin = make_service("alice")
    heard = Recorder()
    admin.watch(heard)
    other = make_service("alice")
    other.update_settings(keys_enabled=False)
    assert wait_until(lambda: heard.any(lambda c: c.installation), 10)


def test_usage_alone_is_a_change_without_keys(make_service):
    admin = make_service("alice")
    issued = admin.create_key("payments", expires=None)
    heard = Recorder()
    watcher = admin.watch(heard)
    verifier = make_service("alice")
    assert verifier.verify(issued.secret).valid
    before = watcher.generation
    verifier.flush_usage()
    assert wait_until(lambda: bool(heard.changes), 10)
    assert heard.keys() == set() and watcher.generation == before


def test_own_process_changes_are_heard_too(make_service):
    admin = make_service("alice")
    heard = Recorder()
    admin.watch(heard)
    issued = admin.create_key("payments", expires=None)
    admin.delete_keys([issued.key.id])
    assert wait_until(lambda: issued.key.id in heard.keys(), 10)


def test_a_rolled_back_change_is_not_heard(make_service, db_url):
    admin = make_service("alice")
    heard = Recorder()
    watcher = admin.watch(heard)
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the transaction
        with admin.db.write() as session:
            admin._event(session, "key.revoke", "abcdefghij")
            raise RuntimeError("rolled back")
    other_process(db_url, "add_role", "billing")  # something that is heard, to wait for
    assert wait_until(lambda: heard.any(lambda c: c.installation), 10)
    assert "abcdefghij" not in heard.keys()
    assert watcher.live


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_killed_listener_reads_through_then_catches_up(make_service, db_url, caplog):
    admin = make_service("alice")
    issued = admin.create_key("payments", expires=None)
    heard = Recorder()
    watcher = admin.watch(heard)
    pid = watcher._connection.driver_connection.info.backend_pid
    killer = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with killer.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()
    assert wait_until(lambda: heard.any(lambda c: c.resync), 10)
    other_process(db_url, "revoke_key", issued.key.id)  # while the listener may still be down
    assert wait_until(lambda: watcher.live and issued.key.id in heard.keys(), 20)
    assert "change signal lost" in caplog.text


def slow_subscription(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Every watcher's subscription waits: (one has begun subscribing, let them go on)."""
    from keytui.core import changes

    begun, release = threading.Event(), threading.Event()
    subscribe = changes.ChangeWatcher._subscribe

    def slow_subscribe(self, first):
        begun.set()
        release.wait(10)
        return subscribe(self, first)

    monkeypatch.setattr(changes.ChangeWatcher, "_subscribe", slow_subscribe)
    return begun, release


def test_close_while_a_watcher_subscribes_stops_it(make_service, monkeypatch):
    """An app quit at once: the service closes while its watcher is still subscribing (in a
    worker thread). The watcher stops with it: its thread ends and holds no connection (on
    SQLite an open one would keep the write-ahead log when the process ends)."""
    from keytui.core import changes

    service = make_service("alice")
    subscribing, release = slow_subscription(monkeypatch)
    started: list[changes.ChangeWatcher] = []
    opener = threading.Thread(target=lambda: started.append(service.watch(Recorder(), wait=30)))
    opener.start()
    assert subscribing.wait(10)
    closer = threading.Thread(target=service.close)
    closer.start()
    release.set()
    closer.join(20)
    opener.join(20)
    assert not closer.is_alive() and not opener.is_alive()
    (watcher,) = started
    assert not watcher._thread.is_alive() and watcher._connection is None
    assert not watcher.live
    # and one asked for after the close never starts
    late = service.watch(Recorder(), wait=1)
    assert not late._thread.is_alive() and late._connection is None


def test_a_second_stop_returns_only_once_the_connection_is_closed(make_service):
    """The app stops its watcher from a thread of its own as it ends, and the service's close
    stops it again: whichever comes second must not return while the first is still closing
    the connection (the process ended meanwhile, and on SQLite the write-ahead log stayed)."""
    service = make_service("alice")
    watcher = service.watch(Recorder())
    closing, closed = threading.Event(), threading.Event()
    fairy = watcher._connection

    class SlowToClose:
        def invalidate(self) -> None:
            closing.set()
            time.sleep(0.5)
            fairy.invalidate()
            closed.set()

    watcher._connection = SlowToClose()
    first = threading.Thread(target=watcher.stop)
    first.start()
    assert closing.wait(10)
    watcher.stop()  # the second
    assert closed.is_set()
    first.join(10)


def test_a_watcher_that_connects_after_stop_gave_up_drops_its_connection(make_service, monkeypatch):
    """stop() waits 5 s at most for the thread: one still connecting then (a slow network)
    stores its connection after stop() found none to drop; the thread drops it as it ends."""
    from keytui.core import changes

    service = make_service("alice")
    connecting, release = slow_subscription(monkeypatch)
    watcher = changes.ChangeWatcher(service.db, Recorder())
    watcher._thread.start()
    assert connecting.wait(10)
    monkeypatch.setattr(watcher._thread, "join", lambda timeout=None: None)  # stop() gives up
    watcher.stop()
    release.set()
    assert wait_until(lambda: not watcher._thread.is_alive(), 10)
    assert watcher._connection is None
