"""``keytui``: the root command. Without a subcommand it opens the full-screen app."""

from __future__ import annotations

import click

from ..serve.command import serve as serve_command
from .common import KeytuiGroup, State, db_option
from .demo import demo
from .events import events
from .keys import keys
from .roles import roles
from .scan import scan_command
from .settings import settings
from .users import users
from .verify import verify_command


@click.group(
    cls=KeytuiGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@db_option
@click.option("--read-only", is_flag=True, help="Open the app with every changing action hidden.")
@click.version_option(package_name="keytui")
@click.pass_context
def main(ctx: click.Context, read_only: bool) -> None:
    """Manage API keys: generate, list, rotate, revoke, delete, audit and verify.

    Run without a command to open the full-screen app.
    """
    state = ctx.ensure_object(State)
    state.read_only = read_only
    if ctx.invoked_subcommand is None:
        from ..tui.run import run_app

        run_app(state.db, read_only=read_only)


for command in (
    keys,
    verify_command,
    scan_command,
    users,
    roles,
    settings,
    events,
    demo,
    serve_command,
):
    main.add_command(command)
