"""Reading how keys are used: one key's report, the table's uses in the last 24 h and flags for a
window of keys, and the header's count of flagged keys (the SQL is in activity.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import activity
from .models import Key, KeyUsage
from .search import flag_condition
from .service_base import ServiceBase
from .usage import OUTCOMES, hour_of
from .values import KeyActivity, KeyQuery, KeyUsageReport, UsageFlags

DAYS = 30  # daily totals in a key's report


class UsageReadsMixin(ServiceBase):
    """Reads only, for anyone who may read keys; nothing here counts a use."""

    def key_usage(self, key_id: str) -> KeyUsageReport:
        """How the key ``key_id`` (an ID, or a pasted secret standing for it) is used."""
        now = self.now()
        hour = hour_of(now)
        day_hours = activity.DAY_HOURS
        first_day = hour // day_hours - (DAYS - 1)
        since = min(first_day * day_hours, hour - 1 - activity.BASELINE_HOURS)
        with self._read() as session:
            key = self._key(session, key_id)
            rows = session.scalars(
                select(KeyUsage)
                .where(KeyUsage.key_id == key.key_id, KeyUsage.hour >= since)
                .where(KeyUsage.hour <= hour)
                .order_by(KeyUsage.hour)
            ).all()
            flags = self._activity(session, [key.key_id], now)[key.key_id]
            last_used_at, use_count = key.last_used_at, key.use_count
        hours = [0] * day_hours
        days = [0] * DAYS
        in_24h = dict.fromkeys(OUTCOMES, 0)
        in_30d = dict.fromkeys(OUTCOMES, 0)
        used: list[int] = []
        peak = wrong_peak = 0
        used_host: str | None = None
        used_at: datetime | None = None
        refused_at: datetime | None = None
        refused_host: str | None = None
        for row in rows:  # oldest first: the last use (refusal) seen is the latest
            counts = {outcome: int(getattr(row, outcome) or 0) for outcome in OUTCOMES}
            if row.hour > hour - day_hours:
                hours[row.hour - hour + day_hours - 1] = counts["valid"]
                for outcome, count in counts.items():
                    in_24h[outcome] += count
            if row.hour // day_hours >= first_day:
                days[row.hour // day_hours - first_day] += counts["valid"]
                for outcome, count in counts.items():
                    in_30d[outcome] += count
            if row.hour >= hour - 1:
                peak = max(peak, counts["valid"])
                wrong_peak = max(wrong_peak, counts["wrong_secret"] + counts["throttled"])
            elif row.hour >= hour - 1 - activity.BASELINE_HOURS and counts["valid"] > 0:
                used.append(counts["valid"])
            if row.used_at is not None:
                used_at, used_host = row.used_at, row.used_host
            if row.refused_at is not None:
                refused_at, refused_host = row.refused_at, row.refused_host
        if last_used_at is None or (used_at is not None and used_at > last_used_at):
            last_used_at = used_at
        return KeyUsageReport(
            key_id=key.key_id,
            hours=tuple(hours),
            days=tuple(days),
            outcomes_24h=in_24h,
            outcomes_30d=in_30d,
            use_count=use_count if isinstance(use_count, int) else 0,
            last_used_at=last_used_at,
            # the host of that last use, when the hourly rows still hold it (90 days)
            last_used_host=used_host if used_at is not None and used_at == last_used_at else None,
            last_refused_at=refused_at,
            last_refused_host=refused_host,
            usual=activity.lower_median(used),
            peak=peak,
            wrong_peak=wrong_peak,
            heavy=flags.heavy,
            refused=flags.refused,
        )

    def _by_uses(
        self, session: Session, where: list[Any], query: KeyQuery, now: datetime
    ) -> list[Key]:
        """``limit + 1`` keys from ``offset`` in the order of uses in the last 24 h (ties and
        unused keys newest first; ascending: the reverse), without reading every key's uses:
        the keys used in 24 h come from the index on ``hour`` (a few), sorted; the unused ones
        are the rest of the table in primary-key order, a scan that stops after one window."""
        hour = hour_of(now)
        totals = (
            select(KeyUsage.key_id, func.sum(KeyUsage.valid).label("uses"))
            .where(KeyUsage.hour > hour - activity.DAY_HOURS, KeyUsage.hour <= hour)
            .group_by(KeyUsage.key_id)
            .having(func.sum(KeyUsage.valid) > 0)
            .subquery()
        )
        down = query.descending
        used = (
            select(Key)
            .join(totals, totals.c.key_id == Key.key_id)
            .where(*where)
            .order_by(
                totals.c.uses.desc() if down else totals.c.uses.asc(),
                Key.pk.desc() if down else Key.pk.asc(),
            )
        )
        unused = (
            select(Key)
            .where(*where, Key.key_id.not_in(select(totals.c.key_id)))
            .order_by(Key.pk.desc() if down else Key.pk.asc())
        )
        first, second = (used, unused) if down else (unused, used)
        wanted, offset = query.limit + 1, query.offset
        rows = list(session.scalars(first.offset(offset).limit(wanted)))
        if len(rows) == wanted:
            return rows
        if rows or offset == 0:
            in_first = offset + len(rows)
        else:  # past the first part: how long it is
            in_first = int(session.scalar(select(func.count()).select_from(first.subquery())) or 0)
        rest = second.offset(max(0, offset - in_first)).limit(wanted - len(rows))
        return rows + list(session.scalars(rest))

    def key_activity(self, key_ids: Sequence[str]) -> dict[str, KeyActivity]:
        """Uses in the last 24 h and the flags of the keys ``key_ids`` (a window of the table):
        one query, whatever the number of keys (at most a few hundred)."""
        wanted = list(dict.fromkeys(key_ids))
        if not wanted:
            return {}
        with self._read() as session:
            return self._activity(session, wanted, self.now())

    def _activity(
        self, session: Session, key_ids: list[str], now: datetime
    ) -> dict[str, KeyActivity]:
        found = session.execute(activity.WINDOW, {"hour": hour_of(now), "ids": key_ids, "now": now})
        return {
            key_id: KeyActivity(int(uses or 0), bool(heavy), bool(refused))
            for key_id, uses, heavy, refused in found
        }

    def usage_flags(self) -> UsageFlags:
        """How many active keys are in heavy use and how many saw a burst of wrong secrets
        (the header's warning); the candidates come from the last two hours' rows alone."""
        now = self.now()

        def count(flag: activity.Flag) -> Any:
            return (
                select(func.count())
                .select_from(Key)
                .where(flag_condition(flag, now))
                .scalar_subquery()
            )

        with self._read() as session:
            row = session.execute(select(count("heavy"), count("refused"))).one()
        return UsageFlags(int(row[0] or 0), int(row[1] or 0))
