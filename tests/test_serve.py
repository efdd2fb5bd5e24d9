"""keytui serve's app in process (Starlette's TestClient runs its startup and shutdown): every
answer of /auth and /v1/keys/verify, where the key and the client's address come from, limits,
health, metrics, and that no secret reaches a log line, a metric or an error body."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram
from starlette.testclient import TestClient

from keytui.core import keyformat
from keytui.core.changes import Change, wait_until
from keytui.core.service import KeyService
from keytui.serve.app import make_app
from keytui.serve.clientaddr import ClientAddress
from keytui.serve.metrics import LATENCY_BUCKETS, Metrics
from keytui.serve.options import ServeOptions, parse_listen, parse_network
from keytui.serve.verifier import Verifier

from .conftest import altered

PEER = "203.0.113.9"  # a client straight on the internet
PROXY = "10.0.0.2"  # the gateway


@pytest.fixture
def admin(make_sqlite_service) -> KeyService:
    return make_sqlite_service("alice")


@pytest.fixture
def serve(admin, make_sqlite_service) -> Iterator[Callable[..., TestClient]]:
    """``serve(peer=..., **options)``: a started app on the admin's database, as seen from
    ``peer``; stopped (its service closed) at the end."""
    clients: list[TestClient] = []

    def start(peer: str = PEER, **options) -> TestClient:
        app = make_app(ServeOptions(**options), open_service=lambda: make_sqlite_service("alice"))
        client = TestClient(app, client=(peer, 51234), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def code(response) -> tuple[int, str]:
    return response.status_code, response.headers.get("x-keytui-code", "")


# -- /auth ---------------------------------------------------------------------------------------


def test_auth_valid_key_names_it_in_headers(serve, admin):
    issued = admin.create_key("k", role="read-write")
    response = serve().get("/auth", headers={"x-api-key": issued.secret})
    assert response.status_code == 200
    assert response.headers["x-keytui-code"] == "VALID"
    assert response.headers["x-keytui-key-id"] == issued.key.id
    assert response.headers["x-keytui-owner"] == "alice"
    assert response.headers["x-keytui-role"] == "read-write"
    assert "www-authenticate" not in response.headers


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"])
def test_auth_answers_any_method(serve, admin, method):
    issued = admin.create_key("k")
    response = serve().request(method, "/auth", headers={"x-api-key": issued.secret})
    assert code(response) == (200, "VALID")


def test_auth_answers_below_its_path_as_envoy_asks(serve, admin):
    issued = admin.create_key("k")
    client = serve()
    response = client.post("/auth/api/orders?id=7", headers={"x-api-key": issued.secret})
    assert code(response) == (200, "VALID")
    assert code(client.get("/auth/api/orders")) == (401, "MISSING")


def test_auth_reads_the_key_from_each_place_in_order(serve, admin):
    good = admin.create_key("good").secret
    other = admin.create_key("other").secret
    client = serve(key_headers=("x-custom-key",))
    for headers in (
        {"x-api-key": good},
        {"authorization": f"Bearer {good}"},
        {"authorization": f"bearer   {good}"},
        {"authorization": good},  # Patchworks' bare style
        {"x-custom-key": good},
        {"authorization": "Basic dXNlcjpwdw==", "x-custom-key": good},
        {"x-api-key": good, "authorization": f"Bearer {altered(other)}"},  # x-api-key first
    ):
        assert code(client.get("/auth", headers=headers)) == (200, "VALID"), headers
    # Without --key-header, another header is not a place a key is looked for.
    assert code(serve().get("/auth", headers={"x-custom-key": good})) == (401, "MISSING")


def test_when_two_places_differ_the_first_in_order_decides_alone(serve, admin):
    first = admin.create_key("first")
    second = admin.create_key("second")
    client = serve(key_headers=("x-custom-key", "x-other-key"))

    def answer(headers: dict[str, str]) -> tuple[int, str, str]:
        response = client.get("/auth", headers=headers)
        return (*code(response), response.headers.get("x-keytui-key-id", ""))

    valid = (200, "VALID", first.key.id)
    # Both keys valid: the one in the earlier place is the one verified and named.
    for headers in (
        {"x-api-key": first.secret, "authorization": f"Bearer {second.secret}"},
        {"authorization": f"Bearer {first.secret}", "x-custom-key": second.secret},
        {"authorization": first.secret, "x-custom-key": second.secret},
        {"x-custom-key": first.secret, "x-other-key": second.secret},
    ):
        assert answer(headers) == valid, headers
    # A refused key in an earlier place is not rescued by a good one later.
    revoked = admin.create_key("revoked")
    admin.revoke_key(revoked.key.id)
    for headers in (
        {"x-api-key": revoked.secret, "authorization": f"Bearer {first.secret}"},
        {"x-api-key": "not-a-key", "authorization": f"Bearer {first.secret}"},
        {"authorization": f"Bearer {revoked.secret}", "x-custom-key": first.secret},
        {"authorization": "Bearer", "x-custom-key": first.secret},  # Bearer with nothing
        {"x-custom-key": revoked.secret, "x-other-key": first.secret},
    ):
        assert answer(headers)[0] == 401, headers
    # Sent twice in an earlier place: MALFORMED, whatever comes later.
    twice = [("x-api-key", first.secret), ("x-api-key", first.secret)]
    response = client.get("/auth", headers=[*twice, ("authorization", f"Bearer {first.secret}")])
    assert code(response) == (401, "MALFORMED")
    # Another Authorization scheme (Basic, Digest...) carries no key: later places are read.
    basic = {"authorization": "Basic dXNlcjpwdw==", "x-custom-key": first.secret}
    assert answer(basic) == valid


def test_auth_refusals_401(serve, admin, make_sqlite_service, clock):
    client = serve()
    revoked = admin.create_key("revoked")
    admin.revoke_key(revoked.key.id)
    replaced = admin.create_key("replaced")
    admin.replace_key(replaced.key.id)
    past = make_sqlite_service("alice", clock=lambda: clock() - timedelta(days=10))
    expired = past.create_key("expired", expires="2d")
    good = admin.create_key("good")
    unknown = keyformat.new_secret(keyformat.new_key_id())
    cases = {
        "MISSING": {},
        "MALFORMED": {"x-api-key": "not-a-key"},
        "NOT_FOUND": {"x-api-key": unknown},
        "REVOKED": {"x-api-key": revoked.secret},
        "EXPIRED": {"x-api-key": expired.secret},
    }
    for expected, headers in cases.items():
        response = client.get("/auth", headers=headers)
        assert code(response) == (401, expected), expected
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="keytui"')
        assert ('error="invalid_token"' in challenge) == (expected != "MISSING")
        assert "x-keytui-key-id" not in response.headers
    # The replaced key's old secret, and a real ID with a wrong random part: not found.
    assert code(client.get("/auth", headers={"x-api-key": replaced.secret})) == (401, "NOT_FOUND")
    wrong = {"x-api-key": altered(good.secret)}
    assert code(client.get("/auth", headers=wrong)) == (401, "MALFORMED")  # bad checksum
    body = altered(good.secret[: -keyformat.CHECKSUM_LENGTH])
    forged = {"x-api-key": body + keyformat.checksum(body)}  # a real ID, a wrong random part
    assert code(client.get("/auth", headers=forged)) == (401, "NOT_FOUND")


def test_auth_refusals_403(serve, admin):
    elsewhere = admin.create_key("elsewhere", allowed_hosts=["198.51.100.0/24"])
    good = admin.create_key("good")
    client = serve()
    response = client.get("/auth", headers={"x-api-key": elsewhere.secret})
    assert code(response) == (403, "HOST_NOT_ALLOWED")
    admin.update_settings(keys_enabled=False)
    assert code(client.get("/auth", headers={"x-api-key": good.secret})) == (403, "DISABLED")
    admin.update_settings(keys_enabled=True)  # heard within the propagation bound
    assert wait_until(
        lambda: code(client.get("/auth", headers={"x-api-key": good.secret})) == (200, "VALID"),
        10,
    )


def test_a_key_header_sent_twice_is_malformed(serve, admin):
    good = admin.create_key("good").secret
    client = serve()
    twice = [("x-api-key", good), ("x-api-key", good)]
    assert code(client.get("/auth", headers=twice)) == (401, "MALFORMED")
    twice = [("authorization", f"Bearer {good}"), ("authorization", "Bearer x")]
    assert code(client.get("/auth", headers=twice)) == (401, "MALFORMED")


def test_a_revoke_is_refused_within_the_propagation_bound(serve, admin):
    issued = admin.create_key("k")
    client = serve()
    headers = {"x-api-key": issued.secret}
    assert code(client.get("/auth", headers=headers)) == (200, "VALID")
    assert code(client.get("/auth", headers=headers)) == (200, "VALID")  # now inline
    service: KeyService = client.app.app.state.served.service
    assert wait_until(lambda: service.verifier.answering_from_memory, 10)
    assert code(client.get("/auth", headers=headers)) == (200, "VALID")  # now from memory
    admin.revoke_key(issued.key.id)
    refused = []  # every answer after the revoke: VALID until the watcher hears it, then not
    assert wait_until(
        lambda: (
            refused.append(code(client.get("/auth", headers=headers)))
            or refused[-1] == (401, "REVOKED")
        ),
        10,
    )
    assert code(client.get("/auth", headers=headers)) == (401, "REVOKED")


# -- the client's address ------------------------------------------------------------------------


def test_forged_forwarding_headers_from_an_untrusted_peer_change_nothing(serve, admin):
    office = admin.create_key("office", allowed_hosts=["192.0.2.7"])
    forged = {
        "x-api-key": office.secret,
        "x-real-ip": "192.0.2.7",
        "x-forwarded-for": "192.0.2.7",
    }
    # From the internet, even when some proxy is trusted: the headers are ignored.
    for client in (serve(), serve(trusted_proxies=(PROXY + "/32",))):
        assert code(client.get("/auth", headers=forged)) == (403, "HOST_NOT_ALLOWED")
    # From the office itself, without headers: allowed.
    direct = serve(peer="192.0.2.7")
    assert code(direct.get("/auth", headers={"x-api-key": office.secret})) == (200, "VALID")


def test_a_trusted_proxy_names_the_client(serve, admin):
    office = admin.create_key("office", allowed_hosts=["192.0.2.7"])
    proxy_host = admin.create_key("proxy", allowed_hosts=[PROXY])
    client = serve(peer=PROXY, trusted_proxies=("10.0.0.0/24",))

    def answer(secret: str, **headers: str) -> tuple[int, str]:
        sent = {"x-api-key": secret} | {k.replace("_", "-"): v for k, v in headers.items()}
        return code(client.get("/auth", headers=sent))

    assert answer(office.secret, x_real_ip="192.0.2.7") == (200, "VALID")
    # X-Real-IP first; it is what the gateway set.
    assert answer(office.secret, x_real_ip="192.0.2.7", x_forwarded_for="198.51.100.1") == (
        200,
        "VALID",
    )
    # The right-most entry that is not a trusted proxy: a forged left part changes nothing.
    assert answer(office.secret, x_forwarded_for="192.0.2.7, 10.0.0.5") == (200, "VALID")
    assert answer(office.secret, x_forwarded_for="192.0.2.7, 198.51.100.1") == (
        403,
        "HOST_NOT_ALLOWED",
    )
    # The proxy vouches for a client: never the proxy's own address, even for garbage.
    assert answer(proxy_host.secret, x_real_ip="192.0.2.7") == (403, "HOST_NOT_ALLOWED")
    assert answer(proxy_host.secret, x_real_ip="not an address") == (403, "HOST_NOT_ALLOWED")
    assert answer(proxy_host.secret, x_forwarded_for="nonsense, 10.0.0.5") == (
        403,
        "HOST_NOT_ALLOWED",
    )
    # No header at all: the proxy is the client (a health check from the gateway's host).
    assert answer(proxy_host.secret) == (200, "VALID")


addresses = st.one_of(
    st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(str), st.text(max_size=30)
)


def network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(parse_network(text))


@given(peer=st.ip_addresses(), real_ip=st.none() | addresses, xff=st.none() | addresses)
def test_headers_from_an_untrusted_peer_are_ignored(peer, real_ip, xff):
    resolver = ClientAddress([network("10.0.0.0/8")])
    if resolver.is_trusted(peer):
        return
    expected = resolver.resolve(str(peer), None, None)
    assert expected is not None
    assert resolver.resolve(str(peer), real_ip, xff) == expected


def test_client_address_details():
    resolver = ClientAddress([network("127.0.0.1"), network("::1")])
    assert resolver.resolve("::ffff:127.0.0.1", "192.0.2.1", None) == "192.0.2.1"  # mapped
    assert resolver.resolve("::1", "[2001:db8::7]:443", None) == "2001:db8::7"
    assert resolver.resolve("127.0.0.1", None, "192.0.2.1:5555") == "192.0.2.1"
    assert resolver.resolve("127.0.0.1", None, "127.0.0.1, ::1") == "127.0.0.1"  # all trusted
    assert resolver.resolve(None, "192.0.2.1", None) is None


# -- POST /v1/keys/verify ------------------------------------------------------------------------


def test_verify_endpoint_shape(serve, admin):
    issued = admin.create_key("k", role="read-write", expires="2026-12-31")
    client = serve()
    body = client.post("/v1/keys/verify", json={"key": issued.secret}).json()
    assert body == {
        "valid": True,
        "code": "VALID",
        "key_id": issued.key.id,
        "owner": "alice",
        "role": "read-write",
        "expires_at": "2026-12-31T23:59:59Z",
    }
    admin.revoke_key(issued.key.id)
    response = client.post("/v1/keys/verify", json={"key": issued.secret})
    assert response.status_code == 200
    assert response.json()["valid"] is False and response.json()["code"] == "REVOKED"
    response = client.post("/v1/keys/verify", json={"key": "kt_nope"})
    assert response.status_code == 200
    assert response.json() == {
        "valid": False,
        "code": "MALFORMED",
        "key_id": None,
        "owner": None,
        "role": None,
        "expires_at": None,
    }


def test_verify_endpoint_bad_requests(serve):
    client = serve()
    nested = b"[" * 4000  # deeper than the JSON parser goes: a RecursionError, not a 500
    for content in (b"", b"{", b"[]", b'{"key": 5}', b'{"secret": "x"}', b"\xff\xfe", nested):
        response = client.post("/v1/keys/verify", content=content)
        assert response.status_code == 400, content
        assert set(response.json()) == {"error"}
    assert client.get("/v1/keys/verify").status_code == 405
    assert client.post("/v1/keys/verify", content=b"x" * 5000).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the read itself stops at the limit
        for _ in range(10):
            yield b"x" * 1000

    response = client.post("/v1/keys/verify", content=chunks())
    assert response.status_code == 413


def test_oversized_headers_431(serve, admin):
    issued = admin.create_key("k")
    client = serve()
    response = client.get("/auth", headers={"x-api-key": issued.secret, "x-pad": "a" * 9000})
    assert response.status_code == 431
    assert client.get("/auth", headers={"x-api-key": "kt_" + "a" * 9000}).status_code == 431
    response = client.get("/auth", headers={"x-api-key": issued.secret, "content-length": "x"})
    assert response.status_code == 400


# -- health and metrics --------------------------------------------------------------------------


def test_healthz_follows_the_database(serve, admin, sqlite_url):
    issued = admin.create_key("k")
    client = serve()
    assert client.get("/healthz").json() == {"status": "ok"}
    service: KeyService = client.app.app.state.served.service  # Guard -> Starlette
    path = Path(sqlite_url)
    moved = path.with_name("moved.db")
    shutil.move(path, moved)
    path.mkdir()  # the database's path is now a directory: nothing can open it
    service.db.engine.dispose()
    try:
        response = client.get("/healthz")
        assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
        response = client.get("/auth", headers={"x-api-key": issued.secret})
        assert code(response) == (503, "UNAVAILABLE")
        response = client.post("/v1/keys/verify", json={"key": issued.secret})
        assert response.status_code == 503 and "Traceback" not in response.text
    finally:
        path.rmdir()
        shutil.move(moved, path)
    service.db.engine.dispose()
    assert client.get("/healthz").status_code == 200


def test_metrics_count_codes_and_time_verifies(serve, admin):
    issued = admin.create_key("k")
    client = serve(inline_below=1.0)  # "fast" even on a loaded machine
    for _ in range(3):
        client.get("/auth", headers={"x-api-key": issued.secret})
    client.get("/auth")
    client.post("/v1/keys/verify", json={"key": "garbage"})
    text = client.get("/metrics").text
    assert 'keytui_verifications_total{code="VALID",endpoint="auth"} 3.0' in text
    assert 'keytui_verifications_total{code="MISSING",endpoint="auth"} 1.0' in text
    assert 'keytui_verifications_total{code="MALFORMED",endpoint="verify"} 1.0' in text
    # The first verify of a secret ran in the pool, the next ones (fast) inline.
    assert 'keytui_verify_seconds_count{path="thread"} 1.0' in text
    assert 'keytui_verify_seconds_count{path="inline"} 3.0' in text  # 2 cached + 1 malformed


def test_tallied_latencies_push_as_histogram_observe_would(monkeypatch):
    # Metrics.push adds a batch to the histogram's buckets itself (no public call does):
    # what it shows must be what observing each value would have shown.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    registry = CollectorRegistry()
    plain = Histogram("plain", "", ["path"], buckets=LATENCY_BUCKETS, registry=registry)
    values = [0.0, 0.00005, 0.00007, 0.0001, 0.003, 0.01, 0.0100001, 0.9, 1.0, 2.5, 60.0]
    for round_ in range(2):  # a second push adds to the first
        for value in values:
            metrics.observe("inline", value)
            plain.labels("inline").observe(value)
        metrics.count("auth", "VALID")
        metrics.push()
        assert not metrics.pending

        def samples(registry: CollectorRegistry, name: str) -> list[tuple[str, str, float]]:
            return [
                (
                    sample.name.removeprefix(name),
                    sample.labels.get("le", ""),
                    round(sample.value, 9),
                )
                for family in registry.collect()
                for sample in family.samples
                if sample.name.startswith(name) and not sample.name.endswith("_created")
            ]

        ours = samples(metrics._registry, "keytui_verify_seconds")
        assert ours == samples(registry, "plain")
        assert len(ours) == len(LATENCY_BUCKETS) + 3  # buckets, +Inf, count, sum
        text = metrics.render().decode()
        assert f'keytui_verifications_total{{code="VALID",endpoint="auth"}} {round_ + 1}.0' in text


# -- secrets stay out of logs, metrics and bodies --------------------------------------------------


def test_no_secret_in_logs_metrics_or_bodies(serve, admin, caplog):
    caplog.set_level(logging.DEBUG)
    issued = admin.create_key("k")
    wrong = altered(issued.secret)
    replaced = admin.create_key("r")
    old = replaced.secret
    admin.replace_key(replaced.key.id)
    client = serve()
    bodies = []
    for secret in (issued.secret, wrong, old):
        for response in (
            client.get("/auth", headers={"x-api-key": secret}),
            client.get("/auth", headers={"authorization": f"Bearer {secret}"}),
            client.post("/v1/keys/verify", json={"key": secret}),
            client.post("/v1/keys/verify", content=b'{"key": "' + secret.encode() + b'"'),
            client.get(f"/{secret}"),
            client.get(f"/auth/{secret}?key={secret}"),
            client.get("/auth", headers={"x-api-key": secret, "x-pad": "a" * 9000}),
        ):
            bodies.append(response.text + str(dict(response.headers)))
    bodies.append(client.get("/metrics").text)
    logged = "\n".join(  # the server's lines (the test's own HTTP client logs its URLs)
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(("keytui", "uvicorn", "starlette"))
    )
    assert issued.key.id in logged  # the access log names the key
    for secret in (issued.secret, wrong, old):
        body = secret.split("_", 2)[2]  # the random part and checksum, without the public ID
        for text in (logged, *bodies):
            assert body not in text


def test_an_unexpected_error_is_a_plain_500_and_a_line_without_its_message(
    serve, admin, caplog, monkeypatch
):
    issued = admin.create_key("k")
    client = serve()
    served = client.app.app.state.served

    def broken(secret, host=None):
        raise ValueError(f"cannot handle {secret}")

    monkeypatch.setattr(served.service, "verify", broken)
    response = client.get("/auth", headers={"x-api-key": issued.secret})
    assert response.status_code == 500
    assert issued.secret not in response.text and "Traceback" not in response.text
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("internal error (ValueError)" in line for line in errors)
    assert not any(issued.secret in line for line in errors)


# -- the verifier: inline or in the pool ---------------------------------------------------------


def test_verifier_runs_a_new_secret_in_the_pool_then_inline(admin, make_sqlite_service):
    """Read through (no change watcher): a secret fast in the pool before goes inline."""
    issued = admin.create_key("k")
    reader = make_sqlite_service("alice", warm=False)
    verifier = Verifier(reader, inline_below=1.0, remembered=2)

    async def scenario() -> list[tuple[str, bool]]:
        seen = []
        for secret in (issued.secret, issued.secret, "garbage"):
            verified = await verifier.verify(secret, None)
            seen.append((verified.result.code, verified.inline))
        return seen

    assert anyio.run(scenario) == [("VALID", False), ("VALID", True), ("MALFORMED", True)]
    others = [admin.create_key(f"o{i}").secret for i in range(3)]

    async def fill() -> bool:
        for secret in others:
            await verifier.verify(secret, None)
        return (await verifier.verify(issued.secret, None)).inline

    assert anyio.run(fill) is False  # remembered at most 2: the oldest was forgotten

    slow = Verifier(reader, inline_below=0.0)  # nothing is ever fast enough

    async def never_inline() -> list[bool]:
        return [(await slow.verify(issued.secret, None)).inline for _ in range(3)]

    assert anyio.run(never_inline) == [False, False, False]


def test_a_flood_read_through_leaves_the_fast_secrets_alone(admin, make_sqlite_service):
    """Without a watcher, wrong guesses are refused fast after a read, each once: none of them
    takes a place among the remembered fast secrets, so the real ones stay inline."""
    from keytui.core.keyformat import new_secret

    issued = admin.create_key("k")
    reader = make_sqlite_service("alice", warm=False)
    verifier = Verifier(reader, inline_below=1.0, remembered=2)

    async def scenario() -> list[tuple[str, bool]]:
        seen = [await verifier.verify(issued.secret, None)]
        seen += [await verifier.verify(new_secret(issued.key.id), None) for _ in range(5)]
        seen.append(await verifier.verify(issued.secret, None))
        return [(v.result.code, v.inline) for v in seen]

    answers = anyio.run(scenario)
    assert answers[0] == ("VALID", False)
    assert {code for code, _inline in answers[1:-1]} == {"NOT_FOUND"}
    assert answers[-1] == ("VALID", True)
    assert len(verifier._fast) == 1


def vouched(service: KeyService) -> bool:
    """Memory is trusted for at least 50 ms more: the next call answers from it (under load the
    watcher may prove itself late, and a verify then goes to the pool, as it should)."""
    watcher = service.verifier.watcher
    return watcher is not None and watcher.sure_until - time.monotonic() > 0.05


def test_what_memory_answers_never_goes_to_the_pool(admin, make_sqlite_service):
    """With a live watcher: a secret seen before and a flood's guesses (refused by the key's
    check value) are answered on the loop; the real secret, new here, went to the pool."""
    from keytui.core.keyformat import new_secret

    issued = admin.create_key("k")
    service = make_sqlite_service("alice", warm=True)
    verifier = Verifier(service, inline_below=0.0)  # the pool's answers never count as fast
    first = anyio.run(verifier.verify, issued.secret, None)
    assert (first.result.code, first.inline) == ("VALID", False)

    def trusted() -> bool:
        return vouched(service)

    assert wait_until(trusted, 5)
    assert service.verify(issued.secret).valid  # read while live: now remembered
    assert wait_until(trusted, 5)
    again = anyio.run(verifier.verify, issued.secret, None)  # from memory now
    assert (again.result.code, again.inline) == ("VALID", True)
    # The first guess reads the key's row once (its check value is not remembered yet) ...
    assert anyio.run(verifier.verify, new_secret(issued.key.id), None).result.code == "NOT_FOUND"
    # ... the rest are refused from memory, on the loop: no read, no argon2.
    reads, runs = service.verifier.stats.read, service.verifier.stats.argon2
    guesses = []
    for _ in range(50):
        assert wait_until(trusted, 5)
        guesses.append(anyio.run(verifier.verify, new_secret(issued.key.id), None))
    assert {(g.result.code, g.inline) for g in guesses} == {("NOT_FOUND", True)}
    assert (service.verifier.stats.read, service.verifier.stats.argon2) == (reads, runs)
    garbage = anyio.run(verifier.verify, "kt_garbage", None)
    assert (garbage.result.code, garbage.inline) == ("MALFORMED", True)


def test_an_inline_verify_that_ran_argon2_sends_its_secret_back_to_the_pool(admin):
    issued = admin.create_key("k")
    verifier = Verifier(admin, inline_below=1.0)

    async def inline(secret: str) -> list[tuple[str, bool]]:
        seen = []
        for _ in range(2):
            verified = await verifier.verify(secret, None)
            seen.append((verified.result.code, verified.inline))
        return seen

    assert anyio.run(inline, issued.secret) == [("VALID", False), ("VALID", True)]
    # Replaced: the old secret, still remembered as fast, is refused by its check value, on the
    # loop, with no argon2 run: it stays inline.
    replaced = admin.replace_key(issued.key.id)
    runs = admin.verifier.stats.argon2
    assert anyio.run(inline, issued.secret) == [("NOT_FOUND", True), ("NOT_FOUND", True)]
    assert admin.verifier.stats.argon2 == runs
    # The secret's argon2 match forgotten (pushed out of the service's cache), and its key's
    # entries dropped: the remembered secret now costs an argon2 run (on the loop, once), which
    # sends it back to the pool. No write is involved, so no change notice can drop what that
    # run taught memory: the service then answers it from memory, on the loop, with no second
    # run (a verify that reaches the pool first, while the watcher proves itself late under
    # load, reads the row and needs no argon2 either).
    assert anyio.run(inline, replaced.secret) == [("VALID", False), ("VALID", True)]
    assert wait_until(lambda: vouched(admin), 5)
    admin.verifier._matched.clear()
    admin.verifier.forget(Change(key_ids=frozenset({issued.key.id})))
    runs = admin.verifier.stats.argon2
    digest = hashlib.sha256(replaced.secret.encode()).digest()
    first = anyio.run(verifier.verify, replaced.secret, None)
    assert (first.result.code, first.inline) == ("VALID", True)
    assert digest not in verifier._fast
    assert admin.verifier.stats.argon2 == runs + 1

    def from_memory() -> bool:
        if not vouched(admin):
            return False
        again = anyio.run(verifier.verify, replaced.secret, None)
        assert again.result.code == "VALID"
        return again.inline and admin.verifier.answer_in_memory(replaced.secret) is not None

    assert wait_until(from_memory, 5)
    assert admin.verifier.stats.argon2 == runs + 1


# -- options -------------------------------------------------------------------------------------


def test_listen_and_proxy_options():
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":80") == ("0.0.0.0", 80)
    for bad in ("8080", "host:", "::1:80", "1.2.3.4:70000", "[nope]:80"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    assert parse_network("10.1.2.3/8") == "10.0.0.0/8"
    assert parse_network("::1") == "::1/128"
    with pytest.raises(ValueError):
        parse_network("example.com")
    options = ServeOptions(trusted_proxies=("10.0.0.0/8",), key_headers=("x-k",))
    assert ServeOptions.from_env({"KEYTUI_SERVE_OPTIONS": options.to_env()}) == options


def test_metrics_say_whether_answers_come_from_memory(serve, admin):
    issued = admin.create_key("k")
    client = serve(inline_below=1.0)
    service: KeyService = client.app.app.state.served.service
    for _ in range(2):  # the second verify starts the change watcher
        client.get("/auth", headers={"x-api-key": issued.secret})
    assert wait_until(lambda: service.verifier.answering_from_memory, 10)
    for _ in range(4):  # the first of these is remembered, the rest answered from memory
        client.get("/auth", headers={"x-api-key": issued.secret})
    text = client.get("/metrics").text

    def figure(name: str) -> float:
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert match, name
        return float(match.group(1))

    memory = figure('keytui_verify_answers_total{source="memory"}')
    database = figure('keytui_verify_answers_total{source="database"}')
    assert memory + database == 6 and memory >= 1  # (a loaded machine may lapse the lease)
    assert figure("keytui_verify_argon2_runs_total") == 1
    assert figure("keytui_verify_throttled_total") == 0
    assert figure("keytui_verify_from_memory") in (0.0, 1.0)
