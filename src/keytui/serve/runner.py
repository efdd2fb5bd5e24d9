"""Runs the app on uvicorn: the listening socket, the workers, logging, a graceful stop.

The parent binds the socket once (a clear error when it cannot) and, with several workers,
hands it to uvicorn's supervisor, which starts them as separate processes (``spawn``): each
builds the app from the options put in its environment and opens its own ``KeyService``. On
SIGTERM or SIGINT uvicorn stops accepting, lets in-flight requests finish (up to
``graceful_seconds``), then runs the app's shutdown, which closes the service and so writes its
last usage counts. The parent waits for every worker.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from .metrics import MULTIPROCESS_ENV
from .options import ENV, ServeOptions

log = logging.getLogger("keytui.serve")


class ListenError(Exception):
    """The address cannot be listened on; the message says which and why."""


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def log_config(level: str) -> dict[str, Any]:
    """Our own lines, uvicorn's too; uvicorn's access log is off (ours names the key ID)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
            "access": {"format": "%(asctime)s [%(process)d] %(message)s"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "plain",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "keytui.serve": {"handlers": ["stderr"], "level": level, "propagate": False},
            "keytui.serve.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def run(options: ServeOptions) -> None:
    """Serve until SIGTERM or SIGINT. Raises ListenError before anything starts."""
    sock = bind(options.host, options.port)
    metrics_dir: str | None = None
    try:
        common: dict[str, Any] = dict(
            loop="auto",  # uvloop and httptools when installed (the serve extra brings them)
            http="auto",
            lifespan="on",
            access_log=False,
            # uvicorn's own proxy-header handling (on by default, trusting 127.0.0.1) would put
            # the client's X-Forwarded-For in place of the peer before keytui sees it: a
            # client could then name an allowed host through a gateway on the same machine.
            # keytui reads those headers itself, from --trusted-proxy peers only.
            proxy_headers=False,
            server_header=False,
            log_config=log_config(options.log_level),
            timeout_graceful_shutdown=options.graceful_seconds,
            # Longer than a gateway keeps an idle upstream connection (nginx: 60 s), so the
            # gateway, not keytui, closes it and never sends on a connection being closed.
            timeout_keep_alive=75,
        )
        if options.workers > 1:
            # Each worker writes its metrics to files here; a scrape adds them all up.
            metrics_dir = tempfile.mkdtemp(prefix="keytui-serve-metrics-")
            os.environ[MULTIPROCESS_ENV] = metrics_dir
            os.environ[ENV] = options.to_env()
            config = uvicorn.Config(
                "keytui.serve.app:app_from_env", factory=True, workers=options.workers, **common
            )
            _announce(sock, options)
            Multiprocess(config, sockets=[sock]).run()
        else:
            os.environ.pop(MULTIPROCESS_ENV, None)  # one process: plain in-memory metrics
            from .app import make_app

            config = uvicorn.Config(make_app(options), **common)
            server = uvicorn.Server(config)
            _announce(sock, options)
            # uvicorn handles SIGTERM while it serves, then raises it again under the handler
            # that was there before: this one, so a graceful stop ends with exit 0 as with
            # several workers (where the parent exits normally).
            previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
            try:
                server.run(sockets=[sock])
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _announce(sock: socket.socket, options: ServeOptions) -> None:
    host, port = sock.getsockname()[:2]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    log.info(
        "listening on http://%s with %d worker%s",
        where,
        options.workers,
        "" if options.workers == 1 else "s",
    )
