"""``keytui users``: who may use keytui on this database, and as what."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..core.validate import USER_ROLES
from .common import KeytuiGroup, db_option, emit_json, json_option, pass_service, safe

if TYPE_CHECKING:
    from ..core.service import KeyService


@click.group(cls=KeytuiGroup)
def users() -> None:
    """Who may use keytui on this database, and as what (admin, developer, viewer)."""


@users.command("list")
@db_option
@json_option
@pass_service
def users_list(service: KeyService, as_json: bool) -> None:
    found = service.list_users()
    if as_json:
        emit_json([user.to_json() for user in found])
        return
    for user in found:
        click.echo(f"{safe(user.login):<24}{user.role}")


@users.command("add")
@db_option
@click.argument("login")
@click.option("--role", required=True, type=click.Choice(USER_ROLES))
@pass_service
def users_add(service: KeyService, login: str, role: str) -> None:
    user = service.add_user(login, role)
    click.echo(f"Added {safe(user.login)} as {user.role}.")


@users.command("set-role")
@db_option
@click.argument("login")
@click.argument("role", type=click.Choice(USER_ROLES))
@pass_service
def users_set_role(service: KeyService, login: str, role: str) -> None:
    user = service.set_user_role(login, role)
    click.echo(f"{safe(user.login)} is now {user.role}.")


@users.command("remove")
@db_option
@click.argument("login")
@click.option(
    "--revoke-keys",
    is_flag=True,
    help="Also revoke their active keys, in the same transaction (removing a user alone "
    "leaves their keys working).",
)
@pass_service
def users_remove(service: KeyService, login: str, revoke_keys: bool) -> None:
    active = service.remove_user(login, revoke_keys=revoke_keys)
    who = safe(login)
    keys = f"{active} active key{'' if active == 1 else 's'}"
    if revoke_keys:
        click.echo(f"Removed {who} and revoked their {keys}.")
    elif active:
        click.echo(
            f"Removed {who}. Their {keys} still work; see them with: "
            f"keytui keys list --owner {who} --status active"
        )
    else:
        click.echo(f"Removed {who} (no active keys).")
