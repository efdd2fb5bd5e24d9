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
    """Every key role; those developers may grant are marked."""
    found = service.list_role_grants()
    if as_json:
        emit_json([name for name, _ in found])
    else:
        for name, developers in found:
            click.echo(safe(name) + ("  (developers may grant it)" if developers else ""))


@roles.command("add")
@db_option
@click.argument("name")
@click.option("--developers", is_flag=True, help="Developers may create keys with it too.")
@pass_service
def roles_add(service: KeyService, name: str, developers: bool) -> None:
    added = service.add_role(name, developers=developers)
    who = "admins and developers" if developers else "admins only"
    click.echo(f"Added key role {safe(added)} (granted by {who}).")


@roles.command("set")
@db_option
@click.argument("name")
@click.option(
    "--developers/--no-developers",
    required=True,
    help="Whether developers may create keys with this role (admins always may).",
)
@pass_service
def roles_set(service: KeyService, name: str, developers: bool) -> None:
    """Let developers grant a key role, or stop them (keys made with it keep it)."""
    service.set_role_developers(name, developers)
    may = "may" if developers else "may no longer"
    click.echo(f"Developers {may} create keys with the role {safe(name)}.")


@roles.command("remove")
@db_option
@click.argument("name")
@pass_service
def roles_remove(service: KeyService, name: str) -> None:
    service.remove_role(name)
    click.echo(f"Removed key role {safe(name)}.")
