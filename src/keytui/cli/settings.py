"""``keytui settings``: keys enabled, maximum expiry, maximum keys per user, require a reason."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..core.errors import InvalidInput
from ..core.values import UNSET, SettingsInfo
from .common import KeytuiGroup, State, db_option, emit_json, json_option, pass_service, pass_state

if TYPE_CHECKING:
    from ..core.service import KeyService


@click.group(cls=KeytuiGroup)
def settings() -> None:
    """Installation settings: keys enabled, maximum expiry, maximum keys per user, whether a
    reason is required."""


def print_settings(current: SettingsInfo, as_json: bool) -> None:
    if as_json:
        emit_json(current.to_json())
        return
    click.echo(f"keys enabled:       {'yes' if current.keys_enabled else 'no'}")
    click.echo(f"max expiry (days):  {current.max_expiry_days or 'none'}")
    click.echo(f"max keys per user:  {current.max_keys_per_user}")
    click.echo(f"require a reason:   {'yes' if current.require_reason else 'no'}")


@settings.command("show")
@db_option
@json_option
@pass_service
def settings_show(service: KeyService, as_json: bool) -> None:
    print_settings(service.get_settings(), as_json)


def parse_days(_ctx: click.Context, _param: click.Parameter, value: str | None) -> int | str | None:
    if value is None:
        return None
    if value.strip().lower() in ("none", "never", "unlimited"):
        return "none"
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter("a number of days, or none") from None


@settings.command("set")
@db_option
@click.option("--enable/--disable", "enabled", default=None, help="Switch API keys on or off.")
@click.option("--max-expiry-days", callback=parse_days, metavar="N|none")
@click.option("--max-keys-per-user", type=int, metavar="N")
@click.option(
    "--require-reason/--no-require-reason",
    "require_reason",
    default=None,
    help="Refuse revoke, replace and delete without a reason (--reason, the app's reason box).",
)
@json_option
@pass_state
def settings_set(
    state: State,
    enabled: bool | None,
    max_expiry_days: int | str | None,
    max_keys_per_user: int | None,
    require_reason: bool | None,
    as_json: bool,
) -> None:
    """Change installation settings (admins only)."""
    if (
        enabled is None
        and max_expiry_days is None
        and max_keys_per_user is None
        and require_reason is None
    ):
        raise InvalidInput("nothing to set; see: keytui settings set --help")
    expiry: Any = (
        UNSET
        if max_expiry_days is None
        else (None if max_expiry_days == "none" else max_expiry_days)
    )
    current = state.service().update_settings(
        keys_enabled=enabled,
        max_expiry_days=expiry,
        max_keys_per_user=max_keys_per_user,
        require_reason=require_reason,
    )
    print_settings(current, as_json)
