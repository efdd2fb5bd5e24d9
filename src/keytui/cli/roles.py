"""``keytui roles``: the roles a key can grant its callers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import KeytuiGroup, db_option, emit_json, json_option, pass_service, safe

if TYPE_CHECKING:
    from ..core.service import KeyService


@click.group(cls=KeytuiGroup)
def roles() -> None:
    """The roles a key can grant its callers."""


@roles.command("list")
@db_option
@json_option
@pass_service
def roles_list(service: KeyService, as_json: bool) -> None:
    found = service.list_roles()
    if as_json:
        emit_json(found)
    else:
        for name in found:
            click.echo(safe(name))


@roles.command("add")
@db_option
@click.argument("name")
@pass_service
def roles_add(service: KeyService, name: str) -> None:
    click.echo(f"Added key role {safe(service.add_role(name))}.")


@roles.command("remove")
@db_option
@click.argument("name")
@pass_service
def roles_remove(service: KeyService, name: str) -> None:
    service.remove_role(name)
    click.echo(f"Removed key role {safe(name)}.")
