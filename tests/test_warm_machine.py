"""No revoked, replaced, deleted, expired or disabled key ever verifies, whatever the order of
changes and verifies across two long-running services that answer from memory.

The services are separate KeyServices on one database, each with its own change watcher (as two
processes would be). Before each verify the machine waits for that service's watcher to have
handed on every event in the database (the propagation barrier; a watcher not live reads
through and needs none); after it, the answer must be exactly what the model says.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from keytui.core.changes import wait_until
from keytui.core.clock import FrozenClock
from keytui.core.db import open_database
from keytui.core.models import Event
from keytui.core.service import KeyService

from .conftest import FAST_HASHER, NOW, reset_postgres


@dataclass
class ModelKey:
    id: str
    expires: object  # datetime | None
    revoked: bool = False
    deleted: bool = False
    replaces: int = 0


@dataclass
class Issued:
    key: ModelKey
    secret: str
    current: bool = True


def heard_everything(service: KeyService) -> bool:
    watcher = service.verifier.watcher
    if watcher is None or not watcher.live:
        return True  # no watcher, or not live: every verify reads the row
    with service.db.read() as session:
        last = session.scalar(select(func.max(Event.id))) or 0
    return watcher.heard_event_id >= last


class TwoVerifiers(RuleBasedStateMachine):
    url = ""
    secrets = Bundle("secrets")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock(NOW)
        self.services = [
            KeyService(open_database(self.url), actor="alice", clock=self.clock, hasher=FAST_HASHER)
            for _ in range(2)
        ]
        self.services[0].bootstrap()
        self.issued: list[Issued] = []
        self.enabled = True

    @initialize(target=secrets)
    def first_key(self):
        return self._create(0, None)

    def _create(self, via: int, minutes: int | None):
        expires = None if minutes is None else self.clock() + timedelta(minutes=minutes)
        made = self.services[via].create_key(f"k{len(self.issued)}", expires=expires)
        issued = Issued(ModelKey(made.key.id, expires), made.secret)
        self.issued.append(issued)
        return issued

    @precondition(lambda self: self.enabled)  # no new keys while keys are disabled
    @rule(target=secrets, via=st.integers(0, 1), minutes=st.none() | st.integers(1, 90))
    def create(self, via, minutes):
        return self._create(via, minutes)

    def _active(self, key: ModelKey) -> bool:
        expired = key.expires is not None and key.expires <= self.clock()
        return not (key.revoked or key.deleted or expired)

    @rule(issued=secrets, via=st.integers(0, 1))
    def revoke(self, issued, via):
        if self._active(issued.key):
            self.services[via].revoke_key(issued.key.id)
            issued.key.revoked = True

    @rule(target=secrets, issued=secrets, via=st.integers(0, 1))
    def replace(self, issued, via):
        key = issued.key
        if (
            not self.enabled or not self._active(key) or key.replaces >= 3
        ):  # (more would empty its flood bucket)
            return issued
        made = self.services[via].replace_key(key.id)
        for old in self.issued:
            if old.key is key:
                old.current = False
        key.replaces += 1
        fresh = Issued(key, made.secret)
        self.issued.append(fresh)
        return fresh

    @rule(issued=consumes(secrets), via=st.integers(0, 1))
    def delete(self, issued, via):
        if not issued.key.deleted:
            self.services[via].delete_keys([issued.key.id])
            issued.key.deleted = True

    @rule(via=st.integers(0, 1), enabled=st.booleans())
    def switch(self, via, enabled):
        self.services[via].update_settings(keys_enabled=enabled)
        self.enabled = enabled

    @rule(minutes=st.integers(1, 60))
    def time_passes(self, minutes):
        self.clock.advance(minutes=minutes)

    def expected(self, issued: Issued) -> str:
        key = issued.key
        if not self.enabled:
            return "DISABLED"
        if key.deleted or not issued.current:
            return "NOT_FOUND"
        if key.revoked:
            return "REVOKED"
        if key.expires is not None and key.expires <= self.clock():
            return "EXPIRED"
        return "VALID"

    @rule(issued=secrets, via=st.integers(0, 1), times=st.integers(1, 3))
    def verify(self, issued, via, times):
        service = self.services[via]
        assert wait_until(lambda: heard_everything(service), 10)
        for _ in range(times):
            result = service.verify(issued.secret)
            assert result.code == self.expected(issued), (issued.key, result)

    @precondition(lambda self: bool(self.issued))
    @rule(via=st.integers(0, 1))
    def verify_all(self, via):
        service = self.services[via]
        assert wait_until(lambda: heard_everything(service), 10)
        for issued in self.issued:
            result = service.verify(issued.secret)
            assert result.code == self.expected(issued), (issued.key, result)
            assert result.valid == (result.code == "VALID")

    def teardown(self):
        for service in self.services:
            service.close()


def run_machine(url: str, examples: int) -> None:
    TwoVerifiers.url = url
    run_state_machine_as_test(
        TwoVerifiers,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_no_dead_key_verifies_sqlite():
    with tempfile.TemporaryDirectory() as directory:
        counter = iter(range(10_000))

        class Fresh(TwoVerifiers):
            def __init__(self) -> None:
                type(self).url = str(Path(directory) / f"k{next(counter)}.db")
                super().__init__()

        run_state_machine_as_test(
            Fresh,
            settings=settings(
                max_examples=20,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


@pytest.mark.postgres
def test_no_dead_key_verifies_postgres(postgres_url):
    class Fresh(TwoVerifiers):
        def __init__(self) -> None:
            reset_postgres(postgres_url)
            type(self).url = postgres_url
            super().__init__()

    run_state_machine_as_test(
        Fresh,
        settings=settings(
            max_examples=8,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
