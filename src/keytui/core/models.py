"""The database tables, as SQLAlchemy 2 typed models. Times are timezone-aware UTC."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Dialect, Index, Integer, String, Text, TypeDecorator
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .clock import sqlite_time_or_damaged


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, hands back aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            # SQLAlchemy's own parser and process_result_value cost several times as much,
            # felt on 10,000-row reads. A value that is no time reads as clock.DAMAGED_TIME.
            return None if value is None else sqlite_time_or_damaged(value)

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Key(Base):
    __tablename__ = "keys"

    # An integer primary key that follows creation order: "newest first" is "pk descending".
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    use_count: Mapped[int] = mapped_column(Integer, default=0)
    allowed_hosts: Mapped[str] = mapped_column(Text, default="[]")  # a JSON list

    __table_args__ = (
        Index("ix_keys_name", "name"),
        Index("ix_keys_expires_at", "expires_at"),
        Index("ix_keys_revoked_at", "revoked_at"),
    )


class User(Base):
    __tablename__ = "users"

    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KeyRole(Base):
    __tablename__ = "key_roles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # May developers create keys with this role? (Admins may grant any; migration 0004.)
    developers: Mapped[bool] = mapped_column(Boolean, default=False)


class Settings(Base):
    __tablename__ = "settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    keys_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    max_expiry_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_keys_per_user: Mapped[int] = mapped_column(Integer, default=100)
    # Must a revoke, replace or delete give a reason? (migration 0005)
    require_reason: Mapped[bool] = mapped_column(Boolean, default=False)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    # No foreign key: deleting a key keeps the events that tell of it.
    key_id: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    face: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON, never a secret
    # The tamper-evident chain (see audit.py): SHA-256 over prev_hash and the event's canonical
    # JSON. Written only by audit.append_events; no default, so a bypassing insert fails.
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class KeyUsage(Base):
    """Verifications of one key in one hour, by outcome (migration 0006; see core/usage.py)."""

    __tablename__ = "key_usage"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)  # whole hours since 1970 UTC
    valid: Mapped[int] = mapped_column(Integer, default=0)
    revoked: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[int] = mapped_column(Integer, default=0)
    host_denied: Mapped[int] = mapped_column(Integer, default=0)
    wrong_secret: Mapped[int] = mapped_column(Integer, default=0)
    throttled: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    used_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refused_host: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("ix_key_usage_hour", "hour"), {"sqlite_with_rowid": False})
