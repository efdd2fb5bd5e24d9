"""The filter language on a big table (issue 12), alone.

    python -m bench filter [--keys 1000000] [--repeat 5] [--json PATH]

On the cached demo database of ``--keys`` keys (bench/out/keys-N.db, as the main bench builds
it) and, with $KEYTUI_BENCH_POSTGRES_URL (else $KEYTUI_TEST_POSTGRES_URL), on its PostgreSQL
copy: what the main screen asks for a filter typed into the search box, in process: its first
window (``list_keys``, 100 keys, newest first) and its capped count (``count_keys``, up to
COUNT_CAP), for ``owner:X status:active``, ``unused:45d``, both together and a few more,
beside the plain search for a rare and a common term in the same run (the search's target:
100 ms; on a loaded machine, compare with the plain search's figures). Each query's plan is
printed: which index it reads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from .__main__ import Row, build_sqlite, postgres_url, table, timed

TARGET_MS = 100.0


def filters(service: Any) -> dict[str, str]:
    """The filters measured, with a real owner and ID of this database."""
    from keytui.core.service import KeyQuery

    middle = service.list_keys(KeyQuery(limit=1, offset=service.count_keys() // 2)).keys[0]
    return {
        "plain search, rare (an ID)": middle.id[:6],
        "plain search, common word": "prod",
        "owner:X status:active": f"owner:{middle.owner} status:active",
        "unused:45d": "unused:45d",
        "owner:X unused:45d status:active": f"owner:{middle.owner} unused:45d status:active",
        "name: and created:>30d": 'name:"billing" created:>30d',
        "-status:revoked uses:>1000": "-status:revoked uses:>1000",
    }


def plan(service: Any, text: str) -> str:
    """The list query's plan, one line: the indexes it reads."""
    from sqlalchemy import select
    from sqlalchemy import text as sql

    from keytui.core.models import Key
    from keytui.core.search import key_order

    now = service.now()
    with service.db.read() as session:
        statement = (
            select(Key)
            .where(*service._find.filters(text, None, None, now, session))
            .order_by(*key_order("created_at", True, now))
            .limit(101)
        )
        compiled = statement.compile(
            dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
        )
        explain = "EXPLAIN QUERY PLAN " if service.db.is_sqlite else "EXPLAIN "
        rows = session.execute(sql(explain + str(compiled))).all()
    lines = [str(row[-1]).strip() for row in rows]
    return "; ".join(line for line in lines if line)[:300]


def measure(service: Any, label: str, repeat: int, log) -> list[Row]:
    from keytui.core.service import KeyQuery
    from keytui.tui.window import COUNT_CAP, WINDOW

    rows = []
    for name, text in filters(service).items():

        def first(text: str = text) -> None:
            service.list_keys(KeyQuery(search=text, limit=WINDOW))

        def count(text: str = text) -> None:
            service.count_keys(text, cap=COUNT_CAP)

        first()  # warm the cache, as a typed search finds it
        count()
        for what, call in (("first 100", first), (f"count to {COUNT_CAP:,}", count)):
            samples = timed(call, repeat)
            value = statistics.median(samples)
            rows.append(
                Row(
                    f"{label}: {name}, {what}",
                    value * 1000,
                    "ms",
                    f"<= {TARGET_MS:.0f} ms",
                    value * 1000 / TARGET_MS,
                    value * 1000 <= TARGET_MS,
                    text,
                    samples,
                )
            )
        log(f"{label} {text!r}: plan {plan(service, text)}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench filter", description=__doc__)
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from keytui.core.service import KeyService

    db, _ = build_sqlite(args.keys, log)
    rows: list[Row] = []
    service = KeyService.open(str(db), face="tui")
    try:
        rows += measure(service, "SQLite", args.repeat, log)
    finally:
        service.close()
    url = postgres_url(args.keys, log)
    if url is None:
        rows.append(
            Row("PostgreSQL", None, "ms", "-", note="no server: set KEYTUI_BENCH_POSTGRES_URL")
        )
    else:
        service = KeyService.open(url, face="tui")
        try:
            rows += measure(service, "PostgreSQL", args.repeat, log)
        finally:
            service.close()
    print(f"\nkeytui filter benchmark, {args.keys:,} keys, medians of {args.repeat}\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))
    return 0
