"""Time, injected: the service asks a clock, so tests and snapshots can freeze it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
Seconds = Callable[[], float]  # the same clock, as seconds since the epoch


def sqlite_time(value: str) -> datetime:
    """A time as SQLite holds it (naive UTC text, as SQLAlchemy writes it) made aware UTC;
    text with an offset is converted. One C call for the usual case."""
    if len(value) == 26 and value[19] == "." and value[20:].isdigit():  # as SQLAlchemy writes
        return _parse(value + "+00:00")
    moment = _parse(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_parse = datetime.fromisoformat

# What a stored time that is no time at all reads as ("garbage", 2026-02-30, PostgreSQL's
# 'infinity'): the earliest time there is, so a damaged expiry reads as expired and a damaged
# revocation as revoked (a damaged row fails closed), and the row lists as damaged.
DAMAGED_TIME = datetime(1, 1, 1, tzinfo=UTC)


def sqlite_time_or_damaged(value: object) -> datetime:
    """:func:`sqlite_time`, or :data:`DAMAGED_TIME` for what is not a time."""
    if not isinstance(value, str):
        return DAMAGED_TIME
    try:
        return sqlite_time(value)
    except (ValueError, OverflowError):
        return DAMAGED_TIME


def system_clock() -> datetime:
    return datetime.now(UTC)


def seconds_clock(clock: Clock) -> Seconds:
    """``clock`` as seconds since the epoch: ``time.time`` itself for the system clock (a
    twentieth of what making a datetime costs, which the warm verify path notices; faketime
    fakes both alike), else ``clock().timestamp()``."""
    if clock is system_clock:
        return time.time
    return lambda: clock().timestamp()


class FrozenClock:
    """A clock that says the same time until told otherwise."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
