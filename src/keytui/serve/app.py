"""The ASGI app: ``/auth`` for gateways, ``POST /v1/keys/verify`` for services, ``/healthz``
and ``/metrics``. Built by :func:`make_app`; a worker builds it from its environment with
:func:`app_from_env` (uvicorn's factory).

Each worker opens one ``KeyService`` (face ``api``) when it starts and closes it when it stops,
which writes the usage counts it still holds. The service decides every answer; this module
maps answers to HTTP and keeps secrets out of everything it writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import traceback
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keytui.core.errors import KeytuiError, is_sqlalchemy_error
from keytui.core.service import KeyService
from keytui.core.values import VerifyCode, VerifyResult

from .clientaddr import ClientAddress
from .extract import Ambiguous, RequestHeaders, find_key, read_headers
from .metrics import CONTENT_TYPE, Metrics
from .options import ServeOptions
from .verifier import Verifier

Headers = list[tuple[bytes, bytes]]
access_log = logging.getLogger("keytui.serve.access")
log = logging.getLogger("keytui.serve")

# 403: the key is real but not allowed here (or the whole installation is off, or a flood of
# wrong secrets for it is being throttled); 401: there is no valid key. nginx's auth_request
# passes 401 and 403 on to the client and turns anything else into a 500.
FORBIDDEN = frozenset({"HOST_NOT_ALLOWED", "DISABLED", "THROTTLED"})
MISSING = VerifyCode.MISSING
UNAVAILABLE = "UNAVAILABLE"
GONE = 499  # nginx's status for a client that closed before its answer; it receives nothing
FLUSH_SECONDS = 10.0  # usage counts reach the database at least this often
PUSH_SECONDS = 0.5  # a request's figures reach the metrics (and other workers' scrapes) within
_KEYLIKE = re.compile(r"kt_[0-9A-Za-z_]*")


def _header_value(text: str) -> str:
    """Text from the database as a header value: printable ASCII as it is, anything else
    percent-encoded (UTF-8), so no byte a client could read as a new header gets through."""
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe=" !#$&'()*+,/:;=?@[]~^_`{|}-.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _loggable(text: str, limit: int = 200) -> str:
    """A client-chosen string (path, method) fit for a log line: anything shaped like a key
    cut to ``kt_…``, control characters escaped, at most ``limit`` characters."""
    text = _KEYLIKE.sub("kt_…", text[: limit * 2])
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Served:
    """What one worker holds while it serves: its service, verifier, metrics, options."""

    def __init__(self, options: ServeOptions, service: KeyService, metrics: Metrics) -> None:
        self.options = options
        self.service = service
        self.metrics = metrics
        self.verifier = Verifier(service, inline_below=options.inline_below, metrics=metrics)
        self.addresses = ClientAddress(options.networks())
        self.key_headers = tuple(name.encode("latin-1") for name in options.key_headers)
        self._push: asyncio.TimerHandle | None = None

    def count(self, endpoint: str, code: str) -> None:
        self.metrics.count(endpoint, code)
        if self._push is None:
            self._push = asyncio.get_running_loop().call_later(PUSH_SECONDS, self.push)

    def observe(self, seconds: float, inline: bool) -> None:
        self.metrics.observe("inline" if inline else "thread", seconds)

    def push(self) -> None:
        """The tallied figures and the service's own into the metrics (see metrics.py)."""
        if self._push is not None:
            self._push.cancel()
            self._push = None
        self.verifier.publish()
        self.metrics.push()

    def client(self, scope: Scope, headers: RequestHeaders) -> str | None:
        peer = scope.get("client")
        return self.addresses.resolve(
            peer[0] if peer else None, headers.real_ip, headers.forwarded_for
        )

    async def verify(
        self, endpoint: str, secret: str | None, client: str | None, note: dict[str, Any]
    ) -> VerifyResult:
        """The service's answer (MISSING when no key came), counted; raises when the service
        cannot answer (its database is down)."""
        if secret is None:
            result = VerifyResult(False, MISSING)
        else:
            verified = await self.verifier.verify(secret, client)
            self.observe(verified.seconds, verified.inline)
            result = verified.result
        self.count(endpoint, result.code)
        note["key_id"] = result.key_id
        note["code"] = result.code
        return result


def _served(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


def _unavailable(exc: BaseException) -> bool:
    return isinstance(exc, KeytuiError) or is_sqlalchemy_error(exc)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeytuiError):
        return str(exc)
    from keytui.core.db import short_reason

    return short_reason(exc)


TEXT = (b"content-type", b"text/plain; charset=utf-8")
NO_STORE = (b"cache-control", b"no-store")


def _plain(
    status: int, body: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, Headers, bytes]:
    """A small text answer as the ASGI messages need it (what Starlette's ``Response`` builds
    per request, built once per refusal code and cheaply for a valid key)."""
    data = body.encode("ascii")
    return status, [*headers, (b"content-length", str(len(data)).encode()), TEXT], data


def _refusal(code: str) -> tuple[int, Headers, bytes]:
    head = [(b"x-keytui-code", code.encode("ascii"))]
    if code in FORBIDDEN:
        return _plain(403, code + "\n", [*head, NO_STORE])
    challenge = 'Bearer realm="keytui"' + ("" if code == MISSING else ', error="invalid_token"')
    return _plain(
        401, code + "\n", [*head, (b"www-authenticate", challenge.encode("ascii")), NO_STORE]
    )


REFUSALS = {str(code): _refusal(str(code)) for code in VerifyCode if code != VerifyCode.VALID}
REFUSALS[UNAVAILABLE] = _plain(503, UNAVAILABLE + "\n", [(b"x-keytui-code", b"UNAVAILABLE")])


def _valid(result: VerifyResult) -> tuple[int, Headers, bytes]:
    return _plain(
        200,
        "VALID\n",
        [
            (b"x-keytui-code", b"VALID"),
            (b"x-keytui-key-id", (result.key_id or "").encode("ascii")),
            (b"x-keytui-owner", _header_value(result.owner or "").encode("ascii")),
            (b"x-keytui-role", _header_value(result.role or "").encode("ascii")),
            NO_STORE,
        ],
    )


class AuthEndpoint:
    """``/auth`` and below it, any method: 200 with the key's ID, owner and role in
    ``X-Keytui-*`` headers, 401 or 403 with ``X-Keytui-Code``. The body is the code, for people
    reading it by hand. The answer is sent as raw ASGI messages: this is the path gateways
    call for every request they pass, and ``Response`` costs more than the warm verify."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        served: Served = scope["app"].state.served
        note: dict[str, Any] = scope.setdefault("keytui", {})
        headers = read_headers(scope["headers"], served.key_headers)
        client = served.client(scope, headers)
        note["client"] = client
        found = find_key(headers)
        try:
            if isinstance(found, Ambiguous):
                result = VerifyResult(False, VerifyCode.MALFORMED)
                served.count("auth", result.code)
                note["code"] = result.code
            else:
                result = await served.verify("auth", found, client, note)
        except Exception as exc:
            if not _unavailable(exc):
                raise
            log.warning("verify failed, answering 503: %s", _reason(exc))
            note["code"] = UNAVAILABLE
            result = None
        if result is None:
            status, raw, body = REFUSALS[UNAVAILABLE]
        elif result.valid:
            status, raw, body = _valid(result)
        else:
            status, raw, body = REFUSALS[result.code]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` (what was sent is not kept)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def verify_endpoint(request: Request) -> Response:
    """``POST /v1/keys/verify`` with ``{"key": "..."}``: always 200 with ``{valid, code, key_id,
    owner, role, expires_at}`` for a well-formed request; 400 or 413 otherwise."""
    served = _served(request)
    try:
        body = await _read_body(request, served.options.max_body)
    except ClientDisconnect:
        # Not an error of ours: nobody is left to answer. The access line says 499.
        log.debug("client went away before its request body was read")
        return Response(status_code=GONE)
    if body is None:
        return _error(413, f"the body is larger than {served.options.max_body} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        return _error(400, 'the body must be JSON: {"key": "..."}')
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return _error(400, 'the body must be a JSON object with a string "key"')
    note: dict[str, Any] = request.scope.setdefault("keytui", {})
    headers = read_headers(request.scope["headers"])
    client = served.client(request.scope, headers)
    note["client"] = client
    try:
        result = await served.verify("verify", data["key"], client, note)
    except Exception as exc:
        if not _unavailable(exc):
            raise
        log.warning("verify failed, answering 503: %s", _reason(exc))
        note["code"] = UNAVAILABLE
        return _error(503, "the key database is unavailable")
    return JSONResponse(
        {
            "valid": result.valid,
            "code": result.code,
            "key_id": result.key_id,
            "owner": result.owner,
            "role": result.role,
            "expires_at": _iso(result.expires_at),
        },
        headers={"Cache-Control": "no-store"},
    )


async def healthz(request: Request) -> Response:
    """200 when the database answers, 503 when it does not."""
    served = _served(request)
    try:
        await anyio.to_thread.run_sync(served.service.get_settings)
    except Exception as exc:
        if not _unavailable(exc):
            raise
        log.warning("health check: the database does not answer: %s", _reason(exc))
        return JSONResponse({"status": "unavailable"}, 503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    served = _served(request)
    served.push()  # this worker's own figures up to now; the others' within PUSH_SECONDS
    body = await anyio.to_thread.run_sync(served.metrics.render)
    return Response(body, 200, media_type=CONTENT_TYPE)


async def reference(_request: Request) -> Response:
    """The bench's reference: the same stack, no keytui."""
    return Response("OK\n", 200, media_type="text/plain")


class Guard:
    """The outermost layer: refuses oversized requests (431, 413) before any work, writes one
    access line per request (the key's ID or ``-``, never a secret), and turns an unexpected
    error into a plain 500 with a log line that names the error's type and where it was raised,
    never its message (which may quote what the client sent)."""

    def __init__(self, app: ASGIApp, options: ServeOptions) -> None:
        self.app = app
        self.options = options

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        note: dict[str, Any] = scope.setdefault("keytui", {})
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                'started "%s %s"', _loggable(scope.get("method", "")), _loggable(scope["path"])
            )
        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                status = refusal.status_code
                await refusal(scope, receive, send)
            else:
                await self.app(scope, receive, sending)
        except Exception as exc:
            log.error(
                "internal error (%s) on %s %s:\n%s",
                type(exc).__name__,
                _loggable(scope.get("method", "")),
                _loggable(scope.get("path", "")),
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            if status == 0:
                status = 500
                await JSONResponse({"error": "internal error"}, 500)(scope, receive, send)
        finally:
            self._log(scope, note, status, time.perf_counter() - start)

    def _refusal(self, scope: Scope) -> Response | None:
        size = 0
        length: bytes | None = None
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == b"content-length":
                length = value
        if size > self.options.max_header_bytes:
            return _error(431, f"the headers are larger than {self.options.max_header_bytes} bytes")
        if length is not None:
            if not length.isdigit():
                return _error(400, "a bad Content-Length")
            if int(length) > self.options.max_body:
                return _error(413, f"the body is larger than {self.options.max_body} bytes")
        return None

    def _log(self, scope: Scope, note: dict[str, Any], status: int, seconds: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = note.get("client")
        if client is None:
            peer = scope.get("client")
            client = peer[0] if peer else "-"
        access_log.info(
            '%s %s "%s %s" %d %s %.2fms',
            client,
            note.get("key_id") or "-",
            _loggable(scope.get("method", "")),
            _loggable(scope.get("path", "")),
            status,
            note.get("code") or "-",
            seconds * 1000,
        )


def make_app(
    options: ServeOptions,
    *,
    open_service: Callable[[], KeyService] | None = None,
) -> ASGIApp:
    """The app for ``options``. ``open_service`` (tests) replaces opening ``options.db``."""

    def opener() -> KeyService:
        if open_service is not None:
            return open_service()
        return KeyService.open(options.db, face="api")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service = await anyio.to_thread.run_sync(opener)
        served = app.state.served = Served(options, service, Metrics())
        flusher = asyncio.get_running_loop().create_task(_flush_regularly(service))
        try:
            yield
        finally:
            served.push()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            # After the server has finished its in-flight requests: the last usage counts.
            await anyio.to_thread.run_sync(service.close)

    auth = AuthEndpoint()
    routes = [
        Route("/auth", auth),
        # Envoy's ext_authz puts its path_prefix before the request's own path.
        Route("/auth/{path:path}", auth),
        Route("/v1/keys/verify", verify_endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if options.reference_route:
        routes.append(Route("/reference", reference))
    return Guard(Starlette(routes=routes, lifespan=lifespan), options)


async def _flush_regularly(service: KeyService) -> None:
    """Write usage counts from a thread every few seconds, so a verify on the event loop is
    never the one that has to (the service flushes from inside verify when a batch is due)."""
    while True:
        await anyio.sleep(FLUSH_SECONDS)
        try:
            await anyio.to_thread.run_sync(service.flush_usage)
        except Exception as exc:  # the service keeps the counts for its next try
            reason = _reason(exc) if _unavailable(exc) else type(exc).__name__
            log.warning("usage counts not written yet: %s", reason)


def app_from_env() -> ASGIApp:
    """uvicorn's factory in each worker: the options the parent put in the environment."""
    return make_app(ServeOptions.from_env())
