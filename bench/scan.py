"""``keytui scan`` over ~200 MB of generated text, against baselines over the same bytes.

    python -m bench scan [--mb 200] [--repeat 3] [--json PATH]      (./dev bench scan)

The text is source-like lines (identifiers, strings, comments, ``kt_``-prefixed words and near
misses: the right shape with a wrong checksum), 1 MiB made once and repeated, with a few real
secrets of keys in a throwaway database written over it (some across 1 MiB chunk boundaries).
The file is read once first so every run reads it from the page cache. In the same run:

- ``keytui --db DB scan FILE`` (the real command, statuses looked up: the issue's >= 100 MB/s);
- the same with ``--no-db``, and ``scan_file`` in process (no process start);
- baselines: ``grep -c kt_`` and ``grep -cE`` with the shape (GNU grep), and a bare
  ``re.finditer`` of the shape over the bytes already in memory.

Medians of ``--repeat`` runs. Nothing asserts: a missed target prints MISS.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .__main__ import Row, machine, table

KEYTUI = Path(sys.executable).parent / "keytui"
MIB = 1 << 20
SECRETS = 12


def block(rng: random.Random) -> bytes:
    """1 MiB of source-like text with ``kt_`` words and near misses, no real secret."""
    from keytui.core import keyformat

    words = ["token", "api_key", "return", "self", "config", "kt_value", "kitten", "kt_", "def"]
    alnum = string.ascii_letters + string.digits
    lines: list[str] = []
    size = 0
    while size < MIB:
        kind = rng.random()
        if kind < 0.002:  # right shape, wrong checksum: must not be reported
            secret = keyformat.new_secret(keyformat.new_key_id())
            line = f'KEY = "{secret[:-1]}{"A" if secret[-1] != "A" else "B"}"'
        elif kind < 0.01:
            line = f"name = 'kt_{''.join(rng.choices(alnum, k=rng.randint(5, 60)))}'"
        else:
            line = "    " * rng.randint(0, 3) + " ".join(
                rng.choice(words)
                if rng.random() < 0.3
                else "".join(rng.choices(alnum, k=rng.randint(2, 12)))
                for _ in range(rng.randint(2, 14))
            )
        lines.append(line)
        size += len(line) + 1
    return ("\n".join(lines) + "\n").encode()[:MIB]


def make_input(path: Path, megabytes: int, secrets: list[str], rng: random.Random) -> None:
    data = bytearray(block(rng) * megabytes)
    for index, secret in enumerate(secrets):
        if index % 3 == 0:  # across a chunk boundary of the scanner's 1 MiB reads
            at = rng.randrange(1, megabytes) * MIB - len(secret) // 2
        else:
            at = rng.randrange(0, len(data) - 200)
        text = f"\nsecret: {secret}\n".encode()
        data[at : at + len(text)] = text
    path.write_bytes(data)


def timed_run(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, CPU time (user + system, of the child) and the result of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu, result


def run(megabytes: int, repeat: int, log) -> tuple[list[Row], dict]:
    from keytui.core import keyformat
    from keytui.core.scan import scan_file
    from keytui.core.service import KeyService

    rng = random.Random(12)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="keytui-bench-scan-") as tmp:
        db = Path(tmp) / "keys.db"
        log("keys...")
        service = KeyService.open(str(db), face="cli")
        secrets = [service.create_key(f"bench {i}", expires="never").secret for i in range(3)]
        service.revoke_keys([keyformat.key_id_of(secrets[0]) or ""])
        service.close()
        # Real secrets of keys in the database, and some of keys it lacks.
        secrets += [keyformat.new_secret(keyformat.new_key_id()) for _ in range(SECRETS - 3)]
        path = Path(tmp) / "text.txt"
        log(f"{megabytes} MiB of text...")
        make_input(path, megabytes, secrets, rng)
        size = path.stat().st_size
        data = path.read_bytes()  # also warms the page cache
        mb = size / 1e6

        def rate(samples: list[float]) -> float:
            return mb / statistics.median(samples)

        found = {}
        log("keytui scan...")
        for label, extra in (("with the database", []), ("--no-db", ["--no-db"])):
            samples, cpu = [], []
            for _ in range(repeat):
                seconds, used, result = timed_run(
                    [str(KEYTUI), "--db", str(db), "scan", *extra, "--json", str(path)]
                )
                samples.append(seconds)
                cpu.append(used)
            found[label] = len(json.loads(result.stdout)["findings"])
            value = rate(samples)
            rows.append(
                Row(
                    f"keytui scan {label}, {mb:,.0f} MB, process included "
                    f"({found[label]} of {SECRETS} secrets found)",
                    value,
                    "MB/s",
                    ">= 100 MB/s",
                    value / 100,
                    value >= 100 and found[label] == SECRETS,
                    note=f"by its CPU time: {rate(cpu):,.0f} MB/s",
                    samples=samples,
                )
            )
        samples, cpu = [], []
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            in_process = scan_file(path, str(path)) or []
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        rows.append(
            Row(
                f"scan_file in process ({len(in_process)} found)",
                rate(samples),
                "MB/s",
                "(reference)",
                note=f"by its CPU time: {rate(cpu):,.0f} MB/s",
                samples=samples,
            )
        )
        shape = rb"kt_[0-9a-z]{10}_[0-9A-Za-z]{38}"
        grep = shutil.which("grep")
        if grep:
            for label, command in (
                ("grep -c kt_", [grep, "-c", "kt_", str(path)]),
                ("grep -cE (the shape)", [grep, "-cE", shape.decode(), str(path)]),
            ):
                runs = [timed_run(command) for _ in range(repeat)]
                samples = [wall for wall, _, _ in runs]
                rows.append(
                    Row(
                        f"baseline: {label}",
                        rate(samples),
                        "MB/s",
                        "(reference)",
                        note=f"by its CPU time: {rate([used for _, used, _ in runs]):,.0f} MB/s",
                        samples=samples,
                    )
                )
        pattern = re.compile(shape)
        samples, cpu = [], []
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            count = sum(1 for _ in pattern.finditer(data))
            samples.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        rows.append(
            Row(
                f"baseline: bare re.finditer of the shape, in memory ({count} matches "
                "incl. near misses)",
                rate(samples),
                "MB/s",
                "(reference)",
                note=f"by its CPU time: {rate(cpu):,.0f} MB/s",
                samples=samples,
            )
        )
    meta = {
        "megabytes": mb,
        "machine": machine(),
        "python": sys.version.split()[0],
        "at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    return rows, meta


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench scan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--mb", type=int, default=200, help="MiB of text (default 200)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    rows, meta = run(args.mb, args.repeat, log)
    print(f"\nkeytui scan benchmark, {meta['megabytes']:,.0f} MB, {meta['at']}")
    print(f"machine: {meta['machine']}; Python {meta['python']}\n")
    print(table(rows))
    missed = [row.figure for row in rows if row.passed is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0
