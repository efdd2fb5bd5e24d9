"""keytui serve under load: ``wrk`` through nginx (``auth_request``) and straight at keytui.

    python -m bench serve [--duration 5] [--rounds 2] [--connections 8] [--keys 1000]
                          [--json PATH]
    (./dev bench serve)

One run copies a SQLite database of N keys (made with the real argon2 parameters, once, into
bench/out), starts ``keytui serve`` with as many workers as cores and a reference endpoint
(``/reference``: 200 from the same uvicorn + Starlette + keytui middleware stack, with no
verify), and nginx in front of it, unprivileged, in a temporary directory. It warms every
worker (each verifies every key once with argon2, then from its cache), then measures, in the
same run:

- warm keys: wrk rotating the N secrets in ``x-api-key`` (a Lua script), through nginx
  (``auth_request`` -> keytui ``/auth``, then a static file) and straight at ``/auth``;
- garbage keys (malformed, answered without the database) the same two ways;
- the reference, the same two ways, sent the very requests of the warm run (the rotating
  script), so wrk's own work is the same; through nginx, ``auth_request`` asks ``/reference``
  instead of ``/auth`` and then serves the same static file, so nginx's work is the same too
  and the ratio is keytui's ``/auth`` against the same stack's bare 200;
- each of these ``--rounds`` times, alternated, so a change in the machine's load (it is
  shared) falls on all of them: rates over all rounds, p50 and p99 of the worst round;
- a revoke under load: while wrk drives warm keys through nginx, ``keytui keys revoke`` (the
  CLI) revokes one of them, and a separate client polls nginx with that key until it gets 401;
  the time from the CLI returning to that 401, over several trials.

Goals (issue 14): /auth serves at least half the reference's requests per second with p99
under 10 ms at that load, and a revoke reaches the gateway within 100 ms under it. Nothing
asserts; a missed goal prints MISS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from .__main__ import OUT, Row, machine, table

KEYTUI = Path(sys.executable).parent / "keytui"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk") or "/usr/bin/wrk"

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream keytui {{
        server {keytui};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {tmp}/www;

        location = /_keytui {{
            internal;
            proxy_pass http://keytui/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Real-IP $remote_addr;
        }}
        location /api/ {{
            auth_request /_keytui;
            auth_request_set $keytui_key_id $upstream_http_x_keytui_key_id;
            add_header X-Keytui-Key-Id $keytui_key_id;
            try_files /ok.txt =404;
        }}
        # The reference through nginx: the very same gateway work (a subrequest, then the
        # static file), asking /reference (200, no keytui) instead of /auth.
        location = /_reference {{
            internal;
            proxy_pass http://keytui/reference;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Real-IP $remote_addr;
        }}
        location /ref/ {{
            auth_request /_reference;
            try_files /ok.txt =404;
        }}
    }}
}}
"""

# Each wrk thread starts at its own place in the list and walks it, one key a request.
ROTATE_LUA = """
local keys = {}
for line in io.lines("%(keys)s") do keys[#keys + 1] = line end
local i = 0
local counter = 0
setup = function(thread)
    counter = counter + 1
    thread:set("offset", counter * 97)
end
init = function(args)
    i = (offset or 0) %% #keys
end
request = function()
    i = i + 1
    if i > #keys then i = 1 end
    return wrk.format("GET", nil, {["x-api-key"] = keys[i]})
end
%(done)s
"""
GARBAGE_LUA = """
wrk.headers["x-api-key"] = "kt_garbage-not-a-key"
%(done)s
"""
DONE_LUA = """
done = function(summary, latency, requests)
    io.write(string.format(
        "WRK {\\"requests\\": %d, \\"seconds\\": %f, \\"p50_us\\": %d, \\"p99_us\\": %d, "
        .. "\\"non2xx\\": %d, \\"socket_errors\\": %d}\\n",
        summary.requests, summary.duration / 1e6, latency:percentile(50),
        latency:percentile(99), summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition, what: str, deadline: float = 120.0):
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def build(tmp: Path, count: int, log) -> tuple[str, list[tuple[str, str]]]:
    """A database of ``count`` keys (real argon2 parameters) and their (ID, secret): a copy of
    bench/out/serve-N.db, made once (minutes on a loaded machine) and kept with its secrets in
    serve-N.keys (0600; throwaway keys); the run revokes some keys, so it works on a copy."""
    from concurrent.futures import ThreadPoolExecutor

    from keytui.core.service import KeyService

    kept, kept_keys = OUT / f"serve-{count}.db", OUT / f"serve-{count}.keys"
    if not (kept.exists() and kept_keys.exists()):
        OUT.mkdir(parents=True, exist_ok=True)
        building = OUT / f"serve-{count}.db.building"
        building.unlink(missing_ok=True)
        service = KeyService.open(str(building), face="api")
        service.update_settings(max_keys_per_user=1000)
        start = time.perf_counter()
        with ThreadPoolExecutor(os.cpu_count() or 2) as pool:  # argon2 releases the GIL
            issued = list(pool.map(lambda i: service.create_key(f"bench-{i:04d}"), range(count)))
        service.close()
        with contextlib.closing(sqlite3.connect(building)) as connection:  # all in one file
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log(f"  {count} keys made in {time.perf_counter() - start:.1f} s (kept in {kept})")
        kept_keys.touch(mode=0o600)
        kept_keys.write_text("".join(f"{i.key.id} {i.secret}\n" for i in issued))
        building.rename(kept)
    db = tmp / "serve-bench.db"
    db.touch(mode=0o600)
    shutil.copyfile(kept, db)
    keys = [line.split(" ", 1) for line in kept_keys.read_text().splitlines()]
    return str(db), [(key_id, secret) for key_id, secret in keys]


def wrk(url: str, script: Path, duration: float, connections: int) -> dict:
    result = subprocess.run(
        [
            WRK,
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{duration:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    for line in result.stdout.splitlines():
        if line.startswith("WRK "):
            figures = json.loads(line[4:])
            figures["rate"] = figures["requests"] / figures["seconds"]
            return figures
    raise RuntimeError(f"wrk said: {result.stdout}\n{result.stderr}")


def http_status(port: int, path: str, secret: str) -> int:
    """One request on a fresh connection, outside wrk's: the status line's code."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: bench\r\nx-api-key: {secret}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = sock.recv(64)
    return int(head.split(b" ", 2)[1])


def run(duration: float, rounds: int, connections: int, count: int, trials: int, log) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="keytui-serve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        log("serve bench: building the database")
        db, keys = build(tmp, count, log)
        keys_file = tmp / "keys.txt"
        keys_file.write_text("".join(secret + "\n" for _id, secret in keys))
        keys_file.chmod(0o600)
        # nginx's workers run as another user (www-data when started by root): they may
        # traverse the directory and read the static answer, nothing else (keys.txt is 0600).
        tmp.chmod(0o711)
        (tmp / "www").mkdir(mode=0o755)
        (tmp / "www" / "ok.txt").write_text("OK\n")
        (tmp / "www" / "ok.txt").chmod(0o644)
        rotate = tmp / "rotate.lua"
        rotate.write_text(ROTATE_LUA % {"keys": keys_file, "done": DONE_LUA})
        garbage = tmp / "garbage.lua"
        garbage.write_text(GARBAGE_LUA % {"done": DONE_LUA})

        from keytui.serve.options import ENV, ServeOptions
        from keytui.serve.runner import default_workers

        workers = default_workers()
        port = free_port()
        options = ServeOptions(
            db=db,
            port=port,
            workers=workers,
            trusted_proxies=("127.0.0.1/32",),
            reference_route=True,
        )
        env = {k: v for k, v in os.environ.items() if k != "KEYTUI_DATABASE_URL"}
        env[ENV] = options.to_env()
        err = (tmp / "serve.err").open("wb")
        serve = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from keytui.serve.options import ServeOptions\n"
                "from keytui.serve.runner import run\n"
                "run(ServeOptions.from_env())",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the access log: written, not kept
            stderr=err,
            env=env,
            start_new_session=True,
        )
        nginx = None
        try:
            wait_for(
                lambda: (
                    (tmp / "serve.err").read_text().count("Application startup complete") >= workers
                ),
                "keytui serve's workers",
            )
            nginx_port = free_port()
            conf = tmp / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, keytui=f"127.0.0.1:{port}", port=nginx_port))
            nginx = subprocess.Popen(
                [NGINX, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(lambda: _answers(nginx_port), "nginx")
            direct = f"http://127.0.0.1:{port}"
            gateway = f"http://127.0.0.1:{nginx_port}"

            log(f"  warming {workers} workers (every key once with argon2 in each)")
            start = time.perf_counter()
            # Until every worker has run argon2 once for every key, and then a pass sends
            # (almost) nothing to the thread pool. (A pass alone cannot tell: on a loaded
            # machine one may see so few requests, all waiting for argon2, that its share
            # sent to the pool rounds to nothing while most keys are still cold.)
            for _ in range(200):
                before = _figures(port)
                warm = wrk(direct + "/auth", rotate, 5, max(connections, 8))
                after = _figures(port)
                pooled = after["thread"] - before["thread"]
                log(f"    {after['argon2']:,.0f} of {workers * count:,} argon2 runs")
                if after["argon2"] >= workers * count and pooled <= warm["requests"] * 0.001:
                    break
            log(f"  warm after {time.perf_counter() - start:.0f} s")

            # The reference gets the same requests as the warm run (the rotating script, key
            # header and all, which it ignores), so wrk does the same work for both. Rounds
            # alternate the runs, so a change in the machine's load falls on all of them.
            measured: dict[str, dict] = {}
            before = _figures(port)
            for round_ in range(rounds):
                for name, url, script in (
                    ("reference, direct", direct + "/reference", rotate),
                    ("warm keys, direct", direct + "/auth", rotate),
                    ("garbage keys, direct", direct + "/auth", garbage),
                    ("reference, through nginx", gateway + "/ref/", rotate),
                    ("warm keys, through nginx", gateway + "/api/x", rotate),
                    ("garbage keys, through nginx", gateway + "/api/x", garbage),
                ):
                    log(f"  wrk, round {round_ + 1} of {rounds}: {name}")
                    _add(measured, name, wrk(url, script, duration, connections))
            rows += _rows(measured, connections)
            rows.append(Row("during those runs", None, "", "", note=_paths(before, _figures(port))))

            log(f"  revoke under load: {trials} trials")
            seen: list[float] = []
            for trial in range(trials):
                key_id, secret = keys[trial]
                load = threading.Thread(
                    target=wrk, args=(gateway + "/api/x", rotate, 4, connections)
                )
                load.start()
                time.sleep(1.0)  # let the load build up before the revoke
                subprocess.run(
                    [str(KEYTUI), "keys", "revoke", key_id, "--yes", "--db", db],
                    check=True,
                    capture_output=True,
                    env={k: v for k, v in env.items() if k != ENV},
                )
                returned = time.perf_counter()
                wait_for(
                    lambda secret=secret: http_status(nginx_port, "/api/x", secret) == 401,
                    "the revoke at the gateway",
                )
                seen.append(time.perf_counter() - returned)
                load.join()
            rows.append(
                Row(
                    f"revoke seen at nginx under load (CLI returned -> 401; max of {trials}, "
                    f"median {statistics.median(seen) * 1000:.1f} ms)",
                    max(seen),
                    "s",
                    "<= 100 ms",
                    ratio=max(seen) / 0.1,
                    passed=max(seen) <= 0.1,
                    samples=seen,
                )
            )
        finally:
            if nginx is not None:
                nginx.terminate()
                nginx.wait(timeout=60)
            serve.terminate()
            serve.wait(timeout=120)
            err.close()
    return rows


WATCHED = {
    "thread": 'keytui_verify_seconds_count{path="thread"}',
    "inline": 'keytui_verify_seconds_count{path="inline"}',
    "memory": 'keytui_verify_answers_total{source="memory"}',
    "database": 'keytui_verify_answers_total{source="database"}',
    "argon2": "keytui_verify_argon2_runs_total",
}


def _figures(port: int) -> dict[str, float]:
    """The server's verify figures so far, over every worker (from /metrics; each worker's
    last half second may be missing)."""
    time.sleep(0.6)  # PUSH_SECONDS: the other workers' latest figures are in
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        text = b""
        while chunk := sock.recv(65536):
            text += chunk
    figures = dict.fromkeys(WATCHED, 0.0)
    for line in text.decode().splitlines():
        for name, prefix in WATCHED.items():
            if line.startswith(prefix + " "):
                figures[name] = float(line.split()[-1])
    return figures


def _paths(before: dict[str, float], after: dict[str, float]) -> str:
    """How the measured runs' verifies were answered, for the table's note."""
    moved = {name: after[name] - before[name] for name in WATCHED}
    verifies = moved["thread"] + moved["inline"]
    answers = moved["memory"] + moved["database"]
    return (
        f"{verifies:,.0f} verifies: {moved['inline'] / max(verifies, 1):.1%} on the event loop, "
        f"{moved['memory'] / max(answers, 1):.1%} of key answers from memory, "
        f"{moved['argon2']:,.0f} argon2 runs"
    )


def _answers(port: int) -> bool:
    try:
        return http_status(port, "/ref/", "-") == 200
    except OSError:
        return False


def _add(measured: dict[str, dict], name: str, figures: dict) -> None:
    """One more round of ``name``: counts add up, the rate is over all rounds, and each
    latency percentile is the worst round's (wrk gives no histogram to merge)."""
    before = measured.get(name)
    if before is not None:
        for field in ("requests", "seconds", "non2xx", "socket_errors"):
            figures[field] += before[field]
        for field in ("p50_us", "p99_us"):
            figures[field] = max(figures[field], before[field])
        figures["rate"] = figures["requests"] / figures["seconds"]
    measured[name] = figures


def _rows(measured: dict[str, dict], connections: int) -> list[Row]:
    rows = []
    for where in ("direct", "through nginx"):
        reference = measured[f"reference, {where}"]
        p50, p99 = reference["p50_us"] / 1000, reference["p99_us"] / 1000
        rows.append(
            Row(
                f"reference endpoint (200, no keytui), {where}, {connections} connections "
                f"(p50 {p50:.2f} ms, p99 {p99:.2f} ms)",
                reference["rate"],
                "/s",
                "(reference)",
            )
        )
        for kind in ("warm keys", "garbage keys"):
            figures = measured[f"{kind}, {where}"]
            half = reference["rate"] / 2
            p99 = figures["p99_us"] / 1e6
            expected_non2xx = kind == "garbage keys"
            ok_codes = (figures["non2xx"] > 0) == expected_non2xx and figures["socket_errors"] == 0
            note = (
                f"p50 {figures['p50_us'] / 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; "
                f"{figures['non2xx']:,} non-2xx, {figures['socket_errors']} socket errors"
            )
            rows.append(
                Row(
                    f"/auth, {kind} (1,000 rotating)" if kind == "warm keys" else f"/auth, {kind}",
                    figures["rate"],
                    "/s",
                    ">= half the reference, p99 < 10 ms",
                    ratio=figures["rate"] / reference["rate"],
                    passed=figures["rate"] >= half and p99 < 0.010 and ok_codes,
                    note=f"{where}; {note}",
                )
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each row, alternated")
    parser.add_argument("--connections", type=int, default=8, help="wrk's open connections")
    parser.add_argument("--keys", type=int, default=1000, help="distinct warm keys (<= 1000)")
    parser.add_argument("--trials", type=int, default=5, help="revokes under load")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON too")
    args = parser.parse_args(argv)
    missing = [name for name, tool in (("wrk", WRK), ("nginx", NGINX)) if not os.path.exists(tool)]
    if missing:
        print(
            f"bench serve: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed "
            f"and not installed: `sudo apt-get install {' '.join(missing)}` (Debian's packages; "
            "CI's .ci/run does not run this bench, so nothing installs them for you)",
            file=sys.stderr,
        )
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    host = machine()
    rows = run(args.duration, args.rounds, args.connections, min(args.keys, 1000), args.trials, log)
    print(f"\nkeytui serve benchmark, {at}")
    print(f"machine: {host}; Python {sys.version.split()[0]}\n")
    print(table(rows))
    missed = [row.figure for row in rows if row.passed is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"at": at, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0
