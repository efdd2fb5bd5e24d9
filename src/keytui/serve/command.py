"""``keytui serve``: the click command. Parses and checks the options, opens the database once
(so a bad URL or an unreachable server is one line and exit 1, before any worker starts, and
migrations run once, not once per worker), then hands over to the runner."""

from __future__ import annotations

from typing import Any

import click

from .options import ServeOptions, parse_header_name, parse_listen, parse_network


def _listen(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, int]:
    try:
        return parse_listen(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _networks(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    try:
        return tuple(parse_network(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _headers(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    try:
        return tuple(dict.fromkeys(parse_header_name(value) for value in values))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("serve")
@click.option(
    "--db",
    metavar="PATH_OR_URL",
    help="SQLite file or database URL (default: $KEYTUI_DATABASE_URL, "
    "else keytui.db in your data directory).",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default="127.0.0.1:8080",
    show_default=True,
    callback=_listen,
    help="Where to listen; [::1]:8080 for IPv6, :8080 for every interface.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    help="Worker processes, each with its own connection to the database "
    "[default: the number of cores].",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    metavar="CIDR",
    multiple=True,
    callback=_networks,
    help="A gateway whose X-Real-IP / X-Forwarded-For name the client (repeatable). "
    "From any other peer those headers are ignored.",
)
@click.option(
    "--key-header",
    "key_headers",
    metavar="NAME",
    multiple=True,
    callback=_headers,
    help="Also read the key from this header, after x-api-key and Authorization (repeatable).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="info logs one access line per request (the key's ID, never the key).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    db: str | None,
    listen: tuple[str, int],
    workers: int | None,
    trusted_proxies: tuple[str, ...],
    key_headers: tuple[str, ...],
    log_level: str,
) -> None:
    """Verify keys over HTTP, for gateways and services.

    \b
    /auth              any method; the key from x-api-key, Authorization: Bearer KEY,
                       Authorization: KEY or --key-header. 200 with X-Keytui-Key-Id,
                       X-Keytui-Owner, X-Keytui-Role; 401 (no valid key) or 403 (host not
                       allowed, keys disabled) with X-Keytui-Code. For nginx auth_request,
                       Traefik forwardAuth, Caddy forward_auth, Envoy ext_authz.
    POST /v1/keys/verify  {"key": "..."} -> 200 {valid, code, key_id, owner, role, expires_at}
    GET /healthz       200 when the database answers, else 503
    GET /metrics       Prometheus text

    Expose it to your gateway only, and terminate TLS at the gateway. SIGTERM stops it
    gracefully: requests in flight finish and usage counts are written.
    """
    try:
        from . import app, runner  # noqa: F401 - uvicorn, starlette, prometheus-client
    except ImportError:  # pragma: no cover - the extra is missing
        raise click.ClickException(
            "keytui serve needs its extra: pip install 'keytui[serve]'"
        ) from None
    root: Any = ctx.find_root().obj
    target = db or getattr(root, "db", None)  # `keytui --db X serve` works too
    _check_database(target)
    host, port = listen
    options = ServeOptions(
        db=target,
        host=host,
        port=port,
        workers=workers or runner.default_workers(),
        trusted_proxies=trusted_proxies,
        key_headers=key_headers,
        log_level=log_level,
    )
    try:
        runner.run(options)
    except runner.ListenError as exc:
        raise click.ClickException(str(exc)) from None


def _check_database(target: str | None) -> None:
    """Open (create, migrate) the database once in the parent; KeytuiError on failure."""
    from keytui.core.db import access_warning
    from keytui.core.service import KeyService

    service = KeyService.open(target, face="api")
    try:
        path = service.db.sqlite_path
        warning = access_warning(path) if path is not None else None
        if warning:
            click.echo(f"keytui: warning: {warning}", err=True)
        click.echo(f"keytui: serving the keys of {service.db.display}", err=True)
    finally:
        service.close()
