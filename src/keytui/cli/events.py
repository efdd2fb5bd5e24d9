"""``keytui events``: the audit log, and a walk of its hash chain."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

from ..core.values import EVENT_ACTIONS, MAX_PAGE
from .common import (
    KEY_ID,
    KeytuiGroup,
    State,
    db_option,
    emit_json,
    fail,
    fit,
    json_option,
    pass_service,
    pass_state,
    safe,
    when,
)

if TYPE_CHECKING:
    from ..core.service import KeyService


def complete_action(
    _ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    return [CompletionItem(action) for action in EVENT_ACTIONS if incomplete in action]


@click.group(cls=KeytuiGroup, invoke_without_command=True)
@db_option
@click.option(
    "--key",
    "key_id",
    type=KEY_ID,
    metavar="ID",
    help="Only the events of this key (an ID, its start, or a secret).",
)
@click.option(
    "--action",
    shell_complete=complete_action,
    help="Only actions containing this text (e.g. revoke); the actions: "
    + ", ".join(EVENT_ACTIONS)
    + ".",
)
@click.option("--limit", type=click.IntRange(min=1, max=MAX_PAGE), default=50, show_default=True)
@json_option
@click.pass_context
@pass_state
def events(
    state: State,
    ctx: click.Context,
    key_id: str | None,
    action: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return  # the subcommand opens the service, after its own --db
    found = state.service().list_events(key_id=key_id, action=action, limit=limit)
    if as_json:
        emit_json([event.to_json() for event in found])
        return
    for event in found:
        details = json.dumps(event.details, ensure_ascii=True, sort_keys=True)
        if event.damaged:
            details += f"  (damaged: {', '.join(event.damaged)})"
        click.echo(
            f"{when(event.at)}  {fit(event.actor, 12):<12}  {safe(event.action):<16}  "
            f"{safe(event.key_id or '-'):<10}  {safe(event.face):<4}  {details}"
        )


@events.command("verify")
@db_option
@json_option
@pass_service
def events_verify(service: KeyService, as_json: bool) -> None:
    """Walk the hash-chained audit log; exit 1 naming the first altered, removed or reordered
    event."""
    status = service.verify_event_chain()
    if as_json:
        emit_json(
            {
                "ok": status.ok,
                "count": status.count,
                "first_bad_id": status.first_bad_id,
                "reason": status.reason,
                "last_hash": status.last_hash,
            }
        )
    if not status.ok:
        fail(status.message(), 1)
    if not as_json:
        click.echo(status.message())
