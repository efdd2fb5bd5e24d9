"""What the service hands out and takes in: plain, immutable values, safe to pass between
threads, and the rules that need nothing but them (a key's status, who may do what).

Nothing here imports SQLAlchemy or argon2: the app paints its first window with these before
the service (and its imports) has loaded.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from .clock import DAMAGED_TIME

Status = Literal["active", "expired", "revoked"]
STATUSES: tuple[Status, ...] = ("active", "expired", "revoked")
SORTABLE = (
    "name",
    "key_id",
    "owner",
    "role",
    "created_at",
    "updated_at",
    "expires_at",
    "last_used_at",
    "uses_24h",  # valid verifications in the last 24 hours (core/activity.py)
    "status",
)
KEY_ACTIONS = ("create", "replace", "rename", "revoke", "delete")
# Admins only: open or change settings, manage users and key roles, and pick another user as a
# new key's owner ("create_for_others": what the faces ask before offering an owner field).
ADMIN_ACTIONS = ("settings", "users", "roles", "create_for_others")
MAX_PAGE = 1_000_000_000  # the most rows (and the furthest offset) one list call takes
UNSET: Any = object()
DEFAULT_EXPIRY: Any = object()  # create_key's own default: "the installation's maximum, or never"
DEFAULT_EXPIRY_DAYS = 90  # what the faces offer a new key: 90 days, or the maximum when shorter
DEFAULT_KEY_ROLE = "read-only"
# Every action an event can record (a test drives each through the service and checks it).
EVENT_ACTIONS = (
    "key.create",
    "key.replace",
    "key.rename",
    "key.revoke",
    "key.delete",
    "key.verify_failed",
    "settings.update",
    "user.add",
    "user.set_role",
    "user.remove",
    "role.add",
    "role.update",
    "role.remove",
    "demo.seed",
)


def iso_utc(value: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with ``Z`` (``2026-11-22T09:30:00Z``): every time in JSON."""
    return value.isoformat().replace("+00:00", "Z") if value else None


class VerifyCode(StrEnum):
    """Why a secret was accepted or rejected (the values are what JSON and the CLI print)."""

    VALID = "VALID"
    MALFORMED = "MALFORMED"
    NOT_FOUND = "NOT_FOUND"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    DISABLED = "DISABLED"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
    MISSING = "MISSING"  # no key was sent at all (an HTTP face's answer; verify() never says it)
    THROTTLED = "THROTTLED"  # too many wrong secrets for this key just now: not checked
    DAMAGED = "DAMAGED"  # the key's stored row cannot be read (edited by hand?): refused


class SkipReason(StrEnum):
    """Why a key asked for in a bulk revoke was left alone."""

    NOT_FOUND = "not found"
    ALREADY_REVOKED = "already revoked"
    EXPIRED = "expired"
    NOT_YOURS = "not yours"  # a developer's, on someone else's key
    NOT_PERMITTED = "not permitted"


# ---------------------------------------------------------------------------------------------
# What the service hands out: plain, immutable values, safe to pass between threads.


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    description: str
    owner: str
    role: str
    status: Status
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None
    use_count: int
    allowed_hosts: tuple[str, ...]
    # The fields whose stored value is unreadable (changed outside keytui): a damaged time reads
    # as clock.DAMAGED_TIME (so a damaged expiry is expired), damaged hosts as ().
    damaged: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        extra = {"damaged": list(self.damaged)} if self.damaged else {}
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "role": self.role,
            "status": self.status,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
            "expires_at": iso_utc(self.expires_at),
            "revoked_at": iso_utc(self.revoked_at),
            "revoked_by": self.revoked_by,
            "last_used_at": iso_utc(self.last_used_at),
            "use_count": self.use_count,
            "allowed_hosts": list(self.allowed_hosts),
            **extra,
        }

    def expires_within(self, now: datetime, days: int = 7) -> bool:
        return (
            self.status == "active"
            and self.expires_at is not None
            and self.expires_at - now <= timedelta(days=days)
        )


@dataclass(frozen=True)
class IssuedKey:
    """The result of create and replace: the only place a secret ever leaves the service."""

    key: KeyInfo
    secret: str = field(repr=False)

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return f"IssuedKey(key={self.key.id!r}, secret=<hidden>)"


@dataclass(frozen=True)
class KeyQuery:
    search: str = ""
    status: Status | None = None
    owner: str | None = None
    sort: str = "created_at"
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class KeyPage:
    keys: tuple[KeyInfo, ...]
    offset: int
    has_more: bool  # one more row than asked for was found


@dataclass(frozen=True)
class Skipped:
    id: str
    why: SkipReason
    owner: str | None = None  # the key's owner, for NOT_YOURS
    name: str | None = None  # the key's name, when it was found

    @property
    def reason(self) -> str:
        """The reason in words, as the faces show it."""
        if self.why is SkipReason.NOT_YOURS:
            return f"{self.why.value} (owner {self.owner})"
        return self.why.value


@dataclass(frozen=True)
class RevokePlan:
    """Which of the asked-for keys a revoke would (or did) revoke, and which it skips and why."""

    revoke: tuple[KeyInfo, ...]
    skipped: tuple[Skipped, ...]
    # For a plan (not a result): does the installation require a reason, and are the keys to
    # revoke every active key it has (a plain warning before a revoke of everything)?
    reason_required: bool = False
    every_active: bool = False


@dataclass(frozen=True)
class UserInfo:
    login: str
    role: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"login": self.login, "role": self.role, "created_at": iso_utc(self.created_at)}


@dataclass(frozen=True)
class KeyDefaults:
    """What a new key gets unless its creator picks otherwise, in every face."""

    role: str | None  # None: the installation has no key roles
    expires_days: int

    @property
    def expires(self) -> str:
        """As create_key's ``expires`` takes it (``"90d"``)."""
        return f"{self.expires_days}d"


def default_expiry_days(max_expiry_days: int | None) -> int:
    """90 days (as GitHub and GitLab suggest a finite lifetime for a new token), or the
    installation's maximum expiry when that is shorter."""
    if max_expiry_days is None:
        return DEFAULT_EXPIRY_DAYS
    return min(DEFAULT_EXPIRY_DAYS, max_expiry_days)


def default_role(roles: list[str]) -> str | None:
    """``read-only`` when the installation has it, else its first role (``roles`` in the
    database's order by name)."""
    if DEFAULT_KEY_ROLE in roles:
        return DEFAULT_KEY_ROLE
    return roles[0] if roles else None


@dataclass(frozen=True)
class SettingsInfo:
    keys_enabled: bool
    max_expiry_days: int | None
    max_keys_per_user: int
    require_reason: bool = False  # revoke, replace and delete need a reason

    def to_json(self) -> dict[str, Any]:
        return {
            "keys_enabled": self.keys_enabled,
            "max_expiry_days": self.max_expiry_days,
            "max_keys_per_user": self.max_keys_per_user,
            "require_reason": self.require_reason,
        }


@dataclass(frozen=True)
class EventInfo:
    id: int
    at: datetime
    actor: str
    action: str
    key_id: str | None
    face: str
    details: dict[str, Any]
    damaged: tuple[str, ...] = ()  # fields whose stored value is unreadable ("at", "details")

    def to_json(self) -> dict[str, Any]:
        extra = {"damaged": list(self.damaged)} if self.damaged else {}
        return {
            "id": self.id,
            "at": iso_utc(self.at),
            "actor": self.actor,
            "action": self.action,
            "key_id": self.key_id,
            "face": self.face,
            "details": self.details,
            **extra,
        }


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    code: VerifyCode
    key_id: str | None = None
    owner: str | None = None
    role: str | None = None
    expires_at: datetime | None = None  # the key's, when its ID was found

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "code": self.code,
            "key_id": self.key_id,
            "owner": self.owner,
            "role": self.role,
        }


@dataclass(frozen=True)
class KeyActivity:
    """What the key table shows of a key's use: its uses in the last 24 h and its flags."""

    uses_24h: int = 0
    heavy: bool = False  # active, and used far above its usual rate (core/activity.py)
    refused: bool = False  # active, and a burst of wrong secrets for it


@dataclass(frozen=True)
class UsageFlags:
    """How many active keys are in heavy use, and how many saw a burst of wrong secrets."""

    heavy: int = 0
    refused: int = 0


@dataclass(frozen=True)
class KeyUsageReport:
    """How one key is used: valid uses by hour (the last 24, oldest first, the current hour
    last) and by UTC day (the last 30), every verification by outcome, the last use and the
    last refusal with the client host each came from, and its flags."""

    key_id: str
    hours: tuple[int, ...]
    days: tuple[int, ...]
    outcomes_24h: dict[str, int]
    outcomes_30d: dict[str, int]
    use_count: int  # every valid use since the key was made
    last_used_at: datetime | None
    last_used_host: str | None
    last_refused_at: datetime | None
    last_refused_host: str | None
    usual: int  # the usual hourly rate: lower median of the used hours before the last two
    peak: int  # the most valid uses in the current or the last hour
    wrong_peak: int  # the most wrong secrets (throttled included) in the current or last hour
    heavy: bool
    refused: bool

    @property
    def uses_24h(self) -> int:
        return sum(self.hours)

    @property
    def uses_30d(self) -> int:
        return sum(self.days)

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "uses_24h": self.uses_24h,
            "uses_30d": self.uses_30d,
            "use_count": self.use_count,
            "hourly": list(self.hours),
            "daily": list(self.days),
            "outcomes_24h": dict(self.outcomes_24h),
            "outcomes_30d": dict(self.outcomes_30d),
            "last_used_at": iso_utc(self.last_used_at),
            "last_used_host": self.last_used_host,
            "last_refused_at": iso_utc(self.last_refused_at),
            "last_refused_host": self.last_refused_host,
            "usual_per_hour": self.usual,
            "peak_per_hour": self.peak,
            "wrong_secrets_peak_per_hour": self.wrong_peak,
            "heavy": self.heavy,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class Counts:
    active: int
    expired: int
    revoked: int

    @property
    def total(self) -> int:
        return self.active + self.expired + self.revoked


def status_of(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> Status:
    """A key's status: revoked outranks expired; a key expires at its ``expires_at``."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def _hosts(stored: object) -> tuple[str, ...] | None:
    """A key's allowed hosts from their stored JSON; None when that is not a list of text."""
    if not stored or stored == "[]":
        return ()
    return _parsed_hosts(stored) if isinstance(stored, str) else None


@functools.lru_cache(maxsize=4096)
def _parsed_hosts(stored: str) -> tuple[str, ...] | None:
    """:func:`_hosts` of text, kept: keys share few lists of hosts, and listing or revoking
    10,000 keys parsed the same few again and again."""
    try:
        hosts = json.loads(stored)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser
        return None
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        return None
    return tuple(hosts)


_TIME_FIELDS = ("created_at", "updated_at", "expires_at", "revoked_at", "last_used_at")


def key_info(row: Any, now: datetime, *, revoked_by: str | None = None) -> KeyInfo:
    """A key's value from a row of the keys table (anything with its columns as attributes).
    A row changed by hand into values that are no values lists as damaged, never raises.
    ``revoked_by``: the key as that actor has just revoked it, at ``now`` (a bulk revoke's
    answer, from the rows it read before its UPDATE)."""
    created_at, updated_at, expires_at = row.created_at, row.updated_at, row.expires_at
    revoked_at, last_used_at = row.revoked_at, row.last_used_at
    if revoked_by is not None:
        revoked_at = updated_at = now
    else:
        revoked_by = row.revoked_by
    times = (created_at, updated_at, expires_at, revoked_at, last_used_at)
    damaged: tuple[str, ...] = ()
    if DAMAGED_TIME in times:  # (after the revoke's own times: what a read after it says)
        damaged = tuple(
            name for name, at in zip(_TIME_FIELDS, times, strict=True) if at == DAMAGED_TIME
        )
    hosts = _hosts(row.allowed_hosts)
    if hosts is None:
        damaged += ("allowed_hosts",)
    use_count = row.use_count
    return KeyInfo(
        id=row.key_id,
        name=row.name,
        description=row.description,
        owner=row.owner,
        role=row.role,
        status=status_of(revoked_at, expires_at, now),
        created_at=created_at,
        updated_at=updated_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
        revoked_by=revoked_by,
        last_used_at=last_used_at,
        use_count=use_count if isinstance(use_count, int) else 0,
        allowed_hosts=hosts or (),
        damaged=damaged,
    )


def event_info(row: Any) -> EventInfo:
    """An event's value from a row of the events table; unreadable fields list as damaged."""
    damaged: tuple[str, ...] = ("at",) if row.at == DAMAGED_TIME else ()
    try:
        details = json.loads(row.details or "{}")
    except (TypeError, ValueError, RecursionError):
        details = None
    if not isinstance(details, dict):
        details, damaged = {}, (*damaged, "details")
    return EventInfo(row.id, row.at, row.actor, row.action, row.key_id, row.face, details, damaged)


# ---------------------------------------------------------------------------------------------
# Permissions: the whole rule, in one function.


def permits(user_role: str | None, login: str, action: str, key_owner: str | None = None) -> bool:
    """May a user with ``user_role`` do ``action`` (to a key owned by ``key_owner``)?

    admin: everything. developer: create, replace, rename, revoke and delete their own keys.
    viewer (and anyone unknown): read only.
    """
    if user_role == "admin":
        return True
    if user_role == "developer" and action in KEY_ACTIONS:
        return key_owner is None or key_owner == login
    return False
