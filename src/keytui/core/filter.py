"""The filter language of the search box and ``--filter``: text to a small typed tree.

``parse("owner:bob -status:revoked billing")`` gives a :class:`Filter` of terms that all must
hold. search.py turns the tree into SQL conditions (free words through the search index); this
module knows no database. Every problem is an :class:`InvalidInput` of one line that says what
the language does know.

The language: free words match name, ID or owner (a substring, as the plain search always did);
``owner:LOGIN`` ``role:ROLE`` ``status:active|expired|revoked`` (exact), ``name:TEXT`` (a
substring of the name), ``id:START`` (a prefix of the ID, or a whole pasted secret), ``host:TEXT``
(a substring of an allowed host); ``created:`` ``expires:`` ``used:`` with ``<``, ``<=``, ``>``,
``>=`` and a date (``2026-01-01``, UTC) or a span (``30d``, ``12h``, ``2w``, ``1y``) measured
from now (``created:>30d``: created more than 30 days ago, ``expires:<7d``: expires within 7
days); ``unused:45d`` (not used in the last 45 days, never-used included); ``uses:>1000``;
``is:heavy`` (an active key used far above its usual rate this hour or the last) and
``is:refused`` (an active key that saw a burst of wrong secrets), see activity.py.
``-term`` or ``!term`` negates; ``"quoted text"`` keeps spaces and colons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from . import keyformat, validate
from .errors import InvalidInput
from .validate import shown
from .values import STATUSES, Status

ExactField = Literal["owner", "role"]
TextField = Literal["name", "host"]
DateField = Literal["created", "expires", "used"]
Op = Literal["<", "<=", ">", ">=", "="]
Unit = Literal["h", "d", "w", "y"]
Flag = Literal["heavy", "refused"]
FLAGS: tuple[Flag, ...] = ("heavy", "refused")

FIELDS: tuple[str, ...] = ("owner", "role", "status", "name", "id", "host")
FIELDS += ("created", "expires", "used", "unused", "uses", "is")
KNOWN = " ".join(f"{field}:" for field in FIELDS)
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-*:/_")
UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7, "y": 24 * 365}
MAX_HOURS = 24 * 365 * 200  # a span of at most 200 years
MIN_YEAR, MAX_YEAR = 1970, 9998  # a day's next day must exist
MAX_USES = 10**15
DATE_FIELDS: dict[str, DateField] = {"created": "created", "expires": "expires", "used": "used"}
OPS: dict[str, Op] = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "="}
UNITS: dict[str, Unit] = {"h": "h", "d": "d", "w": "w", "y": "y"}

_FIELD = re.compile(r"([A-Za-z]+):")
_OP = re.compile(r"(<=|>=|<|>|=)?(.*)", re.DOTALL)
_SPAN = re.compile(r"([0-9]{1,7})([hdwy])")
_ELIDED = re.compile(re.escape(keyformat.PREFIX) + f"([0-9a-z]{{{keyformat.ID_LENGTH}}})_…")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Span:
    """A length of time back from (or ahead of) now: ``30d``."""

    amount: int
    unit: Unit

    @property
    def delta(self) -> timedelta:
        return timedelta(hours=self.amount * UNIT_HOURS[self.unit])

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class Words:
    """Free text: a substring of the name, the ID or the owner."""

    text: str


@dataclass(frozen=True)
class Exact:
    field: ExactField
    value: str


@dataclass(frozen=True)
class StatusIs:
    status: Status


@dataclass(frozen=True)
class Contains:
    """``name:``: a substring of the name; ``host:``: of one of the allowed hosts."""

    field: TextField
    value: str


@dataclass(frozen=True)
class IdPrefix:
    prefix: str


@dataclass(frozen=True)
class When:
    """A time compared with a date (whole UTC days) or with a span from now."""

    field: DateField
    op: Op
    value: date | Span


@dataclass(frozen=True)
class Unused:
    """Not used within ``span`` of now; a key never used is unused too."""

    span: Span


@dataclass(frozen=True)
class Uses:
    op: Op
    count: int


@dataclass(frozen=True)
class Flagged:
    """``is:heavy``, ``is:refused``: how the key is being used just now."""

    flag: Flag


Positive = Words | Exact | StatusIs | Contains | IdPrefix | When | Unused | Uses | Flagged


@dataclass(frozen=True)
class Not:
    term: Positive


Term = Positive | Not


@dataclass(frozen=True)
class Filter:
    """Terms that must all hold (no terms: every key)."""

    terms: tuple[Term, ...] = ()

    def __str__(self) -> str:
        return unparse(self)

    @property
    def words(self) -> list[str]:
        """The free words (not negated): the ones the search index can serve."""
        return [term.text for term in self.terms if isinstance(term, Words)]


# -- parsing -------------------------------------------------------------------------------------


def parse(text: str | None) -> Filter:
    """The filter ``text`` says; InvalidInput (one line) for anything it cannot mean."""
    source = validate.term(text, "a filter")
    terms: list[Term] = []
    at, end = 0, len(source)
    while at < end:
        if source[at].isspace():
            at += 1
            continue
        negated = source[at] in "-!" and at + 1 < end and not source[at + 1].isspace()
        if negated:
            at += 1
        field_match = _FIELD.match(source, at)
        field = None
        if field_match:
            field = field_match.group(1).lower()
            at = field_match.end()
        value, at = _value(source, at)
        if field is None:
            if not value:
                continue  # an empty quote: nothing to match
            term: Positive = _words(value)
        else:
            if field not in FIELDS:
                raise InvalidInput(
                    f"{shown(field + ':')} is not a filter term; the terms are: {KNOWN} and free"
                    ' words (quote text with a colon: "a:b")'
                )
            term = _term(field, value)
        terms.append(Not(term) if negated else term)
    return Filter(tuple(terms))


def _value(source: str, at: int) -> tuple[str, int]:
    """The value that starts at ``at`` (quoted, or up to the next space), and where it ends.
    A quote that does not close before a space or the end is a plain character (a name may
    hold one: ``say "hi`` searches for what it says)."""
    end = len(source)
    if at < end and source[at] == '"':
        chars: list[str] = []
        scan = at + 1
        while scan < end and source[scan] != '"':
            if source[scan] == "\\" and scan + 1 < end and source[scan + 1] in '"\\':
                scan += 1
            chars.append(source[scan])
            scan += 1
        if scan < end and (scan + 1 == end or source[scan + 1].isspace()):
            return "".join(chars), scan + 1
    start = at
    while at < end and not source[at].isspace():
        at += 1
    return source[start:at], at


def recognised(value: str) -> str | None:
    """The key ID ``value`` stands for: a pasted secret (checksum checked), or the elided
    form ``kt_<id>_…`` the search box shows in its place; else None."""
    key_id = keyformat.key_id_of(value)
    if key_id is None and (match := _ELIDED.fullmatch(value)):
        key_id = match.group(1)
    return key_id


def shown_safely(text: str) -> str:
    """``text`` with each pasted secret in it elided (``kt_<id>_…``): what a search box shows."""
    return " ".join(
        keyformat.elided(key_id) if (key_id := keyformat.key_id_of(word)) else word
        for word in text.split(" ")
    )


def _words(value: str) -> Positive:
    key_id = recognised(value)  # a pasted secret stands for its key
    return IdPrefix(key_id) if key_id is not None else Words(value)


def _term(field: str, value: str) -> Positive:
    if not value:
        raise InvalidInput(f"{field}: needs a value, e.g. {_EXAMPLES[field]}")
    if field in ("owner", "role"):
        return Exact("owner" if field == "owner" else "role", value)
    if field == "status":
        for status in STATUSES:
            if value.lower() == status:
                return StatusIs(status)
        raise InvalidInput(f"status: is one of {', '.join(STATUSES)}, not {shown(value)}")
    if field == "name":
        return Contains("name", value)
    if field == "host":
        host = value.lower()
        if not set(host) <= HOST_CHARS:
            raise InvalidInput(
                f"host: takes part of a host name, IP or network, not {shown(value)}"
            )
        return Contains("host", host)
    if field == "id":
        return _id(value)
    if field == "unused":
        return Unused(_span(field, value))
    if field == "is":
        for flag in FLAGS:
            if value.lower() == flag:
                return Flagged(flag)
        raise InvalidInput(
            f"is: is heavy (heavy use) or refused (a burst of wrong secrets), not {shown(value)}"
        )
    if field == "uses":
        op, number = _split_op(value)
        if not number.isascii() or not number.isdigit() or int(number) > MAX_USES:
            raise InvalidInput(f"uses: takes a count, e.g. uses:>1000, not {shown(value)}")
        return Uses(op or "=", int(number))
    return _when(field, value)


_EXAMPLES = {
    "owner": "owner:bob",
    "role": "role:ci",
    "status": "status:active",
    "name": 'name:"billing worker"',
    "host": "host:10.0.0.0",
    "id": "id:3f9k",
    "created": "created:<2026-01-01, created:>30d",
    "expires": "expires:<7d",
    "used": "used:>30d",
    "unused": "unused:45d",
    "uses": "uses:>1000",
    "is": "is:heavy",
}


def _id(value: str) -> IdPrefix:
    key_id = recognised(value)
    if key_id is not None:
        return IdPrefix(key_id)
    prefix = value.lower()
    if len(prefix) > keyformat.ID_LENGTH or not set(prefix) <= set(keyformat.ID_ALPHABET):
        raise InvalidInput(
            f"id: takes the start of a key ID ({keyformat.ID_LENGTH} of 0-9 and a-z) or a "
            f"secret, not {shown(value) if len(value) <= 2 * keyformat.ID_LENGTH else 'that'}"
        )
    return IdPrefix(prefix)


def _split_op(value: str) -> tuple[Op | None, str]:
    match = _OP.fullmatch(value)
    assert match is not None  # the pattern matches any text
    return OPS.get(match.group(1) or ""), match.group(2)


def _span(field: str, value: str) -> Span:
    match = _SPAN.fullmatch(value)
    if match:
        span = Span(int(match.group(1)), UNITS[match.group(2)])
        if span.amount * UNIT_HOURS[span.unit] <= MAX_HOURS:
            return span
    raise InvalidInput(
        f"{field}: takes a span like 45d (h, d, w or y, at most 200 years), not {shown(value)}"
    )


def _when(field: str, value: str) -> When:
    name: DateField = (
        "created" if field == "created" else "expires" if field == "expires" else "used"
    )
    op, rest = _split_op(value)
    if _DATE.fullmatch(rest):
        try:
            day = date.fromisoformat(rest)
        except ValueError:
            day = None
        if day is None or not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InvalidInput(f"{field}: {shown(rest)} is not a date from 1970 to 9998")
        return When(name, op or "=", day)
    if _SPAN.fullmatch(rest) and op not in (None, "="):
        assert op is not None
        return When(name, op, _span(field, rest))
    raise InvalidInput(
        f"{field}: takes <, <=, >, >= and a date or a span (e.g. {_EXAMPLES[field]}), "
        f"or a date alone for that day, not {shown(value)}"
    )


# -- back to text --------------------------------------------------------------------------------


def quoted(value: str, *, free: bool = False) -> str:
    """``value`` as the parser reads it back: quoted when it must be."""
    plain = (
        value
        and '"' not in value
        and not any(char.isspace() for char in value)
        and not (free and (value[0] in "-!" or _FIELD.match(value)))
    )
    if plain:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _positive(term: Positive) -> str:
    if isinstance(term, Words):
        return quoted(term.text, free=True)
    if isinstance(term, StatusIs):
        return f"status:{term.status}"
    if isinstance(term, Exact | Contains):
        return f"{term.field}:{quoted(term.value)}"
    if isinstance(term, IdPrefix):
        return f"id:{term.prefix}"
    if isinstance(term, When):
        op = "" if term.op == "=" else term.op
        shown_value = term.value.isoformat() if isinstance(term.value, date) else str(term.value)
        return f"{term.field}:{op}{shown_value}"
    if isinstance(term, Unused):
        return f"unused:{term.span}"
    if isinstance(term, Flagged):
        return f"is:{term.flag}"
    return f"uses:{'' if term.op == '=' else term.op}{term.count}"


def unparse(parsed: Filter) -> str:
    """The text that parses to ``parsed``."""
    return " ".join(
        "-" + _positive(term.term) if isinstance(term, Not) else _positive(term)
        for term in parsed.terms
    )


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
