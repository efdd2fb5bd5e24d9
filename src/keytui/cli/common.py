"""What every command shares: the service (opened once, on first use, closed with the root
context), the ``--db`` and ``--json`` options, confirmation, and one-line refusals."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import update_wrapper
from typing import TYPE_CHECKING, Any, Concatenate, NoReturn, ParamSpec, TypeVar

import click

from ..core import keyformat
from ..core.clock import DAMAGED_TIME
from ..core.errors import KeytuiError, is_sqlalchemy_error
from ..core.validate import visible

if TYPE_CHECKING:  # the service's imports (SQLAlchemy, argon2) load only when a command runs
    from ..core.service import KeyService

FACE = "cli"
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


# -- output helpers ------------------------------------------------------------------------------


safe = visible  # text from the database, made harmless for a terminal


def fit(text: str, width: int) -> str:
    text = safe(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def when(value: datetime | None, *, empty: str = "-") -> str:
    if value == DAMAGED_TIME:
        return "damaged"
    return value.strftime("%Y-%m-%d %H:%M") if value else empty


def day(value: datetime | None, *, empty: str = "never") -> str:
    if value == DAMAGED_TIME:
        return "damaged"
    return value.strftime("%Y-%m-%d") if value else empty


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=True))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"keytui: {safe(message)}", err=True)
    sys.exit(code)


# -- the service, opened once per command ----------------------------------------------------


class State:
    """The root context's object: the database asked for, and the service once opened."""

    def __init__(self) -> None:
        self.db: str | None = None
        self.read_only = False
        self._service: KeyService | None = None

    def service(self) -> KeyService:
        """The service on ``--db``, opened on first use and closed with the root context."""
        if self._service is None:
            from ..core.db import access_warning
            from ..core.service import KeyService

            self._service = KeyService.open(self.db, face=FACE, read_only=self.read_only)
            click.get_current_context().find_root().call_on_close(self.close)
            notice = self._service.created_notice()
            if notice:
                click.echo(f"keytui: {safe(notice)}", err=True)
            path = self._service.db.sqlite_path
            warning = access_warning(path) if path is not None else None
            if warning:
                click.echo(f"keytui: warning: {warning}", err=True)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            service, self._service = self._service, None
            service.close()


pass_state = click.make_pass_decorator(State, ensure=True)


def pass_service(command: Callable[Concatenate[KeyService, P], R]) -> Callable[P, R]:
    """Hands the command the shared service as its first argument."""

    def with_service(state: State, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return command(state.service(), *args, **kwargs)

    return update_wrapper(pass_state(with_service), command)


def set_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        ctx.find_root().ensure_object(State).db = value
    return value


def db_option(command: F) -> F:
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


if TYPE_CHECKING:  # generic for type checkers (click >= 8.2), plain at run time (8.1)
    _StrParam = click.ParamType[str]
else:
    _StrParam = click.ParamType


class KeyIdType(_StrParam):
    """A key ID argument that also takes a pasted secret: a secret with a good checksum stands
    for its key ID (said on stderr, with the secret cut to ``kt_<id>_…``); one that starts like
    a secret but is not one is refused as bad input, without echoing it."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        key_id = keyformat.key_id_of(value)
        if key_id is not None:
            click.echo(
                f"keytui: that is a secret ({keyformat.elided(key_id)}); its key ID is {key_id}",
                err=True,
            )
            return key_id
        if keyformat.looks_like_secret(value):
            self.fail(f"starts like a secret but {keyformat.secret_problem(value)}", param, ctx)
        return value


KEY_ID = KeyIdType()


def confirm(action: str, yes: bool, detail: str) -> None:
    """Destructive commands ask on a terminal and need ``--yes`` without one."""
    if yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():  # None: started with stdin closed
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
            from ..core.db import short_reason

            fail(f"database error: {short_reason(exc)}", 1)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Usage errors in one line too: what was wrong, and where the help is."""
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx else "keytui"
            fail(f"{exc.format_message()} (see: {command} --help)", exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("cancelled, nothing changed", 1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
