"""The ``keytui`` command line: a thin face over KeyService.

It parses, confirms and prints; every rule is the service's. Exit codes: 0 done, 1 refused by a
rule (one line on stderr says why), 2 bad usage or input. Secrets are never read from argv:
``verify`` reads stdin, and create/replace print the new secret alone on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click

from .core.errors import InvalidInput, KeytuiError, is_sqlalchemy_error
from .core.validate import visible
from .serve.command import serve as serve_command

FACE = "cli"


# -- output helpers ------------------------------------------------------------------------------


safe = visible  # text from the database, made harmless for a terminal


def fit(text: str, width: int) -> str:
    text = safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def when(value: datetime | None, *, empty: str = "-") -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else empty


def day(value: datetime | None, *, empty: str = "never") -> str:
    return value.strftime("%Y-%m-%d") if value else empty


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=True))


def fail(message: str, code: int = 1) -> None:
    click.echo(f"keytui: {safe(message)}", err=True)
    sys.exit(code)


# -- the service, opened once per command ----------------------------------------------------


class State:
    def __init__(self) -> None:
        self.db: str | None = None
        self.read_only = False
        self._service = None

    @property
    def service(self):
        if self._service is None:
            from .core.service import KeyService

            self._service = KeyService.open(self.db, face=FACE)
            path = self._service.db.sqlite_path
            from .core.db import world_readable

            if path is not None and world_readable(path):
                click.echo(
                    f"keytui: warning: {path} is readable by other users; run: chmod 600 {path}",
                    err=True,
                )
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()
            self._service = None


def state() -> State:
    return click.get_current_context().find_root().ensure_object(State)


def set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.find_root().ensure_object(State).db = value
    return value


def db_option(command: Callable) -> Callable:
    """Every command takes ``--db PATH_OR_URL`` (also accepted before the command)."""
    return click.option(
        "--db",
        metavar="PATH_OR_URL",
        expose_value=False,
        callback=set_db,
        is_eager=True,
        help="SQLite file or database URL (default: $KEYTUI_DATABASE_URL, "
        "else keytui.db in your data directory).",
    )(command)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def confirm(action: str, yes: bool, detail: str) -> None:
    """Destructive commands ask on a terminal and need ``--yes`` without one."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{action} needs --yes when not run from a terminal", 2)
    click.echo(detail, err=True)
    if not click.confirm(f"{action.capitalize()}?", default=False, err=True):
        fail("cancelled, nothing changed", 1)


class KeytuiGroup(click.Group):
    """Turns the service's refusals into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeytuiError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            if not is_sqlalchemy_error(exc):
                raise
            from .core.db import short_reason

            fail(f"database error: {short_reason(exc)}", 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)
        finally:
            obj = ctx.find_root().obj
            if isinstance(obj, State) and ctx.parent is None:
                obj.close()

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Usage errors in one line too: what was wrong, and where the help is."""
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "keytui"
            fail(f"{exc.format_message()} (see: {command} --help)", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("cancelled, nothing changed", 1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


# -- commands ------------------------------------------------------------------------------------


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
    ctx.ensure_object(State).read_only = read_only
    if ctx.invoked_subcommand is None:
        from .tui.run import run_app

        run_app(state().db, read_only=read_only)


@main.group(cls=KeytuiGroup)
def keys() -> None:
    """Generate, list, show, rename, replace, revoke and delete keys."""


KEY_COLUMNS = (
    ("ID", 10),
    ("NAME", 28),
    ("OWNER", 12),
    ("ROLE", 12),
    ("STATUS", 8),
    ("EXPIRES", 10),
    ("LAST USED", 16),
)


def key_row(key) -> str:
    cells = (
        key.id,
        key.name,
        key.owner,
        key.role,
        key.status,
        day(key.expires_at),
        when(key.last_used_at),
    )
    return "  ".join(
        fit(cell, width).ljust(width) for cell, (_, width) in zip(cells, KEY_COLUMNS, strict=True)
    ).rstrip()


def describe(key) -> str:
    rows = [
        ("ID", key.id),
        ("Name", key.name),
        ("Description", key.description or "-"),
        ("Owner", key.owner),
        ("Role", key.role),
        ("Status", key.status),
        ("Created", when(key.created_at)),
        ("Updated", when(key.updated_at)),
        ("Expires", when(key.expires_at, empty="never")),
        ("Revoked", f"{when(key.revoked_at)} by {key.revoked_by}" if key.revoked_at else "-"),
        ("Last used", when(key.last_used_at, empty="never")),
        ("Uses", key.use_count),
        ("Allowed hosts", ", ".join(key.allowed_hosts) or "any"),
    ]
    return "\n".join(f"{label + ':':<15}{safe(value)}" for label, value in rows)


@keys.command("list")
@db_option
@click.option("--search", default="", help="Match name, ID or owner.")
@click.option("--status", type=click.Choice(["active", "expired", "revoked"]))
@click.option("--owner", metavar="LOGIN")
@click.option(
    "--sort",
    default="created_at",
    show_default=True,
    type=click.Choice(
        [
            "name",
            "key_id",
            "owner",
            "role",
            "created_at",
            "updated_at",
            "expires_at",
            "last_used_at",
            "status",
        ]
    ),
)
@click.option("--asc", is_flag=True, help="Ascending order (default: descending).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many keys.")
@json_option
def keys_list(search, status, owner, sort, asc, limit, as_json) -> None:
    """List keys, newest first, fetched page by page."""
    from itertools import islice

    from .core.service import KeyQuery

    query = KeyQuery(search=search, status=status, owner=owner, sort=sort, descending=not asc)
    found = state().service.iter_keys(query, page_size=min(limit or 500, 500))
    if limit:
        found = islice(found, limit)
    if as_json:
        click.echo("[", nl=False)
        for index, key in enumerate(found):
            click.echo(("," if index else "") + "\n  " + json.dumps(key.to_json()), nl=False)
        click.echo("\n]")
        return
    header = "  ".join(title.ljust(width) for title, width in KEY_COLUMNS).rstrip()
    count = 0
    for key in found:
        if not count:
            click.echo(header)
        click.echo(key_row(key))
        count += 1
    if not count:
        click.echo("no keys match", err=True)


@keys.command("create")
@db_option
@click.option("--name", required=True, help="1-100 printable characters.")
@click.option("--description", default="")
@click.option("--owner", metavar="LOGIN", help="Admins may create keys for others.")
@click.option("--role", metavar="ROLE", help="A key role (see: keytui roles list).")
@click.option(
    "--expires",
    metavar="YYYY-MM-DD|Nd|never",
    help="Default: the installation's maximum expiry, or never.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="Host name, IP or CIDR; repeat for more. None means any host.",
)
@json_option
def keys_create(name, description, owner, role, expires, allowed_hosts, as_json) -> None:
    """Create a key. Its secret is printed once, alone on stdout."""
    from .core.service import DEFAULT_EXPIRY

    issued = state().service.create_key(
        name,
        description=description,
        owner=owner,
        role=role,
        expires=DEFAULT_EXPIRY if expires is None else expires,
        allowed_hosts=allowed_hosts,
    )
    print_issued(issued, "Created", as_json)


def print_issued(issued, verb: str, as_json: bool) -> None:
    key = issued.key
    if as_json:
        emit_json({**key.to_json(), "secret": issued.secret})
        return
    click.echo(
        f"{verb} key {key.id} {safe(key.name)!r} (owner {safe(key.owner)}, role "
        f"{safe(key.role)}, expires {day(key.expires_at)}). The secret below is shown "
        "once; store it now:",
        err=True,
    )
    click.echo(issued.secret)


@keys.command("show")
@db_option
@click.argument("key_id")
@json_option
def keys_show(key_id, as_json) -> None:
    """Every field of one key."""
    key = state().service.get_key(key_id)
    if as_json:
        emit_json(key.to_json())
    else:
        click.echo(describe(key))


@keys.command("rename")
@db_option
@click.argument("key_id")
@click.argument("name")
@click.option("--description", help="Also set the description.")
@json_option
def keys_rename(key_id, name, description, as_json) -> None:
    """Give a key a new name (and description)."""
    key = state().service.rename_key(key_id, name, description)
    if as_json:
        emit_json(key.to_json())
    else:
        click.echo(f"Renamed key {key.id} to {safe(key.name)!r}.")


@keys.command("replace")
@db_option
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask.")
@json_option
def keys_replace(key_id, yes, as_json) -> None:
    """Issue a new secret for a key; the old secret stops working at once."""
    service = state().service
    key = service.get_key(key_id)
    confirm(
        "replace",
        yes,
        f"Replacing key {key.id} {safe(key.name)!r} takes effect at once: "
        "apps using the old secret will fail.",
    )
    print_issued(service.replace_key(key.id), "Replaced", as_json)


@keys.command("revoke")
@db_option
@click.argument("key_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask.")
@json_option
def keys_revoke(key_ids, yes, as_json) -> None:
    """Revoke keys, irreversibly. Keys that are not active are skipped and reported."""
    service = state().service
    if not yes:
        plan = service.plan_revoke(key_ids)
        lines = [f"Revoking is irreversible. {len(plan.revoke)} key(s) will be revoked:"]
        lines += [f"  {key.id}  {safe(key.name)}" for key in plan.revoke]
        lines += [f"  skip {s.id}: {safe(s.reason)}" for s in plan.skipped]
        if not plan.revoke:
            report_skipped(plan.skipped)
            sys.exit(1)
        confirm(f"revoke {len(plan.revoke)} key(s)", yes, "\n".join(lines))
    result = service.revoke_keys(key_ids)
    if as_json:
        emit_json(
            {
                "revoked": [key.to_json() for key in result.revoke],
                "skipped": [{"id": s.id, "reason": s.reason} for s in result.skipped],
            }
        )
    else:
        for key in result.revoke:
            click.echo(f"Revoked key {key.id} {safe(key.name)!r}.")
        report_skipped(result.skipped)
    if result.skipped:
        sys.exit(1)


def report_skipped(skipped) -> None:
    """One line, however many were skipped: each ID with its reason."""
    if skipped:
        items = ", ".join(f"{safe(item.id) or repr('')} ({safe(item.reason)})" for item in skipped)
        click.echo(f"keytui: skipped {len(skipped)}: {items}", err=True)


@keys.command("delete")
@db_option
@click.argument("key_ids", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask.")
def keys_delete(key_ids, yes) -> None:
    """Remove keys entirely (all or none). Their events stay in the log."""
    service = state().service
    found = [service.get_key(key_id) for key_id in key_ids]
    confirm(
        f"delete {len(found)} key(s)",
        yes,
        "Deleting removes these keys entirely:\n"
        + "\n".join(f"  {key.id}  {safe(key.name)}" for key in found),
    )
    for key in service.delete_keys([key.id for key in found]):
        click.echo(f"Deleted key {key.id} {safe(key.name)!r}.")


@main.command("verify")
@db_option
@click.option("--host", help="The caller's host name or IP, checked against allowed hosts.")
@json_option
def verify_command(host, as_json) -> None:
    """Verify the secret read from stdin. Exit 0 if valid, 1 if rejected."""
    if sys.stdin.isatty():
        click.echo("Paste the secret and press Enter:", err=True)
    secret = sys.stdin.readline(4096).strip()
    result = state().service.verify(secret, host=host)
    if as_json:
        emit_json(result.to_json())
    elif result.valid:
        click.echo(f"VALID key {result.key_id} owner {safe(result.owner)} role {safe(result.role)}")
    else:
        click.echo(result.code + (f" key {result.key_id}" if result.key_id else ""))
    sys.exit(0 if result.valid else 1)


@main.group(cls=KeytuiGroup)
def users() -> None:
    """Who may use keytui on this database, and as what (admin, developer, viewer)."""


@users.command("list")
@db_option
@json_option
def users_list(as_json) -> None:
    found = state().service.list_users()
    if as_json:
        emit_json(
            [
                {"login": u.login, "role": u.role, "created_at": u.created_at.isoformat()}
                for u in found
            ]
        )
        return
    for user in found:
        click.echo(f"{safe(user.login):<24}{user.role}")


@users.command("add")
@db_option
@click.argument("login")
@click.option("--role", required=True, type=click.Choice(["admin", "developer", "viewer"]))
def users_add(login, role) -> None:
    user = state().service.add_user(login, role)
    click.echo(f"Added {safe(user.login)} as {user.role}.")


@users.command("set-role")
@db_option
@click.argument("login")
@click.argument("role", type=click.Choice(["admin", "developer", "viewer"]))
def users_set_role(login, role) -> None:
    user = state().service.set_user_role(login, role)
    click.echo(f"{safe(user.login)} is now {user.role}.")


@users.command("remove")
@db_option
@click.argument("login")
def users_remove(login) -> None:
    state().service.remove_user(login)
    click.echo(f"Removed {safe(login)}.")


@main.group(cls=KeytuiGroup)
def roles() -> None:
    """The roles a key can grant its callers."""


@roles.command("list")
@db_option
@json_option
def roles_list(as_json) -> None:
    found = state().service.list_roles()
    if as_json:
        emit_json(found)
    else:
        for name in found:
            click.echo(safe(name))


@roles.command("add")
@db_option
@click.argument("name")
def roles_add(name) -> None:
    click.echo(f"Added key role {safe(state().service.add_role(name))}.")


@roles.command("remove")
@db_option
@click.argument("name")
def roles_remove(name) -> None:
    state().service.remove_role(name)
    click.echo(f"Removed key role {safe(name)}.")


@main.group(cls=KeytuiGroup)
def settings() -> None:
    """Installation settings: keys enabled, maximum expiry, maximum keys per user."""


def print_settings(current, as_json: bool) -> None:
    if as_json:
        emit_json(current.to_json())
        return
    click.echo(f"keys enabled:       {'yes' if current.keys_enabled else 'no'}")
    click.echo(f"max expiry (days):  {current.max_expiry_days or 'none'}")
    click.echo(f"max keys per user:  {current.max_keys_per_user}")


@settings.command("show")
@db_option
@json_option
def settings_show(as_json) -> None:
    print_settings(state().service.get_settings(), as_json)


def parse_days(_ctx, _param, value: str | None):
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
@json_option
def settings_set(enabled, max_expiry_days, max_keys_per_user, as_json) -> None:
    """Change installation settings (admins only)."""
    from .core.service import UNSET

    if enabled is None and max_expiry_days is None and max_keys_per_user is None:
        raise InvalidInput("nothing to set; see: keytui settings set --help")
    expiry = (
        UNSET
        if max_expiry_days is None
        else (None if max_expiry_days == "none" else max_expiry_days)
    )
    current = state().service.update_settings(
        keys_enabled=enabled, max_expiry_days=expiry, max_keys_per_user=max_keys_per_user
    )
    print_settings(current, as_json)


@main.group(cls=KeytuiGroup, invoke_without_command=True)
@db_option
@click.option("--key", "key_id", metavar="ID", help="Only this key's events.")
@click.option("--action", help="Only actions containing this text (e.g. revoke).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
@click.pass_context
def events(ctx, key_id, action, limit, as_json) -> None:
    """The audit log, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    found = state().service.list_events(key_id=key_id, action=action, limit=limit)
    if as_json:
        emit_json([event.to_json() for event in found])
        return
    for event in found:
        details = json.dumps(event.details, ensure_ascii=True, sort_keys=True)
        click.echo(
            f"{when(event.at)}  {fit(event.actor, 12):<12}  {safe(event.action):<16}  "
            f"{safe(event.key_id or '-'):<10}  {safe(event.face):<4}  {details}"
        )


@events.command("verify")
@db_option
@json_option
def events_verify(as_json) -> None:
    """Walk the hash-chained audit log; exit 1 naming the first altered, removed or reordered
    event."""
    status = state().service.verify_event_chain()
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


@main.command("demo")
@click.option(
    "--keys",
    "count",
    type=click.IntRange(min=0, max=2_000_000),
    default=200,
    show_default=True,
    help="How many demo keys to seed.",
)
@click.option(
    "--db",
    "db_path",
    metavar="PATH",
    help="Keep the demo database here (default: a throwaway file).",
)
@click.option("--read-only", is_flag=True)
def demo(count, db_path, read_only) -> None:
    """Open the app on a database seeded with realistic demo keys."""
    import tempfile
    from pathlib import Path

    from .core.demo import seed_demo
    from .core.service import KeyService

    with tempfile.TemporaryDirectory(prefix="keytui-demo-") as tmp:
        target = db_path or str(Path(tmp) / "demo.db")
        service = KeyService.open(target, face="tui")
        try:
            if service.counts().total == 0 and count:
                click.echo(f"Seeding {count} demo keys…", err=True)
                seed_demo(service, count)
            from .tui.run import run_app_on

            run_app_on(service, read_only=read_only)
        finally:
            service.close()


main.add_command(serve_command)  # keytui serve (src/keytui/serve/)

if __name__ == "__main__":  # pragma: no cover
    main()
