"""The main screen's paging window: which keys the table holds, where they sit in the whole
list, and how many there are. Plain Python (no Textual), so it is tested without Pilot.

The table holds one window of at most ``WINDOW`` keys. Its position is an offset from the top,
or (after ``G``) a ``tail`` counted from the bottom: the reversed order read from a small
offset, so the last keys of a million cost no OFFSET of a million rows. At an edge the window
moves by ``STEP`` rows and the cursor stays on the same key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..core.values import Counts, KeyActivity, KeyPage, KeyQuery, Status

WINDOW = 100  # rows the table holds at once
STEP = 50  # rows a window moves by at its edge
COUNT_CAP = 10_000  # a search counts its matches up to here ("of more than 10,000")

#: The row for the cursor, or a function of the number of rows fetched that gives it.
Cursor = int | Callable[[int], int]


class KeyReader(Protocol):
    """What a window reads of ``KeyService`` (a plain stand-in does in tests)."""

    def list_keys(self, query: KeyQuery) -> KeyPage: ...

    def count_keys(
        self, search: str = ..., status: Status | None = ..., *, cap: int | None = ...
    ) -> int: ...

    def counts(self) -> Counts: ...

    def key_activity(self, key_ids: Sequence[str]) -> dict[str, KeyActivity]: ...


@dataclass(frozen=True)
class Loaded:
    query: KeyQuery
    page: KeyPage
    total: int | None  # above COUNT_CAP for a search: "more than"; None: not counted yet
    cursor: int
    tail: int | None = None  # set: the window ends this many rows before the last one
    # uses in the last 24 h and flags of the window's keys (one query); None: not read
    activity: dict[str, KeyActivity] | None = field(default=None, compare=False)
    # the header's counts, read with the window (a change from elsewhere): both land together
    counts: Counts | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Request:
    """One window to fetch, with what was known of the total when it was asked for."""

    query: KeyQuery
    tail: int | None
    cursor: Cursor
    recount: bool
    known: int | None
    counts: Counts | None
    fresh: bool = False  # read the header's counts again, beside the window


@dataclass(frozen=True)
class Move:
    """Where the window goes next: ``offset`` from the top, or ``tail`` from the bottom."""

    cursor: Cursor
    offset: int | None = None
    tail: int | None = None


def uncounted(page: KeyPage) -> int | None:
    """The total of a first window before any count: exact when the window holds them all."""
    return None if page.has_more else len(page.keys)


def count_of(counts: Counts, status: Status | None) -> int:
    """The header's count for a status tab (all keys without one)."""
    return getattr(counts, status) if status else counts.total


def fetch(service: KeyReader, request: Request) -> Loaded:
    """Read the window ``request`` asks for (in a worker), and its total.

    A search is counted up to COUNT_CAP; without one, the status counts give the total."""
    query, tail = request.query, request.tail
    if tail is None:
        page = service.list_keys(query)
    else:
        flipped = service.list_keys(replace(query, offset=tail, descending=not query.descending))
        page = replace(flipped, keys=flipped.keys[::-1])
    first = tail is None and query.offset == 0
    counts = service.counts() if request.fresh else request.counts
    total: int | None
    if not request.recount and request.known is not None:
        total = request.known
    elif query.search and first:
        # The window goes on screen now; the screen counts the matches right after (counting
        # a search's matches can cost more than finding the first hundred).
        total = uncounted(page)
    elif query.search:
        total = service.count_keys(query.search, query.status, cap=COUNT_CAP)
    elif counts is not None:  # the header's counts (kept current by the screen)
        total = count_of(counts, query.status)
    elif first:
        # The first window, before the header's counts: paint the keys now; the counts
        # bring the total right after.
        total = uncounted(page)
    elif query.status:  # index-only counts, where a filtered count would scan
        total = count_of(service.counts(), query.status)
    else:
        total = service.count_keys()
    cursor = request.cursor
    at = cursor(len(page.keys)) if callable(cursor) else cursor
    activity = service.key_activity([key.id for key in page.keys])
    return Loaded(query, page, total, at, tail, activity, counts if request.fresh else None)


class PagingWindow:
    """The search, filter and sort of the main screen, and the window of keys they show."""

    def __init__(self) -> None:
        self.search = ""
        self.status: Status | None = None
        self.sort = "created_at"
        self.descending = True
        self.start = 0  # the offset of the window's first row in the whole list
        self.tail: int | None = None  # the window counted from the end (after G), not the start
        self.rows = 0  # the keys in the window
        self.match_count: int | None = 0  # None: the first window's count is on its way
        self.counts: Counts | None = None
        self.more_above = False
        self.more_below = False
        self.loaded = False

    def query(self, offset: int) -> KeyQuery:
        return KeyQuery(
            search=self.search,
            status=self.status,
            sort=self.sort,
            descending=self.descending,
            limit=WINDOW,
            offset=max(0, offset),
        )

    def request(
        self,
        offset: int | None,
        cursor: Cursor,
        *,
        tail: int | None = None,
        recount: bool = True,
        fresh: bool = False,
    ) -> Request:
        """The window at ``offset`` (or ``tail``); neither: the one shown now, read again.
        ``recount=False`` (paging) keeps the count known now; ``fresh``: the header's counts
        are read again with the window (the database changed), so rows and total agree."""
        if offset is None and tail is None:
            offset, tail = (self.start, None) if self.tail is None else (0, self.tail)
        return Request(
            self.query(offset or 0), tail, cursor, recount, self.match_count, self.counts, fresh
        )

    # -- a window arrives ---------------------------------------------------------------------

    def is_current(self, query: KeyQuery) -> bool:
        """False when the user typed (or filtered, or sorted) on meanwhile: a newer result is
        on its way."""
        return (query.search, query.status, query.sort) == (self.search, self.status, self.sort)

    @staticmethod
    def fell_off(result: Loaded) -> bool:
        """An empty window past the first with keys before it (keys were revoked out of a
        filter): step back to the last window (``self.bottom()``) instead."""
        moved = result.query.offset > 0 or bool(result.tail)
        return not result.page.keys and moved and bool(result.total)

    def take(self, result: Loaded) -> None:
        """The window ``result`` is the one shown now."""
        self.tail = result.tail
        self.rows = len(result.page.keys)
        self.match_count = result.total
        if result.counts is not None:
            self.counts = result.counts
        if not self.search and self.counts is not None:
            # without a search the total is the header's count, whatever the fetch saw: the
            # two always agree (a window read before a change, with counts after it, or the
            # other way round, is set right by the counts that follow)
            self.match_count = count_of(self.counts, self.status)
        if result.tail is None:
            self.start = result.query.offset
            self.more_above, self.more_below = result.query.offset > 0, result.page.has_more
        else:  # known exactly unless the count was capped (a tail is never fetched uncounted)
            self._start_from_tail()
            self.more_above, self.more_below = result.page.has_more, result.tail > 0
        self.loaded = True

    def _start_from_tail(self) -> None:
        """A window counted from the end starts where the total puts it."""
        if self.tail is not None:
            self.start = max(0, (self.match_count or 0) - self.tail - self.rows)

    def counted(self, query: KeyQuery, total: int) -> bool:
        """A search's matches, counted after its first window: True when the count is new."""
        if (query.search, query.status) != (self.search, self.status):
            return False  # the user typed on: that search counts its own
        if self.match_count is not None:
            return False
        self.match_count = total
        return True

    def set_counts(self, counts: Counts) -> bool:
        """The header's counts, after a change: True when they gave a new total (without a
        search, the total is theirs)."""
        self.counts = counts
        if self.loaded and not self.search:
            self.match_count = count_of(counts, self.status)
            self._start_from_tail()  # after G, keys gone: not "Keys 201–300 of 295"
            return True
        return False

    # -- moving --------------------------------------------------------------------------------

    def edge(self, direction: int, row: int, rows: int) -> Move:
        """The cursor on ``row`` of ``rows`` tried to leave the window (``direction`` +1: down,
        -1: up): the neighbouring window, with the cursor on the row next to the old one."""
        tail = self.tail
        if tail is not None:  # counted from the end: move the tail, not the offset
            if direction > 0:
                new_tail = max(0, tail - STEP)
                return Move(tail=new_tail, cursor=row - (tail - new_tail) + 1)
            # the row above the old first row, wherever it lands in the new window
            return Move(tail=tail + STEP, cursor=lambda fetched: max(0, STEP + fetched - rows - 1))
        if direction > 0:
            return Move(offset=self.start + STEP, cursor=row - STEP + 1)
        new_offset = max(0, self.start - STEP)
        return Move(offset=new_offset, cursor=row + (self.start - new_offset) - 1)

    @property
    def at_top(self) -> bool:
        """Does the window start at the first key (``g`` only moves the cursor)?"""
        return self.start == 0 and self.tail is None

    @property
    def at_bottom(self) -> bool:
        """Does the window end at the last key (``G`` only moves the cursor)?"""
        return self.tail == 0 or (self.tail is None and not self.more_below)

    @staticmethod
    def bottom() -> Move:
        """The last window: the reversed order from offset 0, no OFFSET of a million rows."""
        return Move(tail=0, cursor=WINDOW)

    # -- what the info line says ----------------------------------------------------------------

    def position(self, rows: int) -> str:
        """Where the ``rows`` shown sit in the whole list, e.g. "Keys 101–200 of 5,000"."""
        narrowed = bool(self.search or self.status)
        if self.match_count == 0:
            return "No keys match" if narrowed else "No keys yet · press n to create one"
        if self.match_count is None:  # the first window, its count on the way
            return f"Keys 1–{rows:,} of …" + (" matching" if self.search else "")
        if self.match_count > COUNT_CAP and self.search:
            if self.tail is None:
                where = f"Keys {self.start + 1:,}–{self.start + rows:,}"
            elif self.tail == 0:
                where = f"The last {rows:,} keys"
            else:
                where = f"Keys {self.tail + rows:,}–{self.tail + 1:,} from the end"
            return where + f" of more than {COUNT_CAP:,} matching"
        where = f"Keys {self.start + 1:,}–{self.start + rows:,} of {self.match_count:,}"
        return where + (" matching" if narrowed else "")
