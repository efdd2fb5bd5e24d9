"""keytui's benchmark: one command that builds its databases, measures keytui and, in the same
run, the baselines it is compared with, and prints figure, target, ratio and pass/fail (+ JSON).

    python -m bench [--keys 1000000] [--json PATH] [--fast]

Run from the repository root (``./dev bench`` does). Databases are built once into bench/out/
(git-ignored) and reused while they hold the asked-for number of keys at the current schema.

Screen timings come from keytui running in tmux: from the keystroke to the repainted screen.
Figures are medians. Nothing here asserts: a missed target is printed as "MISS".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .terminal import Terminal

# $KEYTUI_BENCH_OUT and $KEYTUI_BENCH_POSTGRES_DB: where the test of the bench builds its own
# databases, never sharing (or racing for) the cached ones.
OUT = Path(os.environ.get("KEYTUI_BENCH_OUT") or Path(__file__).resolve().parent / "out")
HERE = Path(__file__).resolve().parent.parent
KEYTUI = [sys.executable, "-m", "keytui.cli"]
DEBOUNCE = 0.15  # the main screen's SEARCH_DELAY: a search waits this long for the next key


@dataclass
class Row:
    figure: str
    value: float | None
    unit: str
    target: str
    ratio: float | None = None  # value / what the target compares it with
    passed: bool | None = None  # None: a reference figure, no target of its own
    note: str = ""
    samples: list[float] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_ms(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.0f}" for v in values) + " ms"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# -- databases ------------------------------------------------------------------------------


def build_sqlite(keys: int, log) -> tuple[Path, float | None]:
    """bench/out/keys-N.db, seeded with ``seed_demo`` once and kept (bench/out is git-ignored)."""
    from keytui.core.db import HEAD_REVISION, current_revision
    from keytui.core.demo import seed_demo
    from keytui.core.service import KeyService

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"keys-{keys}.db"
    if path.exists():
        service = KeyService.open(str(path), face="tui")  # upgrades an older cached database
        try:
            if service.counts().total == keys and current_revision(service.db) == HEAD_REVISION:
                return path, None
        finally:
            service.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    log(f"building {path.name} ({keys:,} demo keys)...")
    start = time.perf_counter()
    service = KeyService.open(str(path), face="tui")
    seed_demo(service, keys)
    service.close()
    return path, time.perf_counter() - start


def work_copy(path: Path) -> Path:
    """A copy to change (revoke, verify), so the cached database stays as built."""
    copy = OUT / f"work-{path.name}"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    return copy


def postgres_url(keys: int, log) -> str | None:
    """A PostgreSQL database with ``keys`` demo keys, kept between runs; None without a server
    ($KEYTUI_BENCH_POSTGRES_URL, else $KEYTUI_TEST_POSTGRES_URL)."""
    server = os.environ.get("KEYTUI_BENCH_POSTGRES_URL") or os.environ.get(
        "KEYTUI_TEST_POSTGRES_URL"
    )
    if not server:
        return None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from keytui.core.demo import seed_demo
    from keytui.core.service import KeyService

    url = make_url(server).set(drivername="postgresql+psycopg")
    name = os.environ.get("KEYTUI_BENCH_POSTGRES_DB") or f"keytui_bench_{keys}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    # Kept between runs and shared by every checkout on the server: one run at a time checks
    # and builds it (a session lock on the server, held until the database is ready), so two
    # runs never make, drop or fill it at once.
    guard = admin.connect()
    guard.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": name})
    with admin.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    target = url.set(database=name).render_as_string(hide_password=False)
    service = KeyService.open(target, face="tui")
    try:
        if service.counts().total != keys:
            service.close()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            log(f"building PostgreSQL {name} ({keys:,} demo keys)...")
            service = KeyService.open(target, face="tui")
            seed_demo(service, keys)
            with service.db.engine.connect() as connection:
                connection.execute(text("ANALYZE keys"))
                connection.commit()
    finally:
        service.close()
        guard.close()  # (the lock goes with its session)
        admin.dispose()
    return target


# -- the screen -----------------------------------------------------------------------------


INFO_TOP = r"Keys 1–\d+ of "


def first_paint(db: Path, repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        with Terminal(f"paint{i}", [*KEYTUI, "--db", str(db)]) as term:
            out.append(term.wait(INFO_TOP))
    return out


def bare_first_paint(repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        with Terminal(f"bare{i}", [sys.executable, "-m", "bench.bare_app"]) as term:
            out.append(term.wait(r"row 0 name", r"row 20 name"))
    return out


def search_rows(title: str, measured: dict, terms: dict[str, tuple[str, str]]) -> list[Row]:
    """The search figures of a session: after the debounce, the raw one and the count beside."""
    rows = []
    for label, raws in measured["search_raw"].items():
        raw = median(raws)
        value = max(0.0, raw - DEBOUNCE)
        counted = measured["search_counted"].get(label)
        note = f"raw {raw * 1000:.0f} ms incl. debounce"
        if counted:
            note += f"; count shown at {(median(counted) - DEBOUNCE) * 1000:.0f} ms"
        rows.append(
            Row(
                f"{title}: {label} ({terms[label][0]!r})",
                value,
                "s",
                "<= 100 ms after the 150 ms debounce",
                value / 0.1,
                value <= 0.1,
                note=note,
                samples=raws,
            )
        )
    return rows


def session(
    db: Path | str, terms: dict[str, tuple[str, str]], repeat: int, log, *, with_moves: bool = True
) -> dict[str, object]:
    """One keytui in tmux: search keystrokes, G / page down / g, and its memory."""
    from keytui.core.service import KeyQuery, KeyService

    service = KeyService.open(str(db), face="tui")
    newest = service.list_keys(KeyQuery(limit=1)).keys[0].id
    oldest = service.list_keys(KeyQuery(limit=1, descending=False)).keys[0].id
    total = service.count_keys()
    service.close()
    result: dict[str, object] = {"search": {}, "search_raw": {}, "search_counted": {}}
    with Terminal("session", [*KEYTUI, "--db", str(db)]) as term:
        term.wait(INFO_TOP)
        result["rss_start_mb"] = term.rss_mb()
        top = (rf"Keys 1–\d+ of {total:,}", newest)
        for label, (term_text, first) in terms.items():
            raws, counts = [], []
            for _ in range(repeat):
                term.keys("Escape")
                term.wait(*top)
                term.keys("/")
                # Type once the search box has the focus (the footer drops the table's keys),
                # as a person does: keys sent 3 ms after "/" would wait behind that repaint.
                # (Not the first change of the screen: on a loaded machine that can be
                # another repaint, and the search then went to the table.)
                term.wait_gone(r"\? Help")
                since = term.type(term_text)
                expect = [r"No keys match"] if not first else [first, r"matching"]
                raws.append(term.wait(*expect, since=since))
                if first:  # the count of matches follows the window (see _count_matches)
                    counts.append(
                        term.wait(r"of [\d,]+ matching|more than [\d,]+ matching", since=since)
                    )
            result["search_raw"][label] = raws
            result["search_counted"][label] = counts
            log(f"  search {label!r}: {median(raws) * 1000:.0f} ms keystroke to screen")
        term.keys("Escape")
        term.wait(*top)
        moves: dict[str, list[float]] = {"G": [], "page down": [], "g": []}
        for _ in range(repeat if with_moves else 0):
            since = term.keys("G")
            moves["G"].append(term.wait(oldest, rf"of {total:,}", since=since))
            since = term.keys("g")
            moves["g"].append(term.wait(*top, since=since))
            # page down until the window moves (the press that asks the database)
            for _press in range(20):
                before = term.screen()
                since = term.keys("PageDown")
                try:
                    took = term.wait_change(before, timeout=2.0, since=since)
                except TimeoutError:
                    continue
                if "Keys 1–" not in term.screen():
                    took = term.wait(r"Keys \d+–\d+ of", since=since)
                    moves["page down"].append(took)
                    break
            since = term.keys("g")
            term.wait(*top, since=since)
        result["moves"] = moves
        time.sleep(0.5)
        result["rss_mb"] = term.rss_mb()
    return result


# -- in-process figures ---------------------------------------------------------------------


def service_figures(db: Path, keys: int, fast: bool, log) -> dict[str, object]:
    from argon2 import PasswordHasher

    from keytui.core.hashing import DEFAULT_HASHER, hash_secret
    from keytui.core.service import KeyQuery, KeyService

    copy = work_copy(db)
    # warm=False: this row measures the read-through path (the warm one: bench/warm.py)
    service = KeyService.open(str(copy), face="api", warm=False)
    out: dict[str, object] = {}
    # Three revokes of each size, of different active keys (medians, as every figure here).
    rounds = 1 if fast else 3
    active = [
        k.id for k in service.list_keys(KeyQuery(status="active", limit=11_000 * rounds)).keys
    ]
    big = min(10_000, len(active) // rounds - 1_000)
    batches = [active[i::rounds] for i in range(rounds)]
    os.sync()  # the copy's writes reach the disk first, not during the revokes' commits
    out["revoke_1000"] = [timed(lambda b=b: service.revoke_keys(b[:1_000]), 1)[0] for b in batches]
    out["revoke_10000"] = [
        timed(lambda b=b: service.revoke_keys(b[1_000 : 1_000 + big]), 1)[0] for b in batches
    ]
    out["revoke_10000_n"] = big
    log(f"  revoke 1,000: {fmt_ms(out['revoke_1000'])}; {big:,}: {fmt_ms(out['revoke_10000'])}")
    # verify: a real argon2id key (OWASP's minimum, as keytui stores them)
    if "bench" not in {user.login for user in service.list_users()}:
        service.add_user("bench", "developer")  # an owner with no demo keys, under the limit
    fresh = [service.create_key(f"bench verify {i}", owner="bench", expires=None) for i in range(8)]
    hasher: PasswordHasher = DEFAULT_HASHER
    stored = hash_secret(fresh[0].secret)
    argon = timed(lambda: hasher.verify(stored, fresh[0].secret), 7)
    # A running verifier (another service, as another process) meets secrets it has never
    # seen: the first call of the process warms it up and is not counted; each of the rest is
    # a new secret, so each costs one argon2 verify plus keytui's work around it.
    verifier = KeyService.open(str(copy), face="api")
    assert verifier.verify(fresh[-1].secret).valid
    new = [timed(lambda s=issued.secret: verifier.verify(s), 1)[0] for issued in fresh[:-1]]
    verifier.close()
    out["argon2_verify"] = argon
    out["verify_new"] = new
    secret = fresh[0].secret
    assert service.verify(secret).valid
    duration = 0.5 if fast else 2.0
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration:
        service.verify(secret)
        count += 1
    out["verify_cached_per_s"] = count / (time.perf_counter() - start)
    log(
        f"  verify: cached {out['verify_cached_per_s']:,.0f}/s, new {median(new) * 1000:.1f} ms, "
        f"argon2 {median(argon) * 1000:.1f} ms"
    )
    service.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return out


def raw_like(db: Path, term: str, repeat: int) -> list[float]:
    """The baseline: SQLite's own LIKE over name, ID and owner, newest first, one page."""
    connection = sqlite3.connect(db)
    sql = (
        "SELECT * FROM keys WHERE name LIKE ?1 OR key_id LIKE ?1 OR owner LIKE ?1 "
        "ORDER BY pk DESC LIMIT 101"
    )
    pattern = f"%{term}%"
    samples = timed(lambda: connection.execute(sql, (pattern,)).fetchall(), repeat)
    connection.close()
    return samples


def postgres_search(url: str, terms: dict[str, tuple[str, str]], repeat: int) -> dict:
    from keytui.core.service import KeyQuery, KeyService

    service = KeyService.open(url, face="tui")
    out = {}
    for label, (text, _first) in terms.items():

        def search(text: str = text) -> None:
            service.list_keys(KeyQuery(search=text, limit=100))
            service.count_keys(text, cap=10_000)

        search()
        out[label] = timed(search, repeat)
    service.close()
    return out


# -- the run --------------------------------------------------------------------------------


def pick_terms(db: Path) -> dict[str, tuple[str, str]]:
    """Search terms of every kind, and the first key each should show (empty: none)."""
    from keytui.core.service import KeyQuery, KeyService

    service = KeyService.open(str(db), face="tui")
    sample = service.list_keys(KeyQuery(limit=1, offset=service.count_keys() // 2)).keys[0]
    terms = {
        "1 char, common": "a",
        "2 chars, rare": "q7",
        "common word": "prod",
        "rare (an ID)": sample.id[:6],
        "no match": "zzqxj",
        "1 char, no match": "é",
    }
    out = {}
    for label, text in terms.items():
        page = service.list_keys(KeyQuery(search=text, limit=1))
        out[label] = (text, page.keys[0].id if page.keys else "")
    service.close()
    return out


def run(keys: int, fast: bool, log) -> tuple[list[Row], dict]:
    repeat = 1 if fast else 5
    rows: list[Row] = []
    big, built = build_sqlite(keys, log)
    small, _ = build_sqlite(100, log)
    if built is not None:
        rows.append(
            Row(
                f"build {keys:,} demo keys (seed_demo)",
                built,
                "s",
                "< 60 s",
                built / 60,
                built < 60,
            )
        )
    terms = pick_terms(big)

    log("first paint...")
    paint_big = first_paint(big, repeat)
    paint_small = first_paint(small, repeat)
    paint_bare = bare_first_paint(repeat)
    pb, ps = median(paint_big), median(paint_small)
    rows.append(
        Row(
            f"first paint, {keys:,} keys",
            pb,
            "s",
            "<= 1.3x 100 keys, < 0.6 s",
            pb / ps,
            pb <= 1.3 * ps and pb < 0.6,
            samples=paint_big,
        )
    )
    rows.append(Row("first paint, 100 keys", ps, "s", "(reference)", samples=paint_small))
    rows.append(
        Row(
            "baseline: bare Textual app, 100-row DataTable",
            median(paint_bare),
            "s",
            "(reference)",
            samples=paint_bare,
        )
    )

    log("screen session (search, G, page down, g)...")
    big_session = session(big, terms, repeat, log)
    small_session = session(small, pick_terms(small), 1, log)
    rows.extend(search_rows("search keystroke -> repaint", big_session, terms))
    for label, samples in big_session["moves"].items():
        if not samples:
            rows.append(Row(label, None, "s", "<= 100 ms", passed=False, note="not measured"))
            continue
        value = median(samples)
        rows.append(
            Row(
                f"{label} in the table",
                value,
                "s",
                "<= 100 ms",
                value / 0.1,
                value <= 0.1,
                samples=samples,
            )
        )
    rss, rss_small = big_session["rss_mb"], small_session["rss_mb"]
    limit = 1.2 * rss_small + 30
    rows.append(
        Row(
            f"memory (RSS) of the app, {keys:,} keys",
            rss,
            "MiB",
            "<= 1.2x 100 keys + 30 MB",
            rss / limit,
            rss <= limit,
            note=f"100 keys: {rss_small:.0f} MiB; at first paint {big_session['rss_start_mb']:.0f}",
        )
    )

    log("service figures (revoke, verify)...")
    figures = service_figures(big, keys, fast, log)
    r1, r10 = median(figures["revoke_1000"]), median(figures["revoke_10000"])
    rows.append(
        Row(
            f"bulk revoke {figures['revoke_10000_n']:,} keys, events included",
            r10,
            "s",
            "<= 1 s",
            r10 / 1.0,
            r10 <= 1.0,
            samples=figures["revoke_10000"],
        )
    )
    rows.append(
        Row(
            "bulk revoke 1,000 keys, events included",
            r1,
            "s",
            "<= 150 ms",
            r1 / 0.15,
            r1 <= 0.15,
            samples=figures["revoke_1000"],
        )
    )
    cached = figures["verify_cached_per_s"]
    rows.append(
        Row(
            "verify, secret seen before, read through (status re-read; warm: ./dev bench warm)",
            cached,
            "/s",
            ">= 5,000/s",
            cached / 5000,
            cached >= 5000,
        )
    )
    argon, new = median(figures["argon2_verify"]), median(figures["verify_new"])
    rows.append(
        Row(
            "verify, new secret",
            new,
            "s",
            "<= 1.2x one argon2 verify",
            new / argon,
            new <= 1.2 * argon,
            samples=figures["verify_new"],
        )
    )
    rows.append(
        Row(
            "baseline: one argon2id verify (t=2, m=19 MiB)",
            argon,
            "s",
            "(reference)",
            samples=figures["argon2_verify"],
        )
    )

    rare = terms["rare (an ID)"][0]
    like = raw_like(big, rare, 3)
    rows.append(
        Row(
            f"baseline: raw SQLite LIKE, rare term, {keys:,} keys",
            median(like),
            "s",
            "(reference)",
            samples=like,
        )
    )

    log("PostgreSQL...")
    url = postgres_url(keys, log)
    if url is None:
        rows.append(
            Row(
                "the same search on PostgreSQL",
                None,
                "s",
                "<= 100 ms",
                passed=None,
                note="no server: set KEYTUI_BENCH_POSTGRES_URL",
            )
        )
    else:
        # The same searches, typed into keytui running on the PostgreSQL copy of the keys.
        pg_terms = {
            k: v
            for k, v in pick_terms(url).items()
            if k in ("common word", "rare (an ID)", "no match")
        }
        log("PostgreSQL: screen session...")
        pg_session = session(url, pg_terms, repeat, log, with_moves=False)
        rows.extend(search_rows("search on PostgreSQL, keystroke -> repaint", pg_session, pg_terms))
        found = postgres_search(url, pg_terms, repeat)
        for label, samples in found.items():
            rows.append(
                Row(
                    f"PostgreSQL in process: list + capped count, {label}",
                    median(samples),
                    "s",
                    "(reference)",
                    samples=samples,
                )
            )
    from .pg_revoke import TARGET_S
    from .pg_revoke import measure as pg_revoke

    log("PostgreSQL: bulk revoke after an aborted one...")
    bare_revokes: list[float] = []
    revokes = pg_revoke(10_000, repeat, log, baselines=bare_revokes)
    rows.append(
        Row(
            "bulk revoke of 10,000 keys on PostgreSQL, right after an aborted one",
            median(revokes) if revokes else None,
            "s",
            f"<= {TARGET_S:.0f} s",
            ratio=median(revokes) / TARGET_S if revokes else None,
            passed=median(revokes) <= TARGET_S if revokes else None,
            note="" if revokes else "no server: set KEYTUI_BENCH_POSTGRES_URL",
            samples=revokes or [],
        )
    )
    if revokes and bare_revokes:
        rows.append(
            Row(
                "baseline: a bare UPDATE of those keys + COPY of 10,000 events",
                median(bare_revokes),
                "s",
                "(reference)",
                ratio=median(revokes) / median(bare_revokes),
                samples=bare_revokes,
            )
        )
    meta = {
        "keys": keys,
        "fast": fast,
        "machine": machine(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    return rows, meta


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load {os.getloadavg()[0]:.1f} at the start"
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}{load}"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} {unit}"


def table(rows: list[Row]) -> str:
    lines = ["| figure | measured | target | ratio | result |", "|---|---:|---|---:|---|"]
    for row in rows:
        result = {True: "pass", False: "MISS", None: ""}[row.passed]
        note = f" ({row.note})" if row.note else ""
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        lines.append(
            f"| {row.figure}{note} | {fmt(row.value, row.unit)} | {row.target} | "
            f"{ratio} | {result} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # keytui serve under wrk, through nginx and direct (bench/serve.py)
        from .serve import main as serve_main

        return serve_main(argv[1:])
    if argv[:1] == ["scan"]:  # keytui scan over ~200 MB of text (bench/scan.py)
        from .scan import main as scan_main

        return scan_main(argv[1:])
    if argv[:1] == ["pg-revoke"]:  # bulk revoke on PostgreSQL after an aborted one, alone
        from .pg_revoke import main as pg_revoke_main

        return pg_revoke_main(argv[1:])
    if argv[:1] == ["filter"]:  # the filter language on N keys, alone (bench/filter.py)
        from .filter import main as filter_main

        return filter_main(argv[1:])
    if argv[:1] == ["usage"]:  # uses in 24 h, heavy use, on N keys (bench/usage.py)
        from .usage import main as usage_main

        return usage_main(argv[1:])
    if argv[:1] == ["warm"]:  # the warm verify path, propagation, floods (bench/warm.py)
        from .warm import main as warm_main

        return warm_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="one repetition, not five: checks that every figure can be made",
    )
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("bench: tmux is needed for the screen timings", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows, meta = run(args.keys, args.fast, log)
    print(f"\nkeytui benchmark, {meta['keys']:,} keys, {meta['at']}")
    print(f"machine: {meta['machine']}; Python {meta['python']}, SQLite {meta['sqlite']}\n")
    print(table(rows))
    missed = [row.figure for row in rows if row.passed is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
