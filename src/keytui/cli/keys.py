"""``keytui keys``: generate, list, show, rename, replace, revoke and delete keys."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING

import click

from ..core.errors import NotDelivered, ReasonRequired
from ..core.keyformat import elided
from ..core.values import (
    MAX_PAGE,
    SORTABLE,
    STATUSES,
    IssuedKey,
    KeyInfo,
    KeyQuery,
    KeyUsageReport,
    RevokePlan,
    Skipped,
    Status,
)
from .common import (
    KEY_ID,
    KeytuiGroup,
    confirm,
    day,
    db_option,
    emit_json,
    fail,
    fit,
    json_option,
    pass_service,
    safe,
    when,
)

if TYPE_CHECKING:
    from ..core.service import KeyService


@click.group(cls=KeytuiGroup)
def keys() -> None:
    """Generate, list, show, rename, replace, revoke and delete keys; how each is used."""


KEY_COLUMNS = (
    ("ID", 10),
    ("NAME", 28),
    ("OWNER", 12),
    ("ROLE", 12),
    ("STATUS", 8),
    ("EXPIRES", 10),
    ("LAST USED", 16),
)


def key_row(key: KeyInfo) -> str:
    cells = (
        key.id,
        key.name,
        key.owner,
        key.role,
        "damaged" if key.damaged else key.status,
        day(key.expires_at),
        when(key.last_used_at),
    )
    return "  ".join(
        fit(cell, width).ljust(width) for cell, (_, width) in zip(cells, KEY_COLUMNS, strict=True)
    ).rstrip()


def describe(key: KeyInfo, reason: str | None = None) -> str:
    """Every field of ``key``; ``reason``: why it was revoked (its event's reason)."""
    rows: list[tuple[str, object]] = [
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
        *((("Reason", reason),) if key.revoked_at and reason else ()),
        ("Last used", when(key.last_used_at, empty="never")),
        ("Uses", key.use_count),
        (
            "Allowed hosts",
            "damaged" if "allowed_hosts" in key.damaged else ", ".join(key.allowed_hosts) or "any",
        ),
    ]
    if key.damaged:
        rows.append(
            (
                "Damaged",
                f"{', '.join(key.damaged)} (changed outside keytui; the key is treated as "
                f"{key.status})",
            )
        )
    return "\n".join(f"{label + ':':<15}{safe(value)}" for label, value in rows)


@keys.command("list")
@db_option
@click.option(
    "--filter",
    "--search",
    "search",
    default="",
    metavar="FILTER",
    help="Free words match name, ID or owner; owner:LOGIN status:active unused:45d ... "
    "(see the README's filter language).",
)
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--owner", metavar="LOGIN")
@click.option("--sort", default="created_at", show_default=True, type=click.Choice(SORTABLE))
@click.option("--asc", is_flag=True, help="Ascending order (default: descending).")
@click.option("--limit", type=click.IntRange(min=1, max=MAX_PAGE), help="At most this many keys.")
@json_option
@pass_service
def keys_list(
    service: KeyService,
    search: str,
    status: Status | None,
    owner: str | None,
    sort: str,
    asc: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """List keys, newest first, fetched page by page."""
    query = KeyQuery(search=search, status=status, owner=owner, sort=sort, descending=not asc)
    found: Iterable[KeyInfo] = service.iter_keys(query, page_size=min(limit or 500, 500))
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
    help="Default: 90 days, or the installation's maximum expiry when that is shorter.",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="Host name, IP or CIDR; repeat for more. None means any host.",
)
@json_option
@pass_service
def keys_create(
    service: KeyService,
    name: str,
    description: str,
    owner: str | None,
    role: str | None,
    expires: str | None,
    allowed_hosts: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create a key. Its secret is printed once, alone on stdout."""
    with delivering():
        service.create_key(
            name,
            description=description,
            owner=owner,
            role=role,
            expires=service.key_defaults().expires if expires is None else expires,
            allowed_hosts=allowed_hosts,
            deliver=printer("Created", as_json),
        )


def printer(verb: str, as_json: bool) -> Callable[[IssuedKey], None]:
    """What create and replace hand the service as ``deliver``: it prints the secret (alone on
    stdout) and flushes, inside the transaction, so a secret that cannot be printed (stdout
    closed, disk full) rolls the change back."""

    def deliver(issued: IssuedKey) -> None:
        out = sys.stdout
        if out is None:  # started with stdout closed (>&-)
            raise OSError(errno.EBADF, "stdout is closed")
        key = issued.key
        if as_json:
            out.write(json.dumps({**key.to_json(), "secret": issued.secret}, indent=2) + "\n")
        else:
            click.echo(
                f"{verb} key {key.id} {safe(key.name)!r} (owner {safe(key.owner)}, role "
                f"{safe(key.role)}, expires {day(key.expires_at)}). The secret below is shown "
                "once; store it now:",
                err=True,
            )
            out.write(issued.secret + "\n")
        out.flush()

    return deliver


@contextmanager
def delivering() -> Iterator[None]:
    """After a secret could not be printed: point stdout at /dev/null, so that what is left in
    its buffer (never committed, so worthless) is not tried again at exit with a second error."""
    try:
        yield
    except NotDelivered:
        if sys.stdout is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            finally:
                os.close(devnull)
        raise


@keys.command("show")
@db_option
@click.argument("key_id", type=KEY_ID)
@json_option
@pass_service
def keys_show(service: KeyService, key_id: str, as_json: bool) -> None:
    """Every field of one key (and why it was revoked, when a reason was given)."""
    key = service.get_key(key_id)
    reason = service.revocation_reason(key.id) if key.revoked_at else None
    if as_json:
        emit_json({**key.to_json(), "revoke_reason": reason})
    else:
        click.echo(describe(key, reason))


@keys.command("identify")
@db_option
@json_option
@pass_service
def keys_identify(service: KeyService, as_json: bool) -> None:
    """Which key the secret read from stdin belongs to; no use is counted.

    Exit 1 when its key is not in this database, 2 when it is not a keytui secret (or its
    checksum is wrong). It names the key; `keytui verify` says whether the secret is current.
    """
    if sys.stdin.isatty():
        click.echo("Paste the secret and press Enter:", err=True)
    key = service.identify(sys.stdin.readline(4096))
    if as_json:
        emit_json({"secret": elided(key.id), **key.to_json()})
    else:
        click.echo(f"{'Secret:':<15}{elided(key.id)}\n{describe(key)}")


@keys.command("usage")
@db_option
@click.argument("key_id", type=KEY_ID)
@json_option
@pass_service
def keys_usage(service: KeyService, key_id: str, as_json: bool) -> None:
    """How a key is used: uses by hour (24 h) and by day (30 days), every verification by
    outcome, the last use and refusal and the host each came from, heavy use. A read: no use
    is counted."""
    report = service.key_usage(key_id)
    if as_json:
        emit_json(report.to_json())
    else:
        click.echo(usage_text(report))


def usage_text(report: KeyUsageReport) -> str:
    def when_from(at: datetime | None, host: str | None) -> str:
        return when(at, empty="never") + (f" from {host}" if at and host else "")

    lines = [
        ("ID", report.key_id),
        ("Last used", when_from(report.last_used_at, report.last_used_host)),
        ("Last refused", when_from(report.last_refused_at, report.last_refused_host)),
        (
            "Uses",
            f"{report.uses_24h:,} in 24 h, {report.uses_30d:,} in 30 days, "
            f"{report.use_count:,} in all",
        ),
        ("Usual rate", f"{report.usual:,}/h; {report.peak:,}/h this hour or the last"),
        ("Last 24 h", f"{bars(report.hours)}  by hour, most {max(report.hours):,}"),
        ("Last 30 days", f"{bars(report.days)}  by day, most {max(report.days):,}"),
    ]
    flags = []
    if report.heavy:
        flags.append("HEAVY USE (over 10x its usual rate)")
    if report.refused:
        flags.append(f"WRONG SECRETS ({report.wrong_peak:,} in an hour)")
    if flags:
        lines.append(("Flags", "; ".join(flags)))
    text = "\n".join(f"{label + ':':<15}{safe(value)}" for label, value in lines)
    width = max(len(name) for name in report.outcomes_24h) + 2
    table = [f"{'Outcome':<{width}}{'24 h':>10}{'30 days':>12}"]
    for outcome, count in report.outcomes_24h.items():
        table.append(f"{outcome:<{width}}{count:>10,}{report.outcomes_30d[outcome]:>12,}")
    return text + "\n\n" + "\n".join(table)


BARS = "▁▂▃▄▅▆▇█"


def bars(values: Sequence[int]) -> str:
    """A text sparkline, one character a value (all low when all are zero)."""
    top = max(values, default=0) or 1
    return "".join(BARS[min(len(BARS) - 1, value * len(BARS) // (top + 1))] for value in values)


@keys.command("rename")
@db_option
@click.argument("key_id", type=KEY_ID)
@click.argument("name")
@click.option("--description", help="Also set the description.")
@json_option
@pass_service
def keys_rename(
    service: KeyService, key_id: str, name: str, description: str | None, as_json: bool
) -> None:
    """Give a key a new name (and description)."""
    key = service.rename_key(key_id, name, description)
    if as_json:
        emit_json(key.to_json())
    else:
        click.echo(f"Renamed key {key.id} to {safe(key.name)!r}.")


REASON_HELP = (
    "Why (up to 200 characters; stored in the events; required when the installation's "
    "settings say so)."
)


def reason_for(service: KeyService, action: str, reason: str | None) -> str:
    """``reason`` as ``action`` would store it, or the service's refusal, before anything is
    asked or changed (the change checks again)."""
    try:
        return service.check_reason(action, reason)
    except ReasonRequired as exc:
        fail(f"{exc} with --reason TEXT", exc.exit_code)


def reason_line(reason: str) -> str:
    return f"\nReason: {safe(reason)}" if reason else ""


@keys.command("replace")
@db_option
@click.argument("key_id", type=KEY_ID)
@click.option("--reason", metavar="TEXT", help=REASON_HELP)
@click.option("--yes", is_flag=True, help="Do not ask.")
@json_option
@pass_service
def keys_replace(
    service: KeyService, key_id: str, reason: str | None, yes: bool, as_json: bool
) -> None:
    """Issue a new secret for a key; the old secret stops working at once."""
    key = service.get_key(key_id)
    why = reason_for(service, "replace", reason)
    confirm(
        "replace",
        yes,
        f"Replacing key {key.id} {safe(key.name)!r} takes effect at once: "
        "apps using the old secret will fail." + reason_line(why),
    )
    with delivering():
        service.replace_key(key.id, reason=why, deliver=printer("Replaced", as_json))


REVOKE_AT_MOST = 100_000  # keys one --filter revoke may take (matching_ids' own bound)


@keys.command("revoke")
@db_option
@click.argument("key_ids", nargs=-1, type=KEY_ID)
@click.option(
    "--filter",
    "filter_text",
    metavar="FILTER",
    help="Revoke the keys this filter matches (see keys list --filter), instead of IDs.",
)
@click.option("--reason", metavar="TEXT", help=REASON_HELP)
@click.option("--dry-run", is_flag=True, help="Print the plan only; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask.")
@json_option
@pass_service
def keys_revoke(
    service: KeyService,
    key_ids: tuple[str, ...],
    filter_text: str | None,
    reason: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Revoke keys, irreversibly: KEY_IDS, or every key --filter matches. Prints the plan
    (every key by owner, a count per owner, which are skipped and why) and asks, unless
    --yes. Keys that are not active are skipped and reported."""
    if bool(key_ids) == (filter_text is not None):
        fail("give key IDs or --filter, not both (nor neither)", 2)
    why: str | None = None
    if not dry_run:  # a dry run shows the plan, and says when a reason is missing
        why = reason_for(service, "revoke", reason)
    if filter_text is not None:
        found = service.matching_ids(filter_text, limit=REVOKE_AT_MOST + 1)
        if len(found) > REVOKE_AT_MOST:
            fail(f"more than {REVOKE_AT_MOST:,} keys match; narrow the filter", 2)
        if not found:
            fail("no keys match the filter; nothing to revoke", 1)
        key_ids = tuple(found)
    if dry_run or not yes:
        plan = service.plan_revoke(key_ids)
        if not plan.revoke:
            report_skipped(plan.skipped)
            sys.exit(1)
        if dry_run:
            why = reason_for(service, "revoke", reason) if reason else None
        detail = "\n".join(plan_lines(plan, filter_text, why))
        if dry_run:
            click.echo(detail)
            click.echo("Dry run: nothing changed.")
            return
        confirm(f"revoke {len(plan.revoke)} key(s)", yes, detail)
    result = service.revoke_keys(key_ids, reason=why)
    if as_json:
        emit_json(
            {
                "revoked": [key.to_json() for key in result.revoke],
                "skipped": [{"id": s.id, "reason": s.reason} for s in result.skipped],
                "revoke_reason": why or None,
            }
        )
    else:
        for key in result.revoke:
            click.echo(f"Revoked key {key.id} {safe(key.name)!r}.")
        report_skipped(result.skipped)
    if result.skipped and not result.revoke:  # nothing could be revoked: refused
        sys.exit(1)


def plan_lines(plan: RevokePlan, filter_text: str | None, reason: str | None = None) -> list[str]:
    """A revoke's plan in words, as the app's dialog shows it: how many; a warning when they
    are every active key; the reason; every key, grouped by owner with a count per owner;
    every skipped key with its name and why."""
    matched = f" (filter: {safe(filter_text)})" if filter_text is not None else ""
    owners = Counter(key.owner for key in plan.revoke)
    lines = [
        f"Revoking is irreversible. {len(plan.revoke)} key(s) of {len(owners)} owner(s) "
        f"will be revoked{matched}."
    ]
    if plan.every_active:
        lines.append(
            "Warning: these are ALL the active keys of this installation; after this no key "
            "will verify."
        )
    if reason:
        lines.append(f"Reason: {safe(reason)}")
    elif plan.reason_required:
        lines.append("Reason: required in this installation; give one with --reason TEXT")
    else:
        lines.append("Reason: none given (--reason TEXT records one)")
    for owner in sorted(owners):
        lines.append(f"{safe(owner)}: {owners[owner]} key(s)")
        lines += [
            f"  {key.id}  {fit(key.name, 40):<40}  {key.status}"
            for key in plan.revoke
            if key.owner == owner
        ]
    if plan.skipped:
        lines.append(f"Skipped {len(plan.skipped)}:")
        lines += [
            f"  {fit(item.id, 40) or repr('')}  {fit(item.name or '-', 40):<40}  "
            f"{safe(item.reason)}"
            for item in sorted(plan.skipped, key=lambda item: (item.reason, item.id))
        ]
    return lines


def report_skipped(skipped: Sequence[Skipped]) -> None:
    """One line, however many were skipped: each ID with its reason."""
    if skipped:
        items = ", ".join(
            f"{fit(item.id, 40) or repr('')} ({safe(item.reason)})" for item in skipped
        )
        click.echo(f"keytui: skipped {len(skipped)}: {items}", err=True)


@keys.command("delete")
@db_option
@click.argument("key_ids", nargs=-1, required=True, type=KEY_ID)
@click.option("--reason", metavar="TEXT", help=REASON_HELP)
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_service
def keys_delete(
    service: KeyService, key_ids: tuple[str, ...], reason: str | None, yes: bool
) -> None:
    """Remove keys entirely (all or none). Their events stay in the log."""
    found = [service.get_key(key_id) for key_id in key_ids]
    why = reason_for(service, "delete", reason)
    confirm(
        f"delete {len(found)} key(s)",
        yes,
        "Deleting removes these keys entirely:\n"
        + "\n".join(f"  {key.id}  {safe(key.name)}" for key in found)
        + reason_line(why),
    )
    for key in service.delete_keys([key.id for key in found], reason=why):
        click.echo(f"Deleted key {key.id} {safe(key.name)!r}.")
