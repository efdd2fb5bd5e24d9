"""Finding keys: the search, filter and order builders behind list_keys, count_keys and
matching_ids.

The text of a search is the filter language (filter.py): each term becomes conditions here.
Its free words are a case-insensitive substring of name, ID or owner (LIKE's meaning, on every
database); ``name:`` of the name alone, through the same index.

On PostgreSQL the search index is the table ``keys_search`` (migration 0007: pk, name, key_id,
owner, kept in step by triggers, with ``pg_trgm`` GIN indexes), so that a write to keys that
changes none of the three (a revoke, a usage flush) never writes a trigram index: a free word
is ``EXISTS (SELECT 1 FROM keys_search s WHERE s.pk = keys.pk AND (s.name ILIKE '%w%' OR ...))``,
which is exactly the same ILIKE over the same values. A negated word stays a plain filter on
keys' own columns (no join for a condition no index serves).

On SQLite the search index of migration 0003 (FTS5 trigrams, rowid = keys.pk, every
value followed by :data:`SEARCH_PAD` twice) narrows the rows first, and LIKE then decides, so
the index changes only the speed. A common term is cheaper without it: scanning newest-first
stops after the first screenful. A sample of the newest keys tells the two apart.
"""

from __future__ import annotations

import operator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    column,
    exists,
    func,
    literal,
    literal_column,
    not_,
    null,
    or_,
    select,
    table,
    union_all,
)
from sqlalchemy.orm import Session

from . import activity, keyformat, validate
from . import filter as lang
from .errors import InvalidInput
from .models import Key
from .usage import hour_of
from .validate import shown
from .values import STATUSES, Status

# The one definition of the search padding: the index (migration 0003's triggers, demo
# seeding) stores every value followed by it twice; no name, ID or login can hold it.
SEARCH_PAD = "\x01"
SEARCH_PAD_SQL = f"char({ord(SEARCH_PAD)}, {ord(SEARCH_PAD)})"  # SEARCH_PAD twice, in SQLite


def padded(expression: str) -> str:
    """``expression`` as the search index holds it (SQL text for SQLite triggers and inserts)."""
    return f"{expression} || {SEARCH_PAD_SQL}"


SEARCH_TABLE = table("keys_search", column("rowid", Integer))  # SQLite (FTS5)
PG_SEARCH_TABLE = table(  # PostgreSQL (migration 0007)
    "keys_search",
    column("pk", Integer),
    column("name", String),
    column("key_id", String),
    column("owner", String),
)
_VOCAB = table("keys_search_vocab", column("term", String))
_MATCH = literal_column("keys_search").op("MATCH")
SAMPLE_ROWS = 2_000  # newest keys sampled to judge a term
SAMPLE_COMMON = 20  # matches in the sample (1%) from which a term counts as common

# "revoked_at IS NULL" where another condition should choose the index: SQLite's planner, with
# no statistics, takes it for a selective equality and walks ix_keys_revoked_at (90% of a big
# table: a 10,000-key revoke took 33 s on 1,000,000 keys). Wrapped, it is a plain filter.
UNREVOKED = func.coalesce(Key.revoked_at, null()).is_(None)


def fts_string(text: str) -> str:
    """``text`` as one FTS5 string (a phrase): quotes doubled, nothing else special."""
    return '"' + text.replace('"', '""') + '"'


def like(term: str, sqlite: bool, name_only: bool = False) -> ColumnElement[bool]:
    if name_only:
        return (
            Key.name.contains(term, autoescape=True)
            if sqlite
            else Key.name.icontains(term, autoescape=True)
        )
    if sqlite:  # SQLite's LIKE already ignores ASCII case, as its lower() does: skip lower()
        return or_(
            Key.name.contains(term, autoescape=True),
            Key.key_id.contains(term, autoescape=True),
            Key.owner.contains(term, autoescape=True),
        )
    # column ILIKE, as SQLAlchemy renders icontains there (the same test indexed_like makes
    # through keys_search; this plain form is for negated terms)
    return or_(
        Key.name.icontains(term, autoescape=True),
        Key.key_id.icontains(term, autoescape=True),
        Key.owner.icontains(term, autoescape=True),
    )


def indexed_like(term: str, name_only: bool = False) -> ColumnElement[bool]:
    """PostgreSQL: :func:`like` through ``keys_search`` and its trigram indexes (a key whose
    name, ID or owner ILIKEs ``%term%``; or whose name, with ``name_only``)."""
    searched = PG_SEARCH_TABLE.alias("s")
    columns = (
        [searched.c.name] if name_only else [searched.c.name, searched.c.key_id, searched.c.owner]
    )
    return exists().where(
        searched.c.pk == Key.pk, or_(*(c.icontains(term, autoescape=True) for c in columns))
    )


def _folds(char: str) -> set[str]:
    """The forms the index may hold ``char`` as: FTS5 folds case by Unicode's simple folding,
    which Python has no function for; between them, these cover it (σ for ς, ß for ẞ...)."""
    return {form for form in (char, char.lower(), char.casefold()) if len(form) == 1}


def index_match(term: str) -> ColumnElement[Any] | None:
    """``keys_search MATCH ...``: a superset of the keys whose name, ID or owner holds
    ``term``, from the SQLite search index; None where the index cannot say."""
    if SEARCH_PAD in term:
        return None
    if len(term) >= 3:
        return _MATCH(literal(fts_string(term)))
    # Every occurrence of a 1-2 character term starts an indexed trigram (the padding sees to
    # that): the trigrams that start with it, from the vocabulary by range, OR-ed.
    starts = [a + b for a in _folds(term[0]) for b in (_folds(term[1]) if term[1:] else {""})]
    ranges = [
        select(_VOCAB.c.term).where(_VOCAB.c.term >= start, _VOCAB.c.term < start + "\U0010ffff")
        for start in sorted(starts)
    ]
    found = union_all(*ranges).subquery() if len(ranges) > 1 else ranges[0].subquery()
    phrases = select(
        func.group_concat(
            literal('"') + func.replace(found.c.term, '"', '""') + literal('"'), " OR "
        )
    )
    nothing = fts_string(SEARCH_PAD * 3)  # a trigram no row holds
    return _MATCH(func.coalesce(phrases.scalar_subquery(), nothing))


def status_expr(now: datetime) -> ColumnElement[str]:
    return case(
        (Key.revoked_at.is_not(None), "revoked"),
        (and_(Key.expires_at.is_not(None), Key.expires_at <= now), "expired"),
        else_="active",
    )


def status_filter(status: Status, now: datetime) -> ColumnElement[bool]:
    if status == "revoked":
        return Key.revoked_at.is_not(None)
    if status == "expired":
        return and_(Key.revoked_at.is_(None), Key.expires_at.is_not(None), Key.expires_at <= now)
    return and_(Key.revoked_at.is_(None), or_(Key.expires_at.is_(None), Key.expires_at > now))


def filter_status(status: Status, now: datetime) -> ColumnElement[bool]:
    """``status:`` in a filter: status_filter with "revoked_at IS [NOT] NULL" wrapped (see
    UNREVOKED), so a filter's other terms, or the primary key's order, choose the index: a
    planner walking ix_keys_revoked_at for -status:revoked read 90% of a big table by it."""
    if status == "revoked":
        return func.coalesce(Key.revoked_at, null()).is_not(None)
    if status == "expired":
        return and_(UNREVOKED, Key.expires_at.is_not(None), Key.expires_at <= now)
    return and_(UNREVOKED, or_(Key.expires_at.is_(None), Key.expires_at > now))


def flag_condition(flag: lang.Flag, now: datetime) -> ColumnElement[bool]:
    """``is:heavy`` / ``is:refused``: an active key in heavy use, or with a burst of wrong
    secrets, in the current or the last hour (activity.py says how each is judged)."""
    keys = activity.heavy_keys if flag == "heavy" else activity.refused_keys
    return and_(filter_status("active", now), Key.key_id.in_(keys(hour_of(now))))


def key_order(sort: str, descending: bool, now: datetime) -> list[Any]:
    """ORDER BY for a sort column (one of values.SORTABLE); ties in primary-key order."""
    by: Any
    if sort == "status":
        by = status_expr(now)
    elif sort == "uses_24h":  # read from key_usage for every key: a scan (see bench/README)
        by = activity.uses_24h(hour_of(now))
    else:
        by = getattr(Key, sort)
    order = [
        by.desc() if descending else by.asc(),
        Key.pk.desc() if descending else Key.pk.asc(),
    ]
    if sort in ("expires_at", "last_used_at"):  # the same NULL order on every database:
        high = sort == "expires_at"  # never expires: after every date; never used: before
        order[0] = order[0].nulls_first() if high == descending else order[0].nulls_last()
    if sort == "created_at":  # creation order is primary-key order
        order = [Key.pk.desc() if descending else Key.pk.asc()]
    return order


def _next_prefix(prefix: str) -> str | None:
    """The smallest ID-alphabet text after every ID that starts with ``prefix`` (None: none)."""
    alphabet = keyformat.ID_ALPHABET
    while prefix:
        last = alphabet.index(prefix[-1])
        if last + 1 < len(alphabet):
            return prefix[:-1] + alphabet[last + 1]
        prefix = prefix[:-1]
    return None


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(column: Any, op: lang.Op, bound: Any) -> ColumnElement[bool]:
    compared: ColumnElement[bool] = _OPERATORS.get(op, operator.eq)(column, bound)
    return compared


# A span compares the time *from now*: the age of a creation or a use, the time left to an
# expiry. "Age above 30 days" is "before now - 30 days": the comparison turns round.
_TURNED: dict[lang.Op, lang.Op] = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def when_condition(term: lang.When, now: datetime) -> ColumnElement[bool]:
    """``created:``, ``expires:``, ``used:``: never true for a key without that time."""
    column = {"created": Key.created_at, "expires": Key.expires_at, "used": Key.last_used_at}[
        term.field
    ]
    value = term.value
    if isinstance(value, date):
        start = lang.day_start(value)
        end = start + timedelta(days=1)
        compared = {
            "<": column < start,
            "<=": column < end,
            ">": column >= end,
            ">=": column >= start,
            "=": and_(column >= start, column < end),
        }[term.op]
    elif term.field == "expires":
        compared = _compare(column, term.op, now + value.delta)
    else:
        compared = _compare(column, _TURNED[term.op], now - value.delta)
    return and_(column.is_not(None), compared)


class KeySearch:
    """The conditions for a search, status and owner filter, on one kind of database."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite

    def common(self, term: str, session: Session) -> bool:
        """Does ``term`` match 1% or more of the newest keys (a scan finds a page at once)?"""
        sample = select(Key.pk).order_by(Key.pk.desc()).offset(SAMPLE_ROWS).limit(1)
        hits = session.scalar(
            select(func.count()).select_from(
                select(Key.pk)
                .where(
                    Key.pk > func.coalesce(sample.scalar_subquery(), 0),
                    like(term, self.sqlite),
                )
                .limit(SAMPLE_COMMON)
                .subquery()
            )
        )
        return (hits or 0) >= SAMPLE_COMMON

    def search(self, term: str, session: Session | None) -> list[ColumnElement[Any]]:
        """The conditions for a search term (see the module's docstring for the choice)."""
        found = like(term, self.sqlite)
        if not self.sqlite or session is None or self.common(term, session):
            return [found]
        match = index_match(term)
        if match is None:
            return [found]
        return [Key.pk.in_(select(SEARCH_TABLE.c.rowid).where(match)), found]

    def text(
        self, term: str, session: Session | None, name_only: bool, indexed: bool = True
    ) -> list[ColumnElement[Any]]:
        """A substring of name, ID or owner (or of the name only), through the index where the
        index pays (see the module's docstring); the index narrows, LIKE decides. Not
        ``indexed`` (a negated term): a plain filter on keys' own columns."""
        if not self.sqlite:
            return [indexed_like(term, name_only) if indexed else like(term, False, name_only)]
        if name_only:
            found = like(term, self.sqlite, name_only=True)
            return [*self.search(term, session)[:-1], found]
        return self.search(term, session)

    def term(
        self, term: lang.Term, now: datetime, session: Session | None, indexed: bool = True
    ) -> list[ColumnElement[Any]]:
        """The conditions (all must hold) for one term of the filter language. None of them is
        ever NULL, so a negated term is exactly the keys the term does not match."""
        if isinstance(term, lang.Not):  # no index for "not": a plain condition
            return [not_(and_(*self.term(term.term, now, None, indexed=False)))]
        if isinstance(term, lang.Words):
            return self.text(term.text, session, name_only=False, indexed=indexed)
        if isinstance(term, lang.Contains):
            if term.field == "name":
                return self.text(term.value, session, name_only=True, indexed=indexed)
            # host: values are lower case and hold no JSON punctuation: a substring of the
            # stored JSON list is a substring of one allowed host
            return [Key.allowed_hosts.contains(term.value, autoescape=True)]
        if isinstance(term, lang.StatusIs):
            return [filter_status(term.status, now)]
        if isinstance(term, lang.Exact):
            return [(Key.owner if term.field == "owner" else Key.role) == term.value]
        if isinstance(term, lang.IdPrefix):
            after = _next_prefix(term.prefix)  # a range the unique index on key_id serves
            bounds = [Key.key_id >= term.prefix] + ([Key.key_id < after] if after else [])
            return [*bounds, Key.key_id.startswith(term.prefix, autoescape=True)]
        if isinstance(term, lang.When):
            return [when_condition(term, now)]
        if isinstance(term, lang.Flagged):
            return [flag_condition(term.flag, now)]
        if isinstance(term, lang.Unused):
            since = now - term.span.delta
            return [or_(Key.last_used_at.is_(None), Key.last_used_at < since)]
        return [_compare(Key.use_count, term.op, term.count)]

    def filters(
        self,
        search: str | lang.Filter,
        status: Status | None,
        owner: str | None,
        now: datetime,
        session: Session | None = None,
    ) -> list[ColumnElement[Any]]:
        """The conditions for a filter (text in the filter language, or parsed), a status and
        an owner, all AND-ed."""
        conditions: list[ColumnElement[Any]] = []
        parsed = search if isinstance(search, lang.Filter) else lang.parse(search)
        owner = validate.term(owner, "an owner filter")
        for term in parsed.terms:
            conditions.extend(self.term(term, now, session))
        if status:
            if status not in STATUSES:
                raise InvalidInput(
                    f"{shown(status)} is not a status; choose active, expired or revoked"
                )
            conditions.append(status_filter(status, now))
        if owner:
            conditions.append(Key.owner == owner)
        return conditions

    def count(
        self,
        search: str,
        status: Status | None,
        owner: str | None,
        now: datetime,
        session: Session,
        cap: int | None,
    ) -> Select[int]:
        """SELECT count(*) of the matching keys; with ``cap``, counting stops at ``cap + 1``."""
        parsed = lang.parse(search)
        words = parsed.words
        term = words[0] if words else ""  # the index streams this word's matches
        match = index_match(term) if term and self.sqlite and cap is not None else None
        if match is not None and len(term) < 2 and self.common(term, session):
            match = None  # a common character: too many trigrams to OR; LIKE finds them
        if cap is None:
            return (
                select(func.count())
                .select_from(Key)
                .where(*self.filters(parsed, status, owner, now, session))
            )
        if match is None:
            return select(func.count()).select_from(
                select(Key.pk)
                .where(*self.filters(parsed, status, owner, now, session))
                .limit(max(0, cap) + 1)
                .subquery()
            )
        # the index streams its matches; LIKE and the filters check each; stop at cap
        return select(func.count()).select_from(
            select(Key.pk)
            .join(SEARCH_TABLE, SEARCH_TABLE.c.rowid == Key.pk)
            .where(match, *self.filters(parsed, status, owner, now))
            .limit(max(0, cap) + 1)
            .subquery()
        )
