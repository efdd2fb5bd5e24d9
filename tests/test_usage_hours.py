"""How each key is used: verifications counted per key and hour by outcome (written in batches,
added up across verifiers, pruned after 90 days), the reading API, heavy use and bursts of wrong
secrets (the ``is:`` filter terms), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from keytui.core import activity, keyformat
from keytui.core import filter as lang
from keytui.core.clock import FrozenClock, seconds_clock, system_clock
from keytui.core.errors import InvalidInput, NotFound
from keytui.core.models import KeyUsage
from keytui.core.usage import (
    KEPT_HOURS,
    OUTCOMES,
    PRUNE_HOURS,
    VALID,
    WRONG_SECRET,
    HourlyUsage,
    hour_of,
    minute,
)
from keytui.core.values import KeyQuery

from .conftest import NOW


def rows(service, key_id: str) -> list[KeyUsage]:
    with service.db.read() as session:
        return list(
            session.scalars(
                select(KeyUsage).where(KeyUsage.key_id == key_id).order_by(KeyUsage.hour)
            )
        )


def put(service, key_id: str, hour: int, **counts: int) -> None:
    """A row of ``key_usage`` as a flush would leave it (history no test would wait for)."""
    with service.db.write() as session:
        session.merge(
            KeyUsage(key_id=key_id, hour=hour, **{**dict.fromkeys(OUTCOMES, 0), **counts})
        )


def ids(service, search: str) -> set[str]:
    return {key.id for key in service.iter_keys(KeyQuery(search=search))}


# -- counting ------------------------------------------------------------------------------------


def test_every_outcome_is_counted_by_hour_with_its_host(admin, clock):
    hosted = admin.create_key("hosted", allowed_hosts=["10.0.0.0/8"])
    expiring = admin.create_key("expiring", expires=NOW + timedelta(minutes=30))
    revoked = admin.create_key("revoked")
    admin.revoke_key(revoked.key.id)
    codes: Counter[str] = Counter()
    for _ in range(3):
        codes[admin.verify(hosted.secret, host="10.1.2.3").code] += 1
    clock.advance(minutes=1)
    codes[admin.verify(hosted.secret, host="192.0.2.1").code] += 1  # not an allowed host
    for _ in range(8):  # new wrong secrets for a real key: refused, then throttled
        codes[admin.verify(keyformat.new_secret(hosted.key.id), host="203.0.113.9").code] += 1
    codes[admin.verify(revoked.secret, host="10.9.9.9").code] += 1
    clock.advance(minutes=31)  # 12:32: expired, still the same hour
    codes[admin.verify(expiring.secret).code] += 1
    admin.update_settings(keys_enabled=False)
    codes[admin.verify(hosted.secret, host="10.1.2.3").code] += 1
    codes[admin.verify(keyformat.new_secret("zzzzzzzzzz")).code] += 1  # no such key: not counted
    admin.update_settings(keys_enabled=True)
    assert codes["VALID"] == 3 and codes["HOST_NOT_ALLOWED"] == 1
    assert codes["NOT_FOUND"] + codes["THROTTLED"] == 8  # the unknown key came while disabled
    assert admin.key_usage(hosted.key.id).outcomes_24h["valid"] == 0  # nothing written yet
    admin.flush_usage()

    report = admin.key_usage(hosted.key.id)
    assert report.outcomes_24h == {
        "valid": 3,
        "revoked": 0,
        "expired": 0,
        "disabled": 1,
        "host_denied": 1,
        "wrong_secret": codes["NOT_FOUND"],
        "throttled": codes["THROTTLED"],
    }
    assert report.outcomes_30d == report.outcomes_24h
    assert report.hours == (0,) * 23 + (3,) and report.days == (0,) * 29 + (3,)
    assert (report.last_used_at, report.last_used_host) == (NOW, "10.1.2.3")
    assert report.last_refused_host == "10.1.2.3"  # the disabled one came last
    assert report.last_refused_at == NOW + timedelta(minutes=32)
    assert admin.key_usage(revoked.key.id).outcomes_24h["revoked"] == 1
    assert admin.key_usage(expiring.key.id).outcomes_24h["expired"] == 1
    assert rows(admin, "zzzzzzzzzz") == []  # an ID of no key leaves no row
    assert [row.hour for row in rows(admin, hosted.key.id)] == [hour_of(NOW)]


def test_hours_and_days_are_kept_apart(admin, clock):
    issued = admin.create_key("k")
    start = hour_of(NOW)
    for hours_later in (0, 1, 1, 25):
        clock.now = NOW + timedelta(hours=hours_later)
        assert admin.verify(issued.secret, host=f"h{hours_later}").valid
        admin.flush_usage()  # each hour's flush: rows add up
    report = admin.key_usage(issued.key.id)
    assert [row.hour - start for row in rows(admin, issued.key.id)] == [0, 1, 25]
    assert report.hours[-1] == 1
    assert sum(report.hours) == 1  # 13:00 the day before is 24 hours back: out of the 24
    assert report.days[-2:] == (3, 1) and report.uses_30d == 4
    assert report.use_count == 4 and report.last_used_host == "h25"


def test_a_deleted_key_takes_its_rows_with_it(admin):
    issued = admin.create_key("k")
    admin.verify(issued.secret)
    admin.flush_usage()
    assert rows(admin, issued.key.id)
    admin.verify(issued.secret)
    admin.delete_keys([issued.key.id])
    admin.flush_usage()  # the buffered use of a key deleted meanwhile is dropped
    assert rows(admin, issued.key.id) == []


def test_a_report_takes_a_pasted_secret_and_refuses_unknown_keys(admin):
    issued = admin.create_key("k")
    assert admin.key_usage(issued.secret).key_id == issued.key.id
    with pytest.raises(NotFound):
        admin.key_usage("zzzzzzzzzz")
    with pytest.raises(InvalidInput):
        admin.key_usage(issued.secret[:-2] + "zz")  # starts like a secret: never echoed


@pytest.mark.parametrize("rounds", [12])
def test_verifiers_on_several_hosts_add_and_never_overwrite(make_service, clock, rounds):
    """Four verifiers (an engine each, as on four hosts) flush counts for the same keys and
    hours at the same instant, from a barrier, round after round, in the background mode that
    waits for no lock (a flush that gives up keeps its counts and tries again)."""
    admin = make_service("alice")
    keys = [admin.create_key(f"k{n}").key.id for n in range(3)]
    verifiers = [make_service("alice") for _ in range(4)]
    hour = hour_of(NOW)
    barrier = threading.Barrier(len(verifiers))
    failures: list[BaseException] = []

    def run(index: int, service) -> None:
        buffer = HourlyUsage()
        try:
            for round_ in range(rounds):
                for key_id in keys:
                    at = (NOW + timedelta(seconds=round_)).timestamp()
                    for _ in range(index + 1):
                        buffer.add(key_id, VALID, f"host{index}", at)
                    buffer.add(key_id, WRONG_SECRET, f"host{index}", NOW.timestamp())
                barrier.wait(timeout=60)
                while not buffer.flush(service.db, NOW, "200ms"):
                    pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in enumerate(verifiers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    per_round = sum(range(1, len(verifiers) + 1))  # 1 + 2 + 3 + 4 valid uses of each key
    for key_id in keys:
        (row,) = rows(admin, key_id)
        assert (row.hour, row.valid, row.wrong_secret) == (
            hour,
            per_round * rounds,
            len(verifiers) * rounds,
        )
        assert row.used_at == NOW.replace(second=0)  # the minute of the last use
        assert row.used_host in {f"host{n}" for n in range(len(verifiers))}


def test_a_failed_flush_keeps_its_counts(admin, monkeypatch):
    issued = admin.create_key("k")
    buffer = HourlyUsage()
    buffer.add(issued.key.id, VALID, "a", NOW.timestamp())
    buffer.add(issued.key.id, VALID, "b", (NOW + timedelta(seconds=5)).timestamp())

    def broken(*_args, **_kwargs):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with monkeypatch.context() as patch:
        patch.setattr("keytui.core.usage._upsert", broken)
        assert buffer.flush(admin.db, NOW) is False
    older = (NOW + timedelta(seconds=1)).timestamp()
    buffer.add(issued.key.id, VALID, "c", older)  # older: not the last
    assert buffer.flush(admin.db, NOW) is True
    (row,) = rows(admin, issued.key.id)
    assert (row.valid, row.used_host) == (3, "b")


def test_old_buckets_are_pruned_a_day_at_a_time(admin):
    issued = admin.create_key("k")
    now_hour = hour_of(NOW)
    oldest = now_hour - KEPT_HOURS - 40  # 40 hours past the 90 days
    for hour in (oldest, oldest + 30, now_hour - KEPT_HOURS, now_hour - KEPT_HOURS + 1, now_hour):
        put(admin, issued.key.id, hour, valid=1)
    buffer = HourlyUsage()
    assert buffer.flush(admin.db, NOW)  # nothing buffered: a prune all the same
    left = [row.hour for row in rows(admin, issued.key.id)]
    assert left == [oldest + 30, now_hour - KEPT_HOURS, now_hour - KEPT_HOURS + 1, now_hour]
    assert oldest + PRUNE_HOURS <= oldest + 30  # one day of old hours per call
    assert buffer.flush(admin.db, NOW)  # more was left: the next flush goes on
    kept = [now_hour - KEPT_HOURS + 1, now_hour]  # 90 days: 2,160 hours, the current one too
    assert [row.hour for row in rows(admin, issued.key.id)] == kept
    put(admin, issued.key.id, now_hour - KEPT_HOURS, valid=1)
    assert buffer.flush(admin.db, NOW)  # done for this hour: one prune an hour at most
    assert len(rows(admin, issued.key.id)) == 3
    assert buffer.flush(admin.db, NOW + timedelta(hours=1))
    assert [row.hour for row in rows(admin, issued.key.id)] == kept[1:]


# -- heavy use and wrong secrets -------------------------------------------------------------------


def test_heavy_use_is_judged_against_the_keys_own_usual_rate(admin, clock):
    hour = hour_of(NOW)
    made = {
        name: admin.create_key(name).key.id for name in "usual busy new old last revoked".split()
    }
    floor = admin.create_key("floor").key.id
    for back in range(2, 102):  # 100 used hours in the 30 days before the last two
        put(admin, made["usual"], hour - back * 3, valid=50)  # usual 50: 10x is 500
        put(admin, made["busy"], hour - back * 3, valid=20)  # usual 20: 10x is 200
        put(admin, made["revoked"], hour - back * 3, valid=1)
    put(admin, made["old"], hour - activity.BASELINE_HOURS - 5, valid=1000)  # over 30 days back
    put(admin, made["usual"], hour, valid=499)
    put(admin, made["busy"], hour, valid=201)
    put(admin, made["new"], hour, valid=activity.HEAVY_FLOOR + 1)
    put(admin, made["old"], hour, valid=activity.HEAVY_FLOOR + 1)
    put(admin, made["last"], hour - 1, valid=5000)
    put(admin, made["revoked"], hour, valid=5000)
    put(admin, floor, hour, valid=activity.HEAVY_FLOOR)  # the floor itself is not above it
    admin.revoke_key(made["revoked"])
    heavy = {made["busy"], made["new"], made["old"], made["last"]}

    assert ids(admin, "is:heavy") == heavy
    assert ids(admin, "-is:heavy") == {k.id for k in admin.iter_keys()} - heavy
    assert admin.count_keys("is:heavy") == 4 and admin.count_keys("is:heavy", cap=2) == 3
    assert admin.usage_flags().heavy == 4
    window = admin.key_activity(list(made.values()) + [floor])
    assert {key_id for key_id, act in window.items() if act.heavy} == heavy
    assert window[made["busy"]].uses_24h == 201 + 20 * 6  # and 6, 9, ..., 21 hours back
    report = admin.key_usage(made["busy"])
    assert (report.heavy, report.usual, report.peak) == (True, 20, 201)
    assert admin.key_usage(made["usual"]).usual == 50 and not admin.key_usage(made["usual"]).heavy
    clock.advance(hours=2)  # the busy hours are now history, not the current or the last
    assert ids(admin, "is:heavy") == set()


def test_the_sql_median_agrees_with_python(admin):
    """Random histories (odd and even numbers of used hours, ties): the SQL test of "more than
    10x the lower median" is the Python one."""
    rng = random.Random(12)
    hour = hour_of(NOW)
    expected: dict[str, bool] = {}
    for n in range(40):
        key_id = admin.create_key(f"k{n}").key.id
        history = [rng.choice([1, 2, 5, 10, 20, 30, 40, 60]) for _ in range(rng.randint(0, 9))]
        for offset, count in enumerate(history):
            put(admin, key_id, hour - 2 - offset * 7, valid=count)
        peak = rng.choice([101, 150, 250, 450, 700])
        put(admin, key_id, hour - rng.randint(0, 1), valid=peak)
        expected[key_id] = peak > activity.HEAVY_FACTOR * activity.lower_median(history)
        assert admin.key_usage(key_id).usual == activity.lower_median(history)
    assert ids(admin, "is:heavy") == {k for k, heavy in expected.items() if heavy}
    assert 5 < sum(expected.values()) < 35  # both answers are exercised


def test_a_burst_of_wrong_secrets_is_flagged(admin, clock):
    hour = hour_of(NOW)
    burst = admin.create_key("burst").key.id
    few = admin.create_key("few").key.id
    earlier = admin.create_key("earlier").key.id
    put(admin, burst, hour - 1, wrong_secret=15, throttled=activity.REFUSED_FLOOR - 15)
    put(admin, few, hour, wrong_secret=activity.REFUSED_FLOOR - 1)
    put(admin, earlier, hour - 2, wrong_secret=1000)
    assert ids(admin, "is:refused") == {burst}
    assert admin.usage_flags().refused == 1 and admin.usage_flags().heavy == 0
    assert admin.key_activity([burst, few])[burst].refused
    assert admin.key_usage(burst).wrong_peak == activity.REFUSED_FLOOR
    assert ids(admin, "is:refused owner:alice name:burst") == {burst}
    assert ids(admin, "is:refused is:heavy") == set()


def test_wrong_secrets_from_verify_reach_the_flag(admin):
    issued = admin.create_key("k")
    for _ in range(activity.REFUSED_FLOOR):
        result = admin.verify(keyformat.new_secret(issued.key.id), host="198.51.100.7")
        assert not result.valid
    admin.flush_usage()
    assert ids(admin, "is:refused") == {issued.key.id}
    assert admin.key_usage(issued.key.id).last_refused_host == "198.51.100.7"


def test_the_table_sorts_by_uses_in_the_last_24_hours(admin):
    hour = hour_of(NOW)
    made = [admin.create_key(f"k{n}").key.id for n in range(5)]
    put(admin, made[1], hour, valid=5)
    put(admin, made[1], hour - 23, valid=5)
    put(admin, made[3], hour - 3, valid=7)
    put(admin, made[4], hour - 24, valid=100)  # a day ago: not in the last 24 hours
    order = [k.id for k in admin.list_keys(KeyQuery(sort="uses_24h")).keys]
    assert order[:2] == [made[1], made[3]]
    assert order[2:] == [made[4], made[2], made[0]]  # no uses: newest first
    ascending = [k.id for k in admin.list_keys(KeyQuery(sort="uses_24h", descending=False)).keys]
    assert ascending == order[::-1]
    assert admin.key_activity(made)[made[1]].uses_24h == 10


# -- the filter terms ---------------------------------------------------------------------------


def test_is_terms_parse_and_print_back():
    parsed = lang.parse("is:heavy -is:Refused owner:bob")
    assert parsed.terms[0] == lang.Flagged("heavy")
    assert parsed.terms[1] == lang.Not(lang.Flagged("refused"))
    assert str(parsed) == "is:heavy -is:refused owner:bob"
    with pytest.raises(InvalidInput, match="is: is heavy"):
        lang.parse("is:busy")
    with pytest.raises(InvalidInput, match="is:"):
        lang.parse("was:heavy")  # the unknown-term line names is: among the terms


def test_flushes_write_no_row_per_request(admin):
    """A thousand verifies of one key in one hour are one row, written by one flush."""
    issued = admin.create_key("k")
    for _ in range(1000):
        assert admin.verify(issued.secret, host="10.0.0.1").valid
    with admin.db.read() as session:
        assert session.scalar(select(func.count()).select_from(KeyUsage)) == 0
    admin.flush_usage()
    (row,) = rows(admin, issued.key.id)
    assert row.valid == 1000


def test_outcome_names_are_the_table_columns():
    assert {column.name for column in KeyUsage.__table__.columns} >= set(OUTCOMES)


def test_counts_held_through_failing_flushes_are_bounded(monkeypatch, caplog):
    monkeypatch.setattr("keytui.core.usage.HELD_MAX", 10)
    buffer = HourlyUsage()
    taken = {}
    for hour in range(15):
        buffer.add("k", VALID, None, (NOW + timedelta(hours=hour)).timestamp())
    taken = buffer.take()
    buffer.give_back(taken)  # a flush that failed
    assert sorted(hour for _key, hour in buffer.pending) == [hour_of(NOW) + h for h in range(5, 15)]
    assert "key_usage grant" in caplog.text


def test_each_verification_lands_in_its_own_hour():
    """add() keeps the current hour's bounds instead of converting every time: uses across hour
    boundaries, and a clock set back, still land in their hours."""
    buffer = HourlyUsage()
    start = NOW - timedelta(seconds=1)
    expected: Counter[int] = Counter()
    for second in range(0, 3 * 3600, 7):
        at = start + timedelta(seconds=second)
        buffer.add("k", VALID, None, at.timestamp())
        expected[hour_of(at)] += 1
    buffer.add("k", VALID, None, (NOW - timedelta(hours=5)).timestamp())  # back in time
    expected[hour_of(NOW) - 5] += 1
    assert {hour: counts[VALID] for (_k, hour), counts in buffer.pending.items()} == expected


@pytest.mark.parametrize("descending", [True, False])
def test_paging_by_uses_is_the_one_sql_order_at_every_offset(admin, descending):
    """The used keys first (from the hour index), then the rest (pk order): page by page, in
    both directions and under a filter, exactly ORDER BY uses, pk of the whole table."""
    from sqlalchemy import select as sql_select

    from keytui.core.models import Key
    from keytui.core.search import key_order

    hour = hour_of(NOW)
    rng = random.Random(7)
    made = [admin.create_key(f"{'odd' if n % 2 else 'even'} {n}").key.id for n in range(14)]
    for key_id in rng.sample(made, 6):
        put(admin, key_id, hour - rng.randint(0, 30), valid=rng.choice([1, 3, 3, 9]))
    for search in ("", "odd"):
        with admin.db.read() as session:
            where = admin._find.filters(search, None, None, NOW, session)
            whole = list(
                session.scalars(
                    sql_select(Key.key_id)
                    .where(*where)
                    .order_by(*key_order("uses_24h", descending, NOW))
                )
            )
        for limit in (1, 2, 5):
            for offset in range(len(whole) + 2):
                page = admin.list_keys(
                    KeyQuery(
                        search=search,
                        sort="uses_24h",
                        descending=descending,
                        limit=limit,
                        offset=offset,
                    )
                )
                assert [k.id for k in page.keys] == whole[offset : offset + limit]
                assert page.has_more == (len(whole) > offset + limit)


def test_buffered_times_are_seconds_cut_to_their_minute_when_written():
    """The buffers keep seconds since the epoch (the warm path makes no datetime); written,
    a time is its minute, exactly, even a hair before the next one."""
    start = NOW.replace(second=0, microsecond=0)
    for offset in (0.0, 0.000001, 30.5, 59.999999):
        assert minute(start.timestamp() + offset) == start
    assert minute(start.timestamp() + 60) == start + timedelta(minutes=1)


def test_the_warm_path_reads_the_system_clock_as_seconds():
    assert seconds_clock(system_clock) is time.time
    frozen = FrozenClock(NOW)
    seconds = seconds_clock(frozen)
    frozen.advance(seconds=90)
    assert seconds() == (NOW + timedelta(seconds=90)).timestamp()
