"""Bulk revoke on PostgreSQL right after an aborted one (issue 10).

    python -m bench pg-revoke [--keys 10000] [--repeat 3]

A revoke that is rolled back (a killed client, a failed commit) leaves every index entry its
UPDATEs made behind; with GIN's ``fastupdate`` they queue in the pg_trgm indexes' pending lists,
and the next revoke paid for them (3-7 s per 500-key chunk when the planner took the trigram
index on key_id for ``key_id = ANY(...)``). Each sample: every key made active again and the
table vacuumed, a revoke of all of them rolled back after its UPDATEs, then the revoke timed.

The baseline, in the same run (each sample after the same reset, vacuum and rolled-back
UPDATE): the bare statements no revoke can do without, one ``UPDATE keys SET revoked_at = ...
WHERE pk = ANY(...)`` of the same keys and a ``COPY`` of as many event-sized rows into a
temporary copy of the events table (its indexes too), committed. A loaded machine moves
both; their ratio is the figure to judge.

A database ``keytui_bench_revoke_<random>`` on $KEYTUI_BENCH_POSTGRES_URL (else
$KEYTUI_TEST_POSTGRES_URL) is made for the run and dropped after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

TARGET_S = 1.0


class Abort(Exception):
    """Raised inside the revoke's transaction, so it rolls back after its UPDATEs."""


def server_url() -> str | None:
    return os.environ.get("KEYTUI_BENCH_POSTGRES_URL") or os.environ.get("KEYTUI_TEST_POSTGRES_URL")


_RESET = "UPDATE keys SET revoked_at = NULL, revoked_by = NULL, expires_at = NULL"
_BARE_UPDATE = (
    "UPDATE keys SET revoked_at = now(), revoked_by = 'alice', updated_at = now() "
    "WHERE pk = ANY(%s) AND revoked_at IS NULL"
)


def bare(connection: Any, pks: list[int], events: list[tuple[str, ...]], *, abort: bool) -> float:
    """The baseline (see the module's docstring) on a plain driver connection: seconds for
    the UPDATE and the COPY, committed; with ``abort``, the UPDATE alone, rolled back first."""
    from keytui.core.audit import _COLUMNS

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bare_events (LIKE events INCLUDING ALL)")
    connection.commit()
    if abort:
        with connection.cursor() as cursor:
            cursor.execute(_BARE_UPDATE, (pks,))
        connection.rollback()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_BARE_UPDATE, (pks,))
        with cursor.copy(f"COPY bare_events ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            for row in events:
                copy.write_row(row)
    connection.commit()
    took = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE bare_events")
    connection.commit()
    return took


def measure(
    keys: int,
    repeat: int,
    log: Callable[[str], None],
    *,
    abort: bool = True,
    baselines: list[float] | None = None,
) -> list[float] | None:
    """Seconds per full revoke of ``keys`` active keys after an aborted one; None without a
    PostgreSQL server. ``baselines``: the bare statements' seconds are appended to it, one a
    sample (see the module's docstring)."""
    server = server_url()
    if not server:
        return None
    from sqlalchemy import create_engine, event, select, text
    from sqlalchemy.engine import make_url

    from keytui.core.demo import seed_demo
    from keytui.core.models import Key
    from keytui.core.service import KeyService

    url = make_url(server).set(drivername="postgresql+psycopg")
    # A name of its own per run: two runs on one server (two checkouts) never share it
    name = f"keytui_bench_revoke_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    target = url.set(database=name).render_as_string(hide_password=False)
    service = KeyService.open(target, actor="alice", face="cli")
    samples: list[float] = []
    try:
        log(f"PostgreSQL revoke: {keys:,} demo keys...")
        seed_demo(service, keys)
        with service.db.read() as session:
            ids = list(session.scalars(select(Key.key_id)))
            pks = sorted(session.scalars(select(Key.pk)))
        # Event-sized rows for the baseline's COPY: the time, actor, action, an ID, the face,
        # the details and two SHA-256 hex digests, as a revoke writes them.
        events = [
            (
                "2026-12-01T05:00:00.000000Z",
                "alice",
                "key.revoke",
                key_id,
                "cli",
                '{"name":"billing prod worker"}',
                "0" * 64,
                "f" * 64,
            )
            for key_id in ids
        ]
        plain = create_engine(target).raw_connection()
        upkeep = create_engine(target, isolation_level="AUTOCOMMIT")
        aborting = {"on": False}

        @event.listens_for(service.db.engine, "before_cursor_execute")
        def _abort(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
            # The event chain's lock comes after every UPDATE of the revoke: stop there, and
            # the whole transaction rolls back.
            if aborting["on"] and "pg_advisory_xact_lock" in statement:
                raise Abort

        for n in range(repeat):
            with upkeep.connect() as connection:  # all active again, and a clean table
                connection.execute(text(_RESET))
                connection.execute(text("VACUUM ANALYZE keys"))
            aborted = 0.0
            if abort:
                aborting["on"] = True
                started = time.perf_counter()
                try:
                    service.revoke_keys(ids)
                except Abort:
                    pass
                aborted = time.perf_counter() - started
            aborting["on"] = False
            started = time.perf_counter()
            plan = service.revoke_keys(ids)
            took = time.perf_counter() - started
            assert len(plan.revoke) == len(ids), len(plan.revoke)
            samples.append(took)
            line = f"  sample {n + 1}: aborted revoke {aborted:.2f} s, then revoke {took:.3f} s"
            if baselines is not None:
                with upkeep.connect() as connection:  # the same start for the baseline
                    connection.execute(text(_RESET))
                    connection.execute(text("VACUUM ANALYZE keys"))
                baselines.append(bare(plain.driver_connection, pks, events, abort=abort))
                line += f"; bare statements {baselines[-1]:.3f} s"
            log(line)
        plain.close()
        upkeep.dispose()
    finally:
        service.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return samples


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench pg-revoke", description=__doc__)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--clean", action="store_true", help="no aborted revoke first (the reference figure)"
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    baselines: list[float] = []
    samples = measure(args.keys, args.repeat, log, abort=not args.clean, baselines=baselines)
    if samples is None:
        print("bench: set KEYTUI_BENCH_POSTGRES_URL (or KEYTUI_TEST_POSTGRES_URL)", file=sys.stderr)
        return 2
    value = statistics.median(samples)
    floor = statistics.median(baselines)
    result = "pass" if value <= TARGET_S else "MISS"
    print("| figure | measured | target | result |\n|---|---:|---|---|")
    print(
        f"| bulk revoke of {args.keys:,} keys on PostgreSQL, right after an aborted one "
        f"| {value * 1000:,.0f} ms | <= {TARGET_S:.0f} s | {result} |"
    )
    print(
        f"| baseline: bare UPDATE of the same keys + COPY of as many events "
        f"| {floor * 1000:,.0f} ms | (reference) | ratio {value / floor:.2f} |"
    )
    print("samples: " + " / ".join(f"{s * 1000:,.0f} ms" for s in samples))
    print("baseline samples: " + " / ".join(f"{s * 1000:,.0f} ms" for s in baselines))
    return 0
