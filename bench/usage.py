"""How each key is used, on a big table (issue 12), alone.

    python -m bench usage [--keys 1000000] [--used 10000] [--repeat 5] [--json PATH]

On a throwaway copy of the cached demo database of ``--keys`` keys (bench/out/keys-N.db, as the
main bench builds it), with 30 days of hourly usage for ``--used`` keys (working hours, about
340 rows each; a tenth of them over 100 uses in the current hour, a few of those far above
their usual rate), in process, medians of ``--repeat``, in the same run:

- the table's window as the app reads it (100 keys, newest first, and their uses in 24 h and
  flags: ``tui.window.fetch``) against the window alone (``list_keys``, the baseline), at the
  top and half-way down;
- a window sorted by uses in 24 h (a scan of every key: the figure says what it costs);
- the header's count of flagged keys (``usage_flags``), ``is:heavy`` (first window and capped
  count), one key's report (``key_usage``, the details screen);
- a background flush of 10,000 buckets (one upsert each) into the table as it stands.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from .__main__ import Row, build_sqlite, table, timed


def seed_usage(service: Any, used: int, log) -> tuple[list[str], str]:
    """30 days of working-hours usage for ``used`` keys spread over the table; returns their
    IDs and one heavy key's."""
    from sqlalchemy import func, insert, select

    from keytui.core.models import Key, KeyUsage
    from keytui.core.usage import OUTCOMES, hour_of

    rng = random.Random(12)
    hour = hour_of(service.now())
    with service.db.read() as session:
        total = int(session.scalar(select(func.max(Key.pk))) or 0)
        pks = sorted(rng.sample(range(1, total + 1), min(used, total)))
        ids = list(session.scalars(select(Key.key_id).where(Key.pk.in_(pks))))
    zero = dict.fromkeys(OUTCOMES, 0)
    extra = {"used_at": None, "used_host": None, "refused_at": None, "refused_host": None}
    heavy = ids[0]
    with service.db.write() as session:
        batch: list[dict[str, Any]] = []
        for index, key_id in enumerate(ids):
            usual = rng.randint(1, 60)
            for at in range(hour - 31 * 24, hour - 1):
                if 8 <= at % 24 <= 18:
                    batch.append({**zero, **extra, "key_id": key_id, "hour": at, "valid": usual})
            if index % 10 == 0:  # busy now: over the floor; a few far above their usual
                now_uses = usual * (20 if index % 100 == 0 else 3) + 101
                batch.append({**zero, **extra, "key_id": key_id, "hour": hour, "valid": now_uses})
            if len(batch) > 50_000:
                session.execute(insert(KeyUsage), batch)
                batch = []
        if batch:
            session.execute(insert(KeyUsage), batch)
    with service.db.read() as session:
        rows = session.scalar(select(func.count()).select_from(KeyUsage))
    log(f"usage: {len(ids):,} keys, {rows:,} hourly rows")
    return ids, heavy


def measure(service: Any, ids: list[str], heavy: str, repeat: int, log) -> list[Row]:
    from keytui.core.service import KeyQuery
    from keytui.core.usage import VALID, HourlyUsage
    from keytui.tui.window import COUNT_CAP, WINDOW, PagingWindow, fetch

    rows: list[Row] = []
    total = service.count_keys()

    def add(name: str, call, note: str = "", base: float | None = None) -> float:
        call()  # warm the cache, as a screen finds it after the first read
        samples = timed(call, repeat)
        value = statistics.median(samples) * 1000
        rows.append(
            Row(
                name,
                value,
                "ms",
                "-" if base is None else "vs the window alone",
                None if base is None else value / base,
                None,
                note,
                samples,
            )
        )
        return value

    for where, offset in (("top", 0), ("half-way", total // 2)):
        window = PagingWindow()
        request = window.request(offset, 0)
        base = add(
            f"window of {WINDOW} at the {where}, keys alone (list_keys)",
            lambda request=request: service.list_keys(request.query),
            "the baseline",
        )
        add(
            f"window of {WINDOW} at the {where}, with uses in 24 h and flags (window.fetch)",
            lambda request=request: fetch(service, request),
            "what the app reads",
            base,
        )
    page = service.list_keys(KeyQuery(limit=WINDOW)).keys
    add(
        "uses in 24 h and flags alone, 100 keys (key_activity)",
        lambda: service.key_activity([key.id for key in page]),
    )
    add(
        "first 100 sorted by uses in 24 h (the used keys sorted, then the rest)",
        lambda: service.list_keys(KeyQuery(sort="uses_24h", limit=WINDOW)),
    )
    add("header: keys in heavy use / with wrong secrets (usage_flags)", service.usage_flags)
    add("is:heavy, first 100", lambda: service.list_keys(KeyQuery(search="is:heavy")))
    add(f"is:heavy, count to {COUNT_CAP:,}", lambda: service.count_keys("is:heavy", cap=COUNT_CAP))
    add("one key's report (key_usage, the details screen)", lambda: service.key_usage(heavy))

    now = service.now()

    def flush() -> None:
        buffer = HourlyUsage()
        for key_id in ids[:10_000]:
            buffer.add(key_id, VALID, "10.0.0.1", now.timestamp())
        assert buffer.flush(service.db, now, "200ms")

    add(f"a flush of {min(10_000, len(ids)):,} buckets (upserts)", flush)
    log(f"heavy now: {service.usage_flags()}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench usage", description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--used", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from keytui.core.service import KeyService

    cached, _ = build_sqlite(args.keys, log)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="keytui-bench-usage-") as work:
        copy = Path(work) / "usage.db"
        shutil.copyfile(cached, copy)
        service = KeyService.open(str(copy), face="tui")
        try:
            ids, heavy = seed_usage(service, args.used, log)
            rows += measure(service, ids, heavy, args.repeat, log)
        finally:
            service.close()
    print(
        f"\nkeytui usage benchmark, {args.keys:,} keys ({args.used:,} used), "
        f"SQLite, medians of {args.repeat}\n"
    )
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))
    return 0
