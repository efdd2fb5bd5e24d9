"""``keytui verify``: check a secret read from stdin, as a service would."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .common import db_option, emit_json, fail, json_option, pass_service, safe

if TYPE_CHECKING:
    from ..core.service import KeyService


@click.command("verify")
@db_option
@click.option("--host", help="The caller's host name or IP, checked against allowed hosts.")
@json_option
@pass_service
def verify_command(service: KeyService, host: str | None, as_json: bool) -> None:
    """Verify the secret read from stdin. Exit 0 if valid, 1 if rejected."""
    if sys.stdin is None:  # started with stdin closed (<&-)
        fail("verify reads the secret from stdin, which is closed", 2)
    if sys.stdin.isatty():
        click.echo("Paste the secret and press Enter:", err=True)
    try:
        secret = sys.stdin.readline(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the secret from stdin: {type(exc).__name__}", 2)
    result = service.verify(secret, host=host)
    if as_json:
        emit_json(result.to_json())
    elif result.valid:
        click.echo(f"VALID key {result.key_id} owner {safe(result.owner)} role {safe(result.role)}")
    else:
        click.echo(result.code + (f" key {result.key_id}" if result.key_id else ""))
    sys.exit(0 if result.valid else 1)
