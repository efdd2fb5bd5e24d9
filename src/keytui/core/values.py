"""What the service hands out and takes in: plain, immutable values, safe to pass between
threads, and the rules that need nothing but them (a key's status, who may do what).

Nothing here imports SQLAlchemy or argon2: the app paints its first window with these before
the service (and its imports) has loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

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
    "status",
)
KEY_ACTIONS = ("create", "replace", "rename", "revoke", "delete")
ADMIN_ACTIONS = ("settings", "users", "roles")
UNSET: Any = object()
DEFAULT_EXPIRY: Any = object()  # "the installation's maximum expiry, or never"
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
    "role.remove",
    "demo.seed",
)


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

    def to_json(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat().replace("+00:00", "Z") if value else None

        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "role": self.role,
            "status": self.status,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "revoked_by": self.revoked_by,
            "last_used_at": iso(self.last_used_at),
            "use_count": self.use_count,
            "allowed_hosts": list(self.allowed_hosts),
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
    reason: str


@dataclass(frozen=True)
class RevokePlan:
    """Which of the asked-for keys a revoke would (or did) revoke, and which it skips and why."""

    revoke: tuple[KeyInfo, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class UserInfo:
    login: str
    role: str
    created_at: datetime


@dataclass(frozen=True)
class SettingsInfo:
    keys_enabled: bool
    max_expiry_days: int | None
    max_keys_per_user: int

    def to_json(self) -> dict[str, Any]:
        return {
            "keys_enabled": self.keys_enabled,
            "max_expiry_days": self.max_expiry_days,
            "max_keys_per_user": self.max_keys_per_user,
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

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "action": self.action,
            "key_id": self.key_id,
            "face": self.face,
            "details": self.details,
        }


@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    code: str  # VALID MALFORMED NOT_FOUND REVOKED EXPIRED DISABLED HOST_NOT_ALLOWED
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


def _hosts(stored: str | None) -> tuple[str, ...]:
    return () if not stored or stored == "[]" else tuple(json.loads(stored))


def key_info(row: Any, now: datetime) -> KeyInfo:
    """A key's value from a row of the keys table (anything with its columns as attributes)."""
    return KeyInfo(
        id=row.key_id,
        name=row.name,
        description=row.description,
        owner=row.owner,
        role=row.role,
        status=status_of(row.revoked_at, row.expires_at, now),
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
        use_count=row.use_count,
        allowed_hosts=_hosts(row.allowed_hosts),
    )


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
