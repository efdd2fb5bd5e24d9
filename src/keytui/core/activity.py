"""How keys are used, in SQL: the builders behind uses in the last 24 h, heavy use and bursts
of wrong secrets, read from the hourly ``key_usage`` table (see usage.py).

- **uses in the last 24 h**: valid verifications in the current hour and the 23 before it.
- **heavy use**: more than :data:`HEAVY_FLOOR` valid uses in the current or the last hour, and
  more than :data:`HEAVY_FACTOR` times the key's usual hourly rate: the (lower) median of its
  uses over the hours it was used in, in the :data:`BASELINE_HOURS` before those two. A key
  with no such hours has a usual rate of 0 (the floor alone decides).
- **refused**: :data:`REFUSED_FLOOR` or more wrong secrets (throttled ones included) in the
  current or the last hour: someone tries secrets for a real key, or a client still sends one
  that was replaced.

The median needs no sort: "the lower median of n values is below peak/10" is "at least half of
them are", a sum over the key's rows, the same SQL on SQLite and PostgreSQL. The candidates
come from the index on ``hour`` (the keys busy in the last two hours), so the baseline is read
for those alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    null,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from .filter import Flag
from .models import Key, KeyUsage, UTCDateTime

__all__ = ["Flag", "heavy_keys", "lower_median", "refused_keys", "uses_24h"]

HEAVY_FACTOR = 10  # times the usual hourly rate
HEAVY_FLOOR = 100  # valid uses in an hour, at least (more than this)
REFUSED_FLOOR = 20  # wrong secrets in an hour (this many or more)
BASELINE_HOURS = 30 * 24  # the usual rate: over the 30 days before the hours judged
DAY_HOURS = 24


# ``hour`` below: an int, or a bound parameter (the prebuilt window statement).


def uses_24h(hour: Any) -> ColumnElement[int]:
    """A key's valid uses in ``hour`` and the 23 before it (correlated with ``keys``)."""
    return (
        select(func.coalesce(func.sum(KeyUsage.valid), 0))
        .where(
            KeyUsage.key_id == Key.key_id,
            KeyUsage.hour > hour - DAY_HOURS,
            KeyUsage.hour <= hour,
        )
        .scalar_subquery()
    )


def _recent(hour: Any, ids: Sequence[str] | Any | None) -> list[ColumnElement[bool]]:
    where = [KeyUsage.hour >= hour - 1, KeyUsage.hour <= hour]
    if ids is not None:
        where.append(KeyUsage.key_id.in_(ids))
    return where


def heavy_keys(hour: Any, ids: Sequence[str] | Any | None = None) -> Select[str]:
    """The IDs of keys in heavy use at ``hour`` (among ``ids``, when given), whatever their
    status (see the module's docstring)."""
    recent = (
        select(KeyUsage.key_id, func.max(KeyUsage.valid).label("peak"))
        .where(*_recent(hour, ids), KeyUsage.valid > HEAVY_FLOOR)
        .group_by(KeyUsage.key_id)
        .subquery()
    )
    base = aliased(KeyUsage)
    below = func.sum(case((base.valid * HEAVY_FACTOR < recent.c.peak, 1), else_=0))
    return (
        select(recent.c.key_id)
        .outerjoin(
            base,
            and_(
                base.key_id == recent.c.key_id,
                base.hour >= hour - 1 - BASELINE_HOURS,
                base.hour < hour - 1,
                base.valid > 0,
            ),
        )
        .group_by(recent.c.key_id, recent.c.peak)
        .having(2 * func.coalesce(below, 0) >= func.count(base.key_id))
    )


def refused_keys(hour: Any, ids: Sequence[str] | Any | None = None) -> Select[str]:
    """The IDs of keys with a burst of wrong secrets at ``hour`` (among ``ids``)."""
    return (
        select(KeyUsage.key_id)
        .where(
            *_recent(hour, ids),
            KeyUsage.wrong_secret + KeyUsage.throttled >= REFUSED_FLOOR,
        )
        .distinct()
    )


def _window() -> Any:
    """Uses in 24 h and both flags of the keys ``:ids`` at ``:hour`` (active ones: ``:now``),
    built once: building it cost more than running it (~10 ms of Python a window)."""
    hour = bindparam("hour", type_=Integer)
    ids: Any = bindparam("ids", expanding=True)
    now = bindparam("now", type_=UTCDateTime())
    # search.filter_status("active"), with the time as a parameter
    active = and_(
        func.coalesce(Key.revoked_at, null()).is_(None),
        or_(Key.expires_at.is_(None), Key.expires_at > now),
    )
    return select(
        Key.key_id,
        uses_24h(hour),
        and_(active, Key.key_id.in_(heavy_keys(hour, ids))),
        and_(active, Key.key_id.in_(refused_keys(hour, ids))),
    ).where(Key.key_id.in_(ids))


WINDOW = _window()


def lower_median(values: Sequence[int]) -> int:
    """The lower median (0 for none): what :func:`heavy_keys` compares with, in Python."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0
