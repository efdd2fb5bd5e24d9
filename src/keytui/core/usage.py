"""Use counts kept in memory and written in batches, never a row per request: per key ID, a
count and the last minute it was used."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

PENDING_MAX = 10_000  # keys with buffered counts before a flush is asked for early


class UsageBuffer:
    """Counts in memory, by key ID, written in batches by a flush, never once per request.

    ``add`` is on the warm path: a lock, a dict lookup and a comparison of times. The last use
    is kept as given and cut to the minute when written."""

    def __init__(self, flush_seconds: float) -> None:
        self.flush_seconds = flush_seconds
        self.pending: dict[str, list[Any]] = {}  # key ID -> [count, last used]
        self.due: datetime | None = None  # when the oldest buffered count should be written
        self.lock = threading.Lock()

    def add(self, key_id: str, now: datetime, count: int = 1) -> bool:
        """Record ``count`` uses; True when a flush should be asked for."""
        with self.lock:
            entry = self.pending.get(key_id)
            if entry is None:
                self.pending[key_id] = [count, now]
                if self.due is None:
                    self.due = now + timedelta(seconds=self.flush_seconds)
                return len(self.pending) >= PENDING_MAX or now >= self.due
            entry[0] += count
            if now > entry[1]:
                entry[1] = now
            if now >= self.due:  # type: ignore[operator]  # set with the first entry
                self.due = now + timedelta(seconds=self.flush_seconds)  # ask once, not per call
                return True
            return False

    def take(self) -> dict[str, list[Any]]:
        with self.lock:
            pending, self.pending = self.pending, {}
            self.due = None
            return pending

    def give_back(self, taken: dict[str, list[Any]]) -> None:
        """Put counts taken for a write that failed (or was put off) back, for the next try."""
        if not taken:
            return
        with self.lock:
            for key_id, (count, last) in taken.items():
                entry = self.pending.setdefault(key_id, [0, last])
                entry[0] += count
                entry[1] = max(entry[1], last)
            if self.due is None:
                self.due = max(last for _count, last in taken.values())


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)
