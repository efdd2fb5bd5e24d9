"""The main screen's paging window, without Textual: edges, offsets, tails and counts.

``Screen`` below does with a window what MainScreen does (fetch, take, put the cursor where
the result says, move it, ask for the next window at an edge), so a walk through every key
checks that each step lands on the very next key, across windows, from either end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from keytui.core.demo import seed_demo
from keytui.core.values import Counts, KeyActivity, KeyInfo, KeyPage, KeyQuery, Status
from keytui.tui.window import (
    COUNT_CAP,
    STEP,
    WINDOW,
    KeyReader,
    Loaded,
    Move,
    PagingWindow,
    Request,
    fetch,
    uncounted,
)

T = datetime(2026, 1, 1, tzinfo=UTC)


def key(index: int) -> KeyInfo:
    return KeyInfo(
        id=f"{index:010d}",
        name=f"key {index}",
        description="",
        owner="alice",
        role="read-only",
        status="active",
        created_at=T,
        updated_at=T,
        expires_at=None,
        revoked_at=None,
        revoked_by=None,
        last_used_at=None,
        use_count=0,
        allowed_hosts=(),
    )


@dataclass
class FakeKeys:
    """``n`` active keys, key 0 the newest; a search matches names that contain it. Without a
    search nothing is listed, so a million keys cost nothing. Every read is recorded."""

    n: int
    lists: list[KeyQuery] = field(default_factory=list)
    counted: list[tuple[str, Status | None, int | None]] = field(default_factory=list)
    status_counts: int = 0
    activity_reads: list[int] = field(default_factory=list)

    def _matching(self, search: str, status: Status | None) -> range | list[int]:
        if status not in (None, "active"):
            return []
        if not search:
            return range(self.n)
        return [i for i in range(self.n) if search in f"key {i}"]

    def list_keys(self, query: KeyQuery) -> KeyPage:
        self.lists.append(query)
        order = self._matching(query.search, query.status)
        if not query.descending:
            order = order[::-1]
        found = order[query.offset : query.offset + query.limit + 1]
        keys = tuple(key(i) for i in found[: query.limit])
        return KeyPage(keys, query.offset, len(found) > query.limit)

    def count_keys(
        self, search: str = "", status: Status | None = None, *, cap: int | None = None
    ) -> int:
        self.counted.append((search, status, cap))
        total = len(self._matching(search, status))
        return total if cap is None else min(total, cap + 1)

    def counts(self) -> Counts:
        self.status_counts += 1
        return Counts(active=self.n, expired=0, revoked=0)

    def key_activity(self, key_ids) -> dict[str, KeyActivity]:
        self.activity_reads.append(len(key_ids))  # one read per window, whatever its size
        return {key_id: KeyActivity(uses_24h=7) for key_id in key_ids}


class Screen:
    """What MainScreen does with its window, minus the painting."""

    def __init__(self, reader: KeyReader, window: PagingWindow | None = None) -> None:
        self.reader = reader
        self.window = window or PagingWindow()
        self.rows: tuple[KeyInfo, ...] = ()
        self.cursor = 0

    def load(self, request: Request) -> None:
        result = fetch(self.reader, request)
        if not self.window.is_current(result.query):
            return
        if self.window.fell_off(result):
            self.go(self.window.bottom(), recount=True)
            return
        self.window.take(result)
        self.rows = result.page.keys
        if self.rows:
            self.cursor = max(0, min(result.cursor, len(self.rows) - 1))
        if self.window.counts is None:  # the header's counts, read once the keys are shown
            self.window.set_counts(self.reader.counts())

    def reload(self, offset: int | None = None, cursor: int = 0, *, recount: bool = True) -> None:
        self.load(self.window.request(offset, cursor, recount=recount))

    def go(self, move: Move, *, recount: bool = False) -> None:
        self.load(self.window.request(move.offset, move.cursor, tail=move.tail, recount=recount))

    @property
    def current(self) -> KeyInfo:
        return self.rows[self.cursor]

    def down(self) -> None:
        if self.window.more_below and self.cursor >= len(self.rows) - 1:
            self.go(self.window.edge(+1, self.cursor, len(self.rows)))
        elif self.cursor < len(self.rows) - 1:
            self.cursor += 1

    def up(self) -> None:
        if self.window.more_above and self.cursor <= 0:
            self.go(self.window.edge(-1, self.cursor, len(self.rows)))
        elif self.cursor > 0:
            self.cursor -= 1

    def bottom(self) -> None:
        if self.window.at_bottom:
            self.cursor = len(self.rows) - 1
        else:
            self.go(self.window.bottom())

    def top(self) -> None:
        if self.window.at_top:
            self.cursor = 0
        else:
            self.reload(offset=0, cursor=0, recount=False)


def check_place(screen: Screen, everything: list[str]) -> None:
    """The rows shown are the keys at ``start`` onwards, and the info line says so."""
    window, rows = screen.window, len(screen.rows)
    assert 0 < rows <= WINDOW
    assert [k.id for k in screen.rows] == everything[window.start : window.start + rows]
    first, last, total = window.start + 1, window.start + rows, len(everything)
    assert window.position(rows) == f"Keys {first:,}–{last:,} of {total:,}"


# -- walking every key, across windows -------------------------------------------------------


@pytest.mark.parametrize("n", [1, 99, 100, 101, 150, 333])
def test_down_from_the_top_then_up_from_the_bottom_visits_every_key_in_order(n):
    everything = [key(i).id for i in range(n)]
    screen = Screen(FakeKeys(n))
    screen.reload(offset=0, cursor=0)
    visited = [screen.current.id]
    for _ in range(n - 1):
        screen.down()
        visited.append(screen.current.id)
        check_place(screen, everything)
    assert visited == everything
    screen.down()  # at the very end: nothing more
    assert screen.current.id == everything[-1]

    screen.top()
    screen.bottom()  # G: the last window, read from the end
    assert screen.current.id == everything[-1]
    check_place(screen, everything)
    visited = [screen.current.id]
    for _ in range(n - 1):
        screen.up()
        visited.append(screen.current.id)
        check_place(screen, everything)
    assert visited == everything[::-1]
    screen.up()
    assert screen.current.id == everything[0]


def test_the_walk_holds_on_a_real_service(make_sqlite_service):
    service = make_sqlite_service("alice")
    seed_demo(service, 260)
    everything = [k.id for k in service.list_keys(KeyQuery(limit=300)).keys]
    screen = Screen(service)
    screen.reload(offset=0, cursor=0)
    for position in range(1, len(everything)):
        screen.down()
        assert screen.current.id == everything[position]
    screen.top()
    screen.bottom()
    for position in range(len(everything) - 1, 0, -1):
        assert screen.current.id == everything[position]
        check_place(screen, everything)
        screen.up()
    assert screen.current.id == everything[0]


def test_the_edges_move_by_a_step_and_keep_the_cursor_on_the_neighbour():
    window = PagingWindow()
    window.start = 100
    assert window.edge(+1, WINDOW - 1, WINDOW) == Move(offset=100 + STEP, cursor=WINDOW - STEP)
    assert window.edge(-1, 0, WINDOW) == Move(offset=100 - STEP, cursor=STEP - 1)
    window.start = 20  # near the top: the window cannot start above the first key
    assert window.edge(-1, 0, WINDOW) == Move(offset=0, cursor=19)

    window.tail = 70  # counted from the end
    down = window.edge(+1, WINDOW - 1, WINDOW)
    assert (down.offset, down.tail, down.cursor) == (None, 70 - STEP, WINDOW - STEP)
    window.tail = 30  # near the bottom: the tail cannot pass the last key
    assert window.edge(+1, WINDOW - 1, WINDOW).tail == 0
    up = window.edge(-1, 0, WINDOW)
    assert up.tail == 30 + STEP and callable(up.cursor)
    assert up.cursor(WINDOW) == STEP - 1  # a full window: the row above the old first one
    assert up.cursor(60) == 9  # the top of the list: 60 rows, the old first row is the 11th


def test_bottom_reads_the_reversed_order_from_offset_zero_not_a_million_rows_down():
    reader = FakeKeys(1_000_000)
    screen = Screen(reader)
    screen.reload(offset=0, cursor=0)
    screen.bottom()
    last = reader.lists[-1]
    assert (last.offset, last.descending) == (0, False)  # no OFFSET of a million rows
    assert screen.current.id == key(999_999).id
    assert screen.window.start == 1_000_000 - WINDOW
    assert screen.window.position(WINDOW) == "Keys 999,901–1,000,000 of 1,000,000"
    screen.cursor = 0
    screen.up()  # past the top of the last window: read from the end too
    assert reader.lists[-1].offset == STEP and not reader.lists[-1].descending
    assert screen.current.id == key(1_000_000 - WINDOW - 1).id
    assert max(q.offset for q in reader.lists) == STEP


def test_at_top_and_at_bottom_move_the_cursor_only():
    reader = FakeKeys(40)
    screen = Screen(reader)
    screen.reload(offset=0, cursor=0)
    assert screen.window.at_top and screen.window.at_bottom  # it all fits in one window
    reads = len(reader.lists)
    screen.bottom()
    screen.top()
    assert len(reader.lists) == reads
    big = Screen(FakeKeys(400))
    big.reload(offset=0, cursor=0)
    assert big.window.at_top and not big.window.at_bottom
    big.bottom()
    assert big.window.at_bottom and not big.window.at_top and big.window.tail == 0


def test_reloading_reads_the_window_shown_again_from_where_it_is_counted():
    screen = Screen(FakeKeys(400))
    screen.reload(offset=150, cursor=3)
    request = screen.window.request(None, 3)
    assert (request.query.offset, request.tail) == (150, None)
    screen.bottom()
    screen.cursor = 0
    screen.up()  # tail = STEP
    request = screen.window.request(None, 3)
    assert (request.query.offset, request.tail) == (0, STEP)


def test_a_window_that_fell_off_the_end_steps_back_to_the_last_one():
    reader = FakeKeys(400)
    screen = Screen(reader)
    screen.reload(offset=300, cursor=5)
    reader.n = 120  # keys were revoked out of the filter meanwhile
    screen.window.set_counts(reader.counts())  # the header's counts after the change
    screen.reload()  # the window shown, read again: empty now
    assert screen.window.tail == 0 and screen.rows
    assert screen.current.id == key(119).id
    assert screen.window.start == 20
    empty = Loaded(KeyQuery(limit=WINDOW), KeyPage((), 0, False), 0, 0)
    assert not PagingWindow.fell_off(empty)  # the first window of nothing is just empty
    tail_gone = Loaded(KeyQuery(limit=WINDOW), KeyPage((), STEP, False), 30, 0, tail=STEP)
    assert PagingWindow.fell_off(tail_gone)  # counted from the end, and as empty


# -- counting --------------------------------------------------------------------------------


def test_a_searchs_first_window_shows_at_once_and_is_counted_after():
    reader = FakeKeys(1_000)
    screen = Screen(reader)
    window = screen.window
    window.search = "1"
    screen.reload(offset=0, cursor=0)
    assert reader.counted == [] and window.match_count is None
    assert window.position(len(screen.rows)) == "Keys 1–100 of … matching"
    stale = KeyQuery(search="12")
    assert not window.counted(stale, 5) and window.match_count is None  # typed on meanwhile
    total = reader.count_keys("1", None, cap=COUNT_CAP)
    assert window.counted(window.query(0), total) and window.match_count == total
    assert not window.counted(window.query(0), 3)  # counted once
    assert window.position(100) == f"Keys 1–100 of {total:,} matching"


def test_a_search_with_few_matches_needs_no_count():
    reader = FakeKeys(1_000)
    screen = Screen(reader)
    screen.window.search = "999"
    screen.reload(offset=0, cursor=0)
    assert screen.window.match_count == 1 and reader.counted == []
    assert screen.window.position(1) == "Keys 1–1 of 1 matching"


def test_paging_keeps_the_count_and_more_than_the_cap_says_so():
    reader = FakeKeys(30_000)
    screen = Screen(reader)
    window = screen.window
    window.search = "key"
    screen.reload(offset=0, cursor=0)
    window.counted(window.query(0), reader.count_keys("key", None, cap=COUNT_CAP))
    assert window.position(100) == f"Keys 1–100 of more than {COUNT_CAP:,} matching"
    counted = len(reader.counted)
    screen.cursor = WINDOW - 1
    screen.down()  # paging: no new count
    assert len(reader.counted) == counted and window.match_count == COUNT_CAP + 1
    assert window.position(100) == f"Keys 51–150 of more than {COUNT_CAP:,} matching"
    screen.bottom()
    assert window.position(100) == f"The last 100 keys of more than {COUNT_CAP:,} matching"
    screen.cursor = 0
    screen.up()
    assert window.position(100) == f"Keys 150–51 from the end of more than {COUNT_CAP:,} matching"


def test_a_search_away_from_the_top_is_counted_with_the_window():
    reader = FakeKeys(1_000)
    window = PagingWindow()
    window.search = "1"
    result = fetch(reader, window.request(200, 0))
    assert reader.counted == [("1", None, COUNT_CAP)]
    assert result.total == len([i for i in range(1_000) if "1" in f"key {i}"])


def test_without_a_search_the_total_comes_from_the_status_counts():
    reader = FakeKeys(500)
    window = PagingWindow()
    assert fetch(reader, window.request(0, 0)).total is None  # the first window: not yet
    assert uncounted(reader.list_keys(KeyQuery(limit=WINDOW))) is None
    assert reader.counted == [] and reader.status_counts == 0

    window.status = "active"  # further down, before the header's counts: index-only counts
    assert fetch(reader, window.request(100, 0)).total == 500
    assert reader.status_counts == 1 and reader.counted == []
    window.status = None
    assert fetch(reader, window.request(100, 0)).total == 500
    assert reader.counted == [("", None, None)]

    window.counts = Counts(active=7, expired=2, revoked=1)  # the header's: no read at all
    reader.counted.clear()
    assert fetch(reader, window.request(100, 0)).total == 10
    window.status = "expired"
    assert fetch(reader, window.request(100, 0)).total == 2
    assert reader.counted == [] and reader.status_counts == 1


def test_new_counts_give_the_total_only_without_a_search():
    window = PagingWindow()
    counts = Counts(active=7, expired=2, revoked=1)
    assert not window.set_counts(counts) and window.counts == counts  # nothing shown yet
    window.loaded, window.status = True, "revoked"
    assert window.set_counts(counts) and window.match_count == 1
    window.search, window.match_count = "x", 40
    assert not window.set_counts(Counts(1, 1, 1)) and window.match_count == 40


def test_at_the_bottom_fewer_keys_move_the_start_not_past_the_total():
    """After G, revoked out of the filter (or deleted): the start follows the new total."""
    reader = FakeKeys(300)
    screen = Screen(reader)
    screen.reload(offset=0, cursor=0)
    screen.bottom()
    assert screen.window.position(WINDOW) == "Keys 201–300 of 300"
    reader.n = 295
    screen.window.set_counts(reader.counts())  # the counts arrive before the window
    assert screen.window.position(WINDOW) == "Keys 196–295 of 295"
    screen.reload()
    check_place(screen, [key(i).id for i in range(295)])


def test_the_total_is_the_header_count_whichever_arrives_first():
    """Create, then delete: the window's read and the counts' read race; the info line's
    total is always the header's count for the tab."""
    reader = FakeKeys(150)
    screen = Screen(reader)
    screen.reload(offset=0, cursor=0)
    window = screen.window
    stale = window.request(None, 0)  # asked before the change, with the counts then
    reader.n = 151
    window.set_counts(reader.counts())  # the counts after it arrive first
    screen.load(stale)
    assert window.match_count == window.counts.total == 151
    assert window.position(WINDOW).endswith("of 151")
    reader.n = 150
    fresh = window.request(None, 0)
    screen.load(fresh)  # a window read after the delete, before its counts
    window.set_counts(reader.counts())
    assert window.match_count == window.counts.total == 150


def test_a_result_for_an_older_search_filter_or_sort_is_dropped():
    screen = Screen(FakeKeys(300))
    window = screen.window
    screen.reload(offset=0, cursor=0)
    for change in ({"search": "7"}, {"status": "revoked"}, {"sort": "name"}):
        request = window.request(0, 0)
        fresh = PagingWindow()
        for name, value in change.items():
            setattr(fresh, name, value)
        screen.window = fresh
        screen.load(request)
        assert not fresh.loaded, change
        screen.window = window


def test_the_info_line_words_for_nothing():
    window = PagingWindow()
    window.match_count = 0
    assert window.position(0) == "No keys yet · press n to create one"
    window.status = "expired"
    assert window.position(0) == "No keys match"
