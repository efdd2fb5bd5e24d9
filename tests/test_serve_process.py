"""``keytui serve`` as a real process: workers that add their metrics up, an access log with key
IDs and never a secret, raw HTTP garbage answered 400, a graceful SIGTERM that finishes the
request in flight and writes every usage count (SQLite and PostgreSQL), and bad usage as one
line."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from keytui.core.identity import current_login

from .serving import KEYTUI, ServeProcess, child_env, wait_for

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    servers: list[ServeProcess] = []
    yield servers
    for server in servers:
        server.kill()


def raw(server: ServeProcess, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def test_serve_flushes_usage_and_finishes_in_flight_on_sigterm(
    make_service, db_url, tmp_path, started
):
    admin = make_service(current_login())  # the login keytui serve runs as: an admin
    issued = admin.create_key("svc")
    server = ServeProcess(tmp_path, db_url, "--log-level", "debug", workers=2)
    started.append(server)
    verifies = 12
    for _ in range(verifies):  # a new connection each: the kernel spreads them over workers
        response = httpx.get(f"{server.url}/auth", headers={"x-api-key": issued.secret})
        assert response.headers["x-keytui-code"] == "VALID"
    # Whichever worker answers the scrape counts every worker's verifies (each pushes its
    # figures within half a second).
    total = f'keytui_verifications_total{{code="VALID",endpoint="auth"}} {verifies}.0'
    wait_for(lambda: total in httpx.get(f"{server.url}/metrics").text, "every worker's figures")

    # A request in flight: its headers and half its body are in when SIGTERM arrives.
    body = json.dumps({"key": issued.secret}).encode()
    with socket.create_connection((server.host, server.port), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/keys/verify HTTP/1.1\r\nHost: keytui\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        wait_for(
            lambda: 'started "POST /v1/keys/verify"' in server.stderr(),
            "the request to reach the app",
        )
        server.process.send_signal(signal.SIGTERM)
        wait_for(
            lambda: "Waiting for connections to close" in server.stderr(),
            "the server to wait for the request in flight",
        )
        sock.sendall(body[10:])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == "VALID"
    assert server.stop() == 0
    assert admin.get_key(issued.key.id).use_count == verifies + 1

    log = server.stdout()
    assert log.count(issued.key.id) == verifies + 1  # one access line per verify
    assert issued.secret.split("_", 2)[2] not in log + server.stderr()
    assert "Traceback" not in server.stderr()


def test_raw_http_garbage_gets_400_or_431_never_a_traceback(
    make_sqlite_service, sqlite_url, tmp_path, started
):
    admin = make_sqlite_service(current_login())
    issued = admin.create_key("svc")
    server = ServeProcess(tmp_path, sqlite_url)
    started.append(server)
    assert raw(server, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(server, b"GET /auth HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n").startswith(
        b"HTTP/1.1 400"
    )
    huge = b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n"
    assert raw(server, huge).startswith(b"HTTP/1.1 431")
    long_body = b"POST /v1/keys/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{"
    assert raw(server, long_body).startswith(b"HTTP/1.1 413")
    latin = b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Api-Key: \xff\xfe\r\n\r\n"
    assert raw(server, latin).startswith(b"HTTP/1.1 401")
    # Still serving, and nothing went wrong inside.
    response = httpx.get(f"{server.url}/auth", headers={"x-api-key": issued.secret})
    assert response.status_code == 200
    assert server.stop() == 0
    assert "Traceback" not in server.stderr() and "ERROR" not in server.stderr()


def test_forwarding_headers_from_the_same_machine_are_keytuis_to_read_not_uvicorns(
    make_sqlite_service, sqlite_url, tmp_path, started
):
    # uvicorn, left to itself, trusts 127.0.0.1 and puts X-Forwarded-For in place of the peer
    # before the app sees it: a local client, or any client through a gateway on this machine
    # that passes its headers on (nginx's auth_request does), could name an allowed host.
    admin = make_sqlite_service(current_login())
    office = admin.create_key("office", allowed_hosts=["192.0.2.7"])

    def answer(server: ServeProcess, **headers: str) -> tuple[int, str]:
        sent = {"x-api-key": office.secret} | {k.replace("_", "-"): v for k, v in headers.items()}
        response = httpx.get(f"{server.url}/auth", headers=sent)
        return response.status_code, response.headers["x-keytui-code"]

    refused = (403, "HOST_NOT_ALLOWED")
    plain = ServeProcess(tmp_path, sqlite_url)  # no --trusted-proxy: the peer, whatever is sent
    started.append(plain)
    assert answer(plain, x_forwarded_for="192.0.2.7") == refused
    assert answer(plain, x_forwarded_for="192.0.2.7", x_forwarded_proto="https") == refused
    assert answer(plain, x_real_ip="192.0.2.7") == refused
    assert plain.stop() == 0
    # 127.0.0.1 a trusted proxy (a gateway): its X-Real-IP names the client, and a forged
    # X-Forwarded-For the client sent along changes nothing.
    gateway = ServeProcess(tmp_path, sqlite_url, "--trusted-proxy", "127.0.0.1")
    started.append(gateway)
    assert answer(gateway, x_real_ip="198.51.100.1", x_forwarded_for="192.0.2.7") == refused
    assert answer(gateway, x_real_ip="192.0.2.7", x_forwarded_for="198.51.100.1") == (
        200,
        "VALID",
    )
    assert gateway.stop() == 0


def test_a_client_gone_mid_body_is_a_quiet_line_and_the_server_goes_on(
    make_sqlite_service, sqlite_url, tmp_path, started
):
    admin = make_sqlite_service(current_login())
    issued = admin.create_key("svc")
    server = ServeProcess(tmp_path, sqlite_url, "--log-level", "debug")
    started.append(server)
    body = json.dumps({"key": issued.secret}).encode()
    for round_ in range(3):
        # Headers and part of the body, then the client closes its end.
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            sock.sendall(
                b"POST /v1/keys/verify HTTP/1.1\r\nHost: keytui\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            wait_for(
                lambda round_=round_: (
                    server.stderr().count('started "POST /v1/keys/verify"') > round_
                ),
                "the request to reach the app",
            )
        wait_for(lambda round_=round_: server.stdout().count(" 499 ") > round_, "its access line")
    # Still serving, and the disconnects were no error.
    response = httpx.post(f"{server.url}/v1/keys/verify", json={"key": issued.secret})
    assert response.json()["code"] == "VALID"
    assert server.stop() == 0
    err = server.stderr()
    assert "Traceback" not in err and "ERROR" not in err, err
    assert err.count("client went away") == 3, err
    assert issued.secret.split("_", 2)[2] not in err + server.stdout()


def run_serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYTUI), "serve", *args],
        capture_output=True,
        text=True,
        env=child_env(tmp_path),
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--listen", "nonsense"], 2, "--listen wants HOST:PORT"),
        (["--listen", "127.0.0.1:99999"], 2, "out of range"),
        (["--trusted-proxy", "example.com"], 2, "--trusted-proxy wants an IP address or CIDR"),
        (["--key-header", "bad header"], 2, "--key-header wants a header name"),
        (["--workers", "0"], 2, "--workers"),
        (["--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"], 1, "cannot open database"),
    ],
)
def test_bad_usage_is_one_line(tmp_path, args, code, says):
    if "--db" not in args:
        args = [*args, "--db", str(tmp_path / "k.db")]
    result = run_serve(tmp_path, *args)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("keytui: ") and says in last, result.stderr


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve(
            tmp_path, "--db", str(tmp_path / "k.db"), "--listen", f"127.0.0.1:{port}"
        )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"keytui: cannot listen on 127.0.0.1:{port}")
    )
    assert "Traceback" not in result.stderr


def test_serve_help_names_its_endpoints():
    result = subprocess.run([str(KEYTUI), "serve", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for text in ("/auth", "/v1/keys/verify", "/healthz", "/metrics", "--trusted-proxy", "TLS"):
        assert text in result.stdout
    top = subprocess.run([str(KEYTUI), "--help"], capture_output=True, text=True).stdout
    assert re.search(r"^\s+serve\s", top, re.M)
