"""keytui serve behind a real gateway: Debian's nginx with ``auth_request`` in front of a small
upstream that echoes the headers it received, driven with a real HTTP client.

The client connects from 127.0.0.3 (all of 127/8 is this host), nginx calls keytui from
127.0.0.1 (a --trusted-proxy) and names the client in X-Real-IP, so allowed hosts are checked
against the client, not the gateway. A revoke made with the CLI is refused at the gateway; the
time it took is recorded (``revoke_seen_ms``), not asserted: the bound belongs to bench/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2 as httpx
import pytest

from keytui.core import keyformat
from keytui.core.clock import FrozenClock, system_clock
from keytui.core.db import open_database
from keytui.core.identity import current_login
from keytui.core.service import KeyService

from .conftest import FAST_HASHER
from .serving import KEYTUI, ServeProcess, child_env, free_port, wait_for

pytestmark = pytest.mark.clock  # starts processes: they get the test's clock, data, settings

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT = "127.0.0.3"  # where the test's requests come from

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log notice;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    upstream keytui {{
        server {keytui};
        keepalive 16;
    }}
    upstream app {{
        server 127.0.0.1:{app_port};
    }}
    server {{
        listen 127.0.0.1:{port};

        location = /_keytui {{
            internal;
            proxy_pass http://keytui/auth;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Original-URI $request_uri;
        }}

        location / {{
            auth_request /_keytui;
            auth_request_set $keytui_key_id $upstream_http_x_keytui_key_id;
            auth_request_set $keytui_owner $upstream_http_x_keytui_owner;
            auth_request_set $keytui_role $upstream_http_x_keytui_role;
            auth_request_set $keytui_code $upstream_http_x_keytui_code;
            add_header X-Keytui-Code $keytui_code always;
            proxy_set_header X-Keytui-Key-Id $keytui_key_id;
            proxy_set_header X-Keytui-Owner $keytui_owner;
            proxy_set_header X-Keytui-Role $keytui_role;
            proxy_set_header X-Api-Key "";
            proxy_pass http://app;
        }}
    }}
}}
"""


class Echo(BaseHTTPRequestHandler):
    """The upstream: answers every request with the headers it received, as JSON."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def nginx_available() -> None:
    if not os.path.exists(NGINX):
        if os.environ.get("KEYTUI_REQUIRE_POSTGRES"):  # CI: .ci/run installs nginx
            pytest.fail("nginx is required here (.ci/run installs it)")
        pytest.skip("nginx is not installed")


@pytest.fixture
def echo() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(nginx_available, tmp_path: Path, echo: int) -> Iterator[dict]:
    """keytui serve (one worker) on a fresh database and nginx in front of the echo upstream."""
    db = str(tmp_path / "keytui.db")
    # The login the CLI and keytui serve run as is this database's admin; keys are made with
    # the system clock the children use (faketime's, when the suite runs under it).
    admin = KeyService(open_database(db), face="api", hasher=FAST_HASHER)
    admin.bootstrap()
    assert admin.whoami() is not None and admin.whoami().login == current_login()
    server = ServeProcess(tmp_path, db, "--trusted-proxy", "127.0.0.1", workers=1)
    conf = tmp_path / "nginx.conf"
    port = free_port()
    conf.write_text(
        NGINX_CONF.format(tmp=tmp_path, keytui=server.address, app_port=echo, port=port)
    )
    nginx = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(tmp_path),
    )
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        transport=httpx.HTTPTransport(local_address=CLIENT),
        timeout=30,
    )

    def up() -> bool:
        if nginx.poll() is not None:
            raise AssertionError(
                f"nginx exited: {nginx.stderr.read().decode() if nginx.stderr else ''}"
            )
        try:
            return client.get("/").status_code == 401
        except httpx.TransportError:
            return False

    try:
        wait_for(up, "nginx to answer")
        yield {"client": client, "admin": admin, "db": db, "server": server, "tmp": tmp_path}
    finally:
        client.close()
        nginx.terminate()
        nginx.wait(timeout=60)
        server.stop()
        server.kill()
        admin.close()


def cli(gateway: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYTUI), *args, "--db", gateway["db"]],
        capture_output=True,
        text=True,
        env=child_env(gateway["tmp"]),
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=True,
    )


def answer(gateway: dict, secret: str | None = None, **headers: str) -> tuple[int, str]:
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if secret is not None:
        sent["x-api-key"] = secret
    response = gateway["client"].get("/api/orders", headers=sent)
    return response.status_code, response.headers.get("x-keytui-code", "")


def test_nginx_auth_request_lets_valid_keys_through(gateway, record_property):
    admin: KeyService = gateway["admin"]
    client: httpx.Client = gateway["client"]
    good = admin.create_key("good", role="read-write")
    response = client.get("/api/orders", headers={"x-api-key": good.secret})
    assert response.status_code == 200
    seen = response.json()  # what the upstream received
    assert seen["x-keytui-key-id"] == good.key.id
    assert seen["x-keytui-owner"] == current_login()
    assert seen["x-keytui-role"] == "read-write"
    assert "x-api-key" not in seen  # the gateway keeps the secret from the upstream
    # The bearer form too; a client's own X-Keytui-Key-Id is overwritten, never believed.
    response = client.get(
        "/api/orders",
        headers={"authorization": f"Bearer {good.secret}", "x-keytui-key-id": "forged0000"},
    )
    assert response.status_code == 200
    assert response.json()["x-keytui-key-id"] == good.key.id


def test_nginx_refuses_what_keytui_refuses(gateway):
    admin: KeyService = gateway["admin"]
    revoked = admin.create_key("revoked")
    admin.revoke_key(revoked.key.id)
    replaced = admin.create_key("replaced")
    admin.replace_key(replaced.key.id)
    past = KeyService(
        admin.db,
        face="api",
        hasher=FAST_HASHER,
        clock=FrozenClock(system_clock() - timedelta(days=10)),
    )
    expired = past.create_key("expired", expires="2d")
    unknown = keyformat.new_secret(keyformat.new_key_id())
    assert answer(gateway) == (401, "MISSING")
    assert answer(gateway, "kt_not_a_key") == (401, "MALFORMED")
    assert answer(gateway, unknown) == (401, "NOT_FOUND")
    assert answer(gateway, revoked.secret) == (401, "REVOKED")
    assert answer(gateway, replaced.secret) == (401, "NOT_FOUND")  # the old secret
    assert answer(gateway, expired.secret) == (401, "EXPIRED")
    response = gateway["client"].get("/")
    assert response.headers["www-authenticate"].startswith('Bearer realm="keytui"')


def test_nginx_checks_allowed_hosts_against_the_client_not_the_gateway(gateway):
    admin: KeyService = gateway["admin"]
    here = admin.create_key("client", allowed_hosts=[CLIENT])
    gateway_only = admin.create_key("gateway", allowed_hosts=["127.0.0.1"])
    assert answer(gateway, here.secret) == (200, "VALID")
    assert answer(gateway, gateway_only.secret) == (403, "HOST_NOT_ALLOWED")
    # A client naming another address: nginx overwrites X-Real-IP, keytui ignores the rest.
    forged = {"x_real_ip": "127.0.0.1", "x_forwarded_for": "127.0.0.1"}
    assert answer(gateway, gateway_only.secret, **forged) == (403, "HOST_NOT_ALLOWED")


def test_nginx_refuses_a_disabled_installation_and_a_cli_revoke(gateway, record_property):
    admin: KeyService = gateway["admin"]
    good = admin.create_key("good")
    assert answer(gateway, good.secret)[0] == 200
    cli(gateway, "settings", "set", "--disable")
    assert answer(gateway, good.secret) == (403, "DISABLED")
    cli(gateway, "settings", "set", "--enable")
    assert answer(gateway, good.secret)[0] == 200

    cli(gateway, "keys", "revoke", good.key.id, "--yes")
    returned = time.perf_counter()
    wait_for(lambda: answer(gateway, good.secret) == (401, "REVOKED"), "the revoke at the gateway")
    seen_ms = (time.perf_counter() - returned) * 1000
    record_property("revoke_seen_ms", round(seen_ms, 1))
    print(f"revoke seen at the gateway {seen_ms:.1f} ms after the CLI returned")
    log = gateway["server"].stdout()
    assert good.key.id in log and good.secret.split("_", 2)[2] not in log
