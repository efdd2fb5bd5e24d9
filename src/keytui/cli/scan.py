"""``keytui scan``: find keytui secrets in files, say whose keys they are, revoke the active ones.

A secret is reported only when its prefix, shape and checksum are right (core/scan.py), never in
full: output shows ``kt_<id>_…``. Statuses come from the service, one query per 500 distinct key
IDs, and only when something was found (a clean tree needs no database).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from ..core import validate
from ..core.errors import InvalidInput
from ..core.keyformat import SECRET_LENGTH, elided
from ..core.scan import STDIN, Finding, Skip, scan_file, scan_stream, walk
from ..core.values import KeyInfo
from .common import confirm, db_option, emit_json, fail, pass_state, safe
from .keys import report_skipped

if TYPE_CHECKING:
    from .common import State

NOT_IN_DATABASE = "not_in_database"  # JSON's status for a secret whose key this database lacks
UNCHECKED = "unchecked"  # --no-db: found, not looked up

# SARIF rules: one per kind of finding, so code scanning can show (and dismiss) them apart.
RULES: tuple[dict[str, Any], ...] = (
    {
        "id": "keytui/active-key",
        "name": "ActiveKeytuiKey",
        "shortDescription": {"text": "Secret of an active keytui key"},
        "fullDescription": {
            "text": "A keytui secret whose key is active in the database the scan asked: "
            "anyone who reads this file can use it."
        },
        "help": {
            "text": "Revoke the key (keytui keys revoke ID, or keytui scan --revoke) and remove "
            "the secret from the file and its history."
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret"], "security-severity": "9.0"},
    },
    {
        "id": "keytui/secret",
        "name": "KeytuiSecret",
        "shortDescription": {"text": "keytui secret (key status not checked)"},
        "fullDescription": {
            "text": "A keytui secret with a valid checksum; the scan ran without a database "
            "(--no-db), so its key's status is unknown."
        },
        "help": {"text": "Run keytui keys identify on it, revoke its key, and remove it."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret"], "security-severity": "9.0"},
    },
    {
        "id": "keytui/unknown-key",
        "name": "UnknownKeytuiKey",
        "shortDescription": {"text": "keytui secret of a key not in this database"},
        "fullDescription": {
            "text": "A keytui secret with a valid checksum whose key ID the database the "
            "scan asked does not have: it may belong to another installation."
        },
        "help": {"text": "Check it against the installation that issued it."},
        "defaultConfiguration": {"level": "warning"},
        "properties": {"tags": ["security", "secret"], "security-severity": "5.0"},
    },
    {
        "id": "keytui/inactive-key",
        "name": "InactiveKeytuiKey",
        "shortDescription": {"text": "Secret of a revoked or expired keytui key"},
        "fullDescription": {
            "text": "A keytui secret whose key is revoked or expired: it no longer verifies."
        },
        "help": {"text": "Remove it from the file when convenient."},
        "defaultConfiguration": {"level": "note"},
        "properties": {"tags": ["security", "secret"], "security-severity": "1.0"},
    },
)
RULE_INDEX = {rule["id"]: index for index, rule in enumerate(RULES)}


@dataclass
class Report:
    findings: list[Finding]
    skipped: list[Skip]
    files: int  # how many were read (binary ones included)


def run_scan(paths: Sequence[str], follow_symlinks: bool) -> Report:
    report = Report([], [], 0)
    for item in walk(paths, follow_symlinks=follow_symlinks):
        if isinstance(item, Skip):
            report.skipped.append(item)
            continue
        shown, path = item
        try:
            if shown == STDIN:
                found = scan_stream(sys.stdin.buffer.read, STDIN)
            else:
                found = scan_file(path, shown)
        except OSError as exc:
            report.skipped.append(Skip(shown, f"cannot read: {exc.strerror or exc}"))
            continue
        report.files += 1
        if found is None:
            report.skipped.append(Skip(shown, "binary"))
        else:
            report.findings.extend(found)
    return report


def status_of(finding: Finding, keys: dict[str, KeyInfo] | None) -> str:
    if keys is None:
        return UNCHECKED
    key = keys.get(finding.key_id)
    return key.status if key else NOT_IN_DATABASE


def rule_of(status: str) -> str:
    return {
        "active": "keytui/active-key",
        UNCHECKED: "keytui/secret",
        NOT_IN_DATABASE: "keytui/unknown-key",
    }.get(status, "keytui/inactive-key")


def where(finding: Finding) -> str:
    return f"{safe(finding.path)}:{finding.line}:{finding.column}"


def text_line(finding: Finding, keys: dict[str, KeyInfo] | None) -> str:
    head = f"{where(finding)}: {elided(finding.key_id)}"
    if keys is None:
        return f"{head} key {finding.key_id} (not looked up: --no-db)"
    key = keys.get(finding.key_id)
    if key is None:
        return f"{head}: not a key of this database"
    return f"{head} key {key.id}: {key.status} ({safe(key.name)!r}, owner {safe(key.owner)})"


def to_json(report: Report, keys: dict[str, KeyInfo] | None) -> dict[str, Any]:
    findings = []
    for finding in report.findings:
        key = keys.get(finding.key_id) if keys else None
        findings.append(
            {
                "path": finding.path,
                "line": finding.line,
                "column": finding.column,
                "key_id": finding.key_id,
                "secret": elided(finding.key_id),
                "status": status_of(finding, keys),
                "name": key.name if key else None,
                "owner": key.owner if key else None,
            }
        )
    return {
        "findings": findings,
        "files_scanned": report.files,
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
    }


def artifact_uri(path: str) -> str:
    """A SARIF artifactLocation.uri: a relative path as a relative URI (resolved against the
    checkout by code scanning), an absolute one as ``file://``."""
    if path == STDIN:
        return "stdin"
    posix = Path(path).as_posix()
    if Path(path).is_absolute():
        return "file://" + quote(posix)
    return quote(posix.removeprefix("./"))


def to_sarif(report: Report, keys: dict[str, KeyInfo] | None) -> dict[str, Any]:
    """SARIF 2.1.0, as GitHub code scanning and other CI systems take it; no secret in it."""
    try:
        tool_version = version("keytui")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        tool_version = "0"
    results = []
    for finding in report.findings:
        status = status_of(finding, keys)
        rule = rule_of(status)
        said = {
            UNCHECKED: "status not checked (--no-db)",
            NOT_IN_DATABASE: "not a key of this database",
        }.get(status, status)
        results.append(
            {
                "ruleId": rule,
                "ruleIndex": RULE_INDEX[rule],
                "level": RULES[RULE_INDEX[rule]]["defaultConfiguration"]["level"],
                "message": {
                    "text": f"keytui secret {elided(finding.key_id)} of key {finding.key_id}: "
                    f"{said}"
                },
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": artifact_uri(finding.path)},
                            "region": {
                                "startLine": finding.line,
                                "startColumn": finding.column,
                                "endColumn": finding.column + SECRET_LENGTH,
                            },
                        }
                    }
                ],
                "partialFingerprints": {"keytuiKeyId/v1": finding.key_id},
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keytui",
                        "version": tool_version,
                        "semanticVersion": tool_version,
                        "rules": list(RULES),
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


@click.command("scan")
@db_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--sarif", is_flag=True, help="Print SARIF 2.1.0 (for code scanning in CI).")
@click.option(
    "--no-db",
    is_flag=True,
    help="Do not look the keys up: every secret found is a finding (exit 1).",
)
@click.option("--revoke", is_flag=True, help="Revoke the active keys found (asks; or --yes).")
@click.option("--yes", is_flag=True, help="With --revoke: do not ask.")
@click.option(
    "--follow-symlinks", is_flag=True, help="Follow symbolic links met inside directories."
)
@pass_state
def scan_command(
    state: State,
    paths: tuple[str, ...],
    as_json: bool,
    sarif: bool,
    no_db: bool,
    revoke: bool,
    yes: bool,
    follow_symlinks: bool,
) -> None:
    """Find keytui secrets in files, directories (recursively) or stdin (-).

    A secret counts when its prefix, shape and checksum are right; each is printed as
    file:line:column, its key ID (never the secret) and its key's status in this database.
    Exit 1 when an active key's secret is found (with --no-db: any secret), else 0.
    """
    if as_json and sarif:
        fail("choose one of --json and --sarif", 2)
    if revoke and no_db:
        fail("--revoke needs the database; drop --no-db", 2)
    if yes and not revoke:
        fail("--yes goes with --revoke", 2)
    if paths.count("-") > 1:
        fail("stdin (-) can be scanned once", 2)
    report = run_scan(paths, follow_symlinks)
    keys: dict[str, KeyInfo] | None = None
    if not no_db:
        keys = (
            state.service().find_keys({f.key_id for f in report.findings})
            if report.findings
            else {}
        )
    machine = as_json or sarif
    if not machine:
        for finding in report.findings:
            click.echo(text_line(finding, keys))
    revoked: list[KeyInfo] = []
    not_revoked: list[tuple[str, str]] = []
    if revoke and keys is not None:
        revoked, not_revoked = revoke_found(state, report.findings, keys, yes, machine)
        for key in revoked:
            keys[key.id] = key
    if as_json:
        out = to_json(report, keys)
        if revoke:
            out["revoked"] = [key.id for key in revoked]
            out["not_revoked"] = [{"id": i, "reason": r} for i, r in not_revoked]
        emit_json(out)
    elif sarif:
        emit_json(to_sarif(report, keys))
    else:
        summary(report, keys)
    statuses = {status_of(f, keys) for f in report.findings}
    sys.exit(1 if statuses & {"active", UNCHECKED} else 0)


def revoke_found(
    state: State,
    findings: list[Finding],
    keys: dict[str, KeyInfo],
    yes: bool,
    machine: bool,
) -> tuple[list[KeyInfo], list[tuple[str, str]]]:
    """The usual plan and confirmation, then one bulk revoke of the active keys found. The
    plan names where each was found; so do the lines after it, and the reason every
    ``key.revoke`` event stores (:func:`scan_reason`)."""
    places: dict[str, list[str]] = {}
    for finding in findings:
        places.setdefault(finding.key_id, []).append(f"{safe(finding.path)}:{finding.line}")
    active = [key_id for key_id in places if keys.get(key_id) and keys[key_id].status == "active"]
    if not active:
        if not machine:
            click.echo("keytui: no active key found; nothing to revoke", err=True)
        return [], []
    service = state.service()
    plan = service.plan_revoke(active)
    if not plan.revoke:
        report_skipped(plan.skipped)
        return [], [(s.id, s.reason) for s in plan.skipped]
    why = scan_reason([f.path for f in findings if f.key_id in {k.id for k in plan.revoke}])
    lines = [
        f"Revoking is irreversible. {len(plan.revoke)} key(s) will be revoked.",
        f"Reason: {safe(why)}",
    ]
    lines += [
        f"  {key.id}  {safe(key.name)}  (owner {safe(key.owner)}) found in "
        + ", ".join(places[key.id])
        for key in plan.revoke
    ]
    lines += [f"  skip {s.id}: {safe(s.reason)}" for s in plan.skipped]
    confirm(f"revoke {len(plan.revoke)} key(s)", yes, "\n".join(lines))
    result = service.revoke_keys([key.id for key in plan.revoke], reason=why)
    for key in result.revoke:
        click.echo(
            f"Revoked key {key.id} {safe(key.name)!r} (found in {', '.join(places[key.id])}).",
            err=machine,
        )
    skipped = [(s.id, s.reason) for s in (*plan.skipped, *result.skipped)]
    if skipped:
        report_skipped((*plan.skipped, *result.skipped))
    return list(result.revoke), skipped


def scan_reason(paths: Sequence[str]) -> str:
    """The reason a ``scan --revoke`` records: where the secrets were found, as many files as
    fit in a reason (then how many more); a path a reason may not hold (one shaped like a
    secret) is counted, not named."""
    files = list(dict.fromkeys(paths))
    head = "secret found by keytui scan in "
    named: list[str] = []
    for path in files:
        try:
            shown = validate.reason(safe(path))
        except InvalidInput:
            continue
        rest = len(files) - len(named) - 1
        tail = f" and {rest} more file(s)" if rest else ""
        if len(head) + len(", ".join([*named, shown])) + len(tail) > validate.REASON_MAX:
            break
        named.append(shown)
    more = len(files) - len(named)
    reason = head + ", ".join(named) + (f" and {more} more file(s)" if more else "")
    if not named or len(reason) > validate.REASON_MAX:
        return f"secret found by keytui scan in {len(files)} file(s)"
    return reason


def summary(report: Report, keys: dict[str, KeyInfo] | None) -> None:
    """One line on stderr: what was found in how many files, and what was skipped."""
    found = report.findings
    distinct = {f.key_id for f in found}
    parts = [f"{len(found)} secret(s) of {len(distinct)} key(s) in {report.files} file(s) scanned"]
    if keys is not None and found:
        active = sum(1 for k in distinct if keys.get(k) and keys[k].status == "active")
        unknown = sum(1 for k in distinct if k not in keys)
        parts.append(f"{active} active")
        if unknown:
            parts.append(f"{unknown} not in this database")
    kinds: dict[str, int] = {}
    for skip in report.skipped:
        kind = skip.reason.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    if kinds:
        parts.append("skipped " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    click.echo("keytui: " + "; ".join(parts), err=True)
    if keys is not None and found and not keys:
        click.echo(
            "keytui: none of them is a key of this database: is it the right one (--db)? "
            "--no-db reports every secret found",
            err=True,
        )
