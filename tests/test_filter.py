"""The filter language (core/filter.py): what it reads, what it refuses in one line, that text
and tree round-trip, that no text breaks it, and that SQL on both databases finds exactly the
keys a plain Python reading of the same filter finds."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from keytui.core import filter as lang
from keytui.core import keyformat
from keytui.core.errors import InvalidInput
from keytui.core.models import Key
from keytui.core.service import KeyInfo, KeyQuery, KeyService

from .conftest import NOW

# -- reading ------------------------------------------------------------------------------------


def test_reads_each_kind_of_term():
    parsed = lang.parse(
        'owner:bob -status:revoked !role:ci name:"billing worker" id:3F host:10.0. '
        "created:<2026-01-01 expires:<7d used:>=30d unused:45d uses:>1000 ledger"
    )
    assert parsed.terms == (
        lang.Exact("owner", "bob"),
        lang.Not(lang.StatusIs("revoked")),
        lang.Not(lang.Exact("role", "ci")),
        lang.Contains("name", "billing worker"),
        lang.IdPrefix("3f"),
        lang.Contains("host", "10.0."),
        lang.When("created", "<", date(2026, 1, 1)),
        lang.When("expires", "<", lang.Span(7, "d")),
        lang.When("used", ">=", lang.Span(30, "d")),
        lang.Unused(lang.Span(45, "d")),
        lang.Uses(">", 1000),
        lang.Words("ledger"),
    )
    assert lang.parse("") == lang.Filter()
    assert lang.parse('say "hi') == lang.Filter((lang.Words("say"), lang.Words('"hi')))
    assert lang.parse("- ! x") == lang.Filter((lang.Words("-"), lang.Words("!"), lang.Words("x")))


def test_a_pasted_secret_stands_for_its_key_id():
    key_id = keyformat.new_key_id()
    secret = keyformat.new_secret(key_id)
    assert lang.parse(secret).terms == (lang.IdPrefix(key_id),)
    assert lang.parse(f"id:{secret}").terms == (lang.IdPrefix(key_id),)
    assert secret.split("_")[-1] not in lang.unparse(lang.parse(secret))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("colour:red", "owner: role: status: name: id: host: created: expires: used:"),
        ("http://x", '"a:b"'),
        ("status:gone", "active, expired, revoked"),
        ("owner:", "owner:bob"),
        ("created:30d", "created:<2026-01-01"),
        ("expires:soon", "expires:<7d"),
        ("created:<2026-02-30", "not a date"),
        ("unused:45", "45d"),
        ("uses:many", "uses:>1000"),
        ("id:x-y", "start of a key ID"),
        ("host:a,b", "host"),
        ("used:>99999y", "200 years"),
    ],
)
def test_a_bad_term_is_one_line_that_says_what_is_known(text, says):
    with pytest.raises(InvalidInput) as refused:
        lang.parse(text)
    message = str(refused.value)
    assert says in message and "\n" not in message and len(message) < 200


# -- round trips and arbitrary text -------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
PRINTABLE = TEXT.map(lambda t: "".join(c for c in t if c.isprintable())).filter(
    lambda t: t.strip() == t and t and lang.recognised(t) is None
)
SPANS = st.builds(lang.Span, st.integers(0, 5000), st.sampled_from(["h", "d", "w"]))
DATES = st.dates(date(1970, 1, 1), date(9998, 12, 31))
HOST_TEXT = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-*:/_", min_size=1)
PREFIXES = st.text(keyformat.ID_ALPHABET, min_size=1, max_size=10)
RANGE_OPS = st.sampled_from(["<", "<=", ">", ">="])


def positives(
    words: st.SearchStrategy[str] = PRINTABLE,
    logins: st.SearchStrategy[str] = PRINTABLE,
    roles: st.SearchStrategy[str] = PRINTABLE,
    hosts: st.SearchStrategy[str] = HOST_TEXT,
    prefixes: st.SearchStrategy[str] = PREFIXES,
    dates: st.SearchStrategy[date] = DATES,
    spans: st.SearchStrategy[lang.Span] = SPANS,
) -> st.SearchStrategy[lang.Positive]:
    return st.one_of(
        st.builds(lang.Words, words),
        st.builds(lang.Exact, st.just("owner"), logins),
        st.builds(lang.Exact, st.just("role"), roles),
        st.builds(lang.StatusIs, st.sampled_from(["active", "expired", "revoked"])),
        st.builds(lang.Contains, st.just("name"), words),
        st.builds(lang.Contains, st.just("host"), hosts),
        st.builds(lang.IdPrefix, prefixes),
        st.builds(
            lang.When,
            st.sampled_from(["created", "expires", "used"]),
            st.sampled_from(["<", "<=", ">", ">=", "="]),
            dates,
        ),
        st.builds(lang.When, st.sampled_from(["created", "expires", "used"]), RANGE_OPS, spans),
        st.builds(lang.Unused, spans),
        st.builds(lang.Uses, st.sampled_from(["<", "<=", ">", ">=", "="]), st.integers(0, 5000)),
    )


def filters(**pools) -> st.SearchStrategy[lang.Filter]:
    term = positives(**pools)
    negatable = st.one_of(term, st.builds(lang.Not, term))
    return st.builds(lang.Filter, st.lists(negatable, max_size=4).map(tuple))


@given(filters())
def test_tree_to_text_and_back(parsed):
    assert lang.parse(lang.unparse(parsed)) == parsed


def parses_or_is_refused_in_one_line(text: str) -> None:
    try:
        parsed = lang.parse(text)
    except InvalidInput as refused:
        assert "\n" not in str(refused) and str(refused).isprintable()
    else:
        assert lang.parse(lang.unparse(parsed)) == parsed


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_in_one_line(text):
    parses_or_is_refused_in_one_line(text)


@given(st.text(st.sampled_from('ab :"\\-!<>=ownerstaucdi0123456789-/'), max_size=40))
def test_syntax_heavy_text_parses_or_is_refused_in_one_line(text):
    parses_or_is_refused_in_one_line(text)


# -- the model check: SQL equals Python, on both databases --------------------------------------

LOGINS = ["bob", "alice", "Bob", "carol-ops"]
ROLES = ["ci", "deploy", "read"]
NAME_PARTS = ["billing", "worker", "Ledger", "prod", "a:b", 'say "x"', "50%", "_x", "cron"]
HOSTS = ["10.0.0.0/8", "api.example.com", "*.corp.example", "192.168.1.5", "::1"]


def _time(rng: random.Random, days_back: int, days_ahead: int = 0) -> datetime:
    minutes = rng.randrange(-days_back * 24 * 60, days_ahead * 24 * 60 + 1)
    return NOW + timedelta(minutes=minutes)


def random_rows(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows, ids = [], set()
    while len(ids) < count:
        ids.add("".join(rng.choice(keyformat.ID_ALPHABET) for _ in range(keyformat.ID_LENGTH)))
    for key_id in sorted(ids):
        created = _time(rng, 400)
        revoked = _time(rng, 60) if rng.random() < 0.2 else None
        rows.append(
            {
                "key_id": key_id,
                "name": " ".join(rng.sample(NAME_PARTS, rng.randint(1, 3))),
                "description": "",
                "owner": rng.choice(LOGINS),
                "role": rng.choice(ROLES),
                "secret_hash": "x",
                "created_at": created,
                "updated_at": created,
                "expires_at": _time(rng, 100, 100) if rng.random() < 0.7 else None,
                "revoked_at": revoked,
                "revoked_by": "alice" if revoked else None,
                "last_used_at": _time(rng, 200) if rng.random() < 0.6 else None,
                "use_count": rng.choice([0, 1, 5, 999, 1000, 1001, rng.randrange(3000)]),
                "allowed_hosts": json.dumps(rng.sample(HOSTS, rng.randint(0, 2))),
            }
        )
    return rows


def fold(text: str) -> str:
    return text.lower()  # ASCII data: every database folds it the same


def _by_op(left, op: str, right) -> bool:
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "=": left == right,
    }[op]


def holds(term: lang.Term, key: KeyInfo, now: datetime) -> bool:
    """The filter language read plainly, one key at a time: the model the SQL must equal."""
    if isinstance(term, lang.Not):
        return not holds(term.term, key, now)
    if isinstance(term, lang.Words):
        return any(fold(term.text) in fold(value) for value in (key.name, key.id, key.owner))
    if isinstance(term, lang.Exact):
        return getattr(key, term.field) == term.value
    if isinstance(term, lang.StatusIs):
        return key.status == term.status
    if isinstance(term, lang.Contains):
        if term.field == "name":
            return fold(term.value) in fold(key.name)
        return any(term.value in host for host in key.allowed_hosts)
    if isinstance(term, lang.IdPrefix):
        return key.id.startswith(term.prefix)
    if isinstance(term, lang.When):
        at = {"created": key.created_at, "expires": key.expires_at, "used": key.last_used_at}[
            term.field
        ]
        if at is None:
            return False
        if isinstance(term.value, date):
            return _by_op(at.astimezone(UTC).date(), term.op, term.value)
        distance = at - now if term.field == "expires" else now - at
        return _by_op(distance, term.op, term.value.delta)
    if isinstance(term, lang.Unused):
        return key.last_used_at is None or now - key.last_used_at > term.span.delta
    return _by_op(key.use_count, term.op, term.count)


@pytest.fixture
def many(admin: KeyService) -> KeyService:
    with admin.db.write() as session:
        session.execute(insert(Key), random_rows(300, seed=12))
    return admin


MODEL_FILTERS = filters(
    words=st.sampled_from(["bil", "worker", "LEDGER", "o", "a:b", '"x"', "%", "_", "bob", "q"]),
    logins=st.sampled_from(LOGINS),
    roles=st.sampled_from(ROLES),
    hosts=st.sampled_from(["10.", "example", "corp", ".5", "::", "/8", "zz"]),
    prefixes=st.text(keyformat.ID_ALPHABET, min_size=1, max_size=2),
    dates=st.dates(date(2025, 9, 1), date(2027, 3, 1)),
    spans=st.builds(lang.Span, st.integers(0, 400), st.sampled_from(["h", "d", "w"])),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parsed=MODEL_FILTERS)
def test_sql_finds_what_python_finds(many, parsed):
    now = many.now()
    everything = many.list_keys(KeyQuery(limit=1000)).keys
    assert len(everything) >= 300
    want = {key.id for key in everything if all(holds(t, key, now) for t in parsed.terms)}
    text = lang.unparse(parsed)
    got = [key.id for key in many.list_keys(KeyQuery(search=text, limit=1000)).keys]
    assert set(got) == want and len(got) == len(want), text
    assert many.count_keys(text) == len(want)
    assert many.count_keys(text, cap=10) == min(len(want), 11)
    assert set(many.matching_ids(text)) == want


def test_a_bad_filter_is_refused_by_the_service(admin):
    with pytest.raises(InvalidInput, match="not a filter term"):
        admin.list_keys(KeyQuery(search="colour:red"))
    with pytest.raises(InvalidInput, match="status:"):
        admin.count_keys("status:nope", cap=5)
