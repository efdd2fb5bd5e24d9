"""Checks and parsers for what users type. Each raises InvalidInput with a one-line message."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta

from .errors import InvalidInput, KeytuiError

NAME_MAX = 100
TERM_MAX = 200
DESCRIPTION_MAX = 500
REASON_MAX = 200
MAX_EXPIRY_DAYS = 36_500
_LOGIN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_ROLE_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
# A secret, or enough of one to matter (a cut or mistyped one too): ``kt_``, an ID, ``_`` and 8
# or more of its random characters. A reason holding this is refused.
_SECRET_PART_RE = re.compile(r"kt_[0-9a-z]{10}_[0-9A-Za-z]{8}", re.IGNORECASE)
_DAYS_RE = re.compile(r"^([0-9]{1,6})d$")  # ASCII only: \d would take "٣d"
USER_ROLES = ("admin", "developer", "viewer")


@contextmanager
def field(name_: str) -> Iterator[None]:
    """Tag a refusal raised inside with the form field it concerns."""
    try:
        yield
    except KeytuiError as exc:
        if exc.field is None:
            exc.field = name_
        raise


def key_ref(value: str) -> str:
    """A key ID (or the start of one) as given: trimmed, lower-cased. A pasted secret with a
    good checksum stands for its key ID; one that starts like a secret but is not one is refused
    without a word of it (never its random part)."""
    from . import keyformat

    if keyformat.is_key_id(value):  # the common case, and cheap: a bulk revoke names 10,000
        return value
    key_id = keyformat.key_id_of(value)
    if key_id is not None:
        return key_id
    if keyformat.looks_like_secret(value):
        raise InvalidInput(f"that starts like a secret but {keyformat.secret_problem(value)}")
    return value.strip().lower() if isinstance(value, str) else ""


def shown_ref(text: str) -> str:
    """A key reference for an error message: one shaped like a key ID quoted, anything else
    only described (it may be a pasted secret's random part, which key_ref cannot tell)."""
    from . import keyformat

    if keyformat.is_key_id(text):
        return repr(text)
    return f"like that ({len(text)} characters; an ID is {keyformat.ID_LENGTH} of 0-9 and a-z)"


def visible(text: object) -> str:
    """Stored text made harmless for a terminal: control and format characters (ESC, NUL,
    right-to-left overrides) become visible escapes like ``\\x1b``; everything else is kept."""
    value = "" if text is None else str(text)
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in value)


def shown(text: str, limit: int = 40) -> str:
    """A user's text quoted for an error message: escapes visible, length bounded."""
    quoted = repr(text[:limit])
    return quoted + ("…" if len(text) > limit else "")


def name(value: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a key name must be text")
    value = value.strip()
    if not value:
        raise InvalidInput("a key name cannot be empty")
    if len(value) > NAME_MAX:
        raise InvalidInput(
            f"a key name is at most {NAME_MAX} characters (this one has {len(value)})"
        )
    if not value.isprintable():
        raise InvalidInput(f"a key name may hold printable characters only, not {shown(value)}")
    return value


def description(value: str | None) -> str:
    value = (value or "").strip()
    if len(value) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"a description is at most {DESCRIPTION_MAX} characters (this one has {len(value)})"
        )
    if not value.isprintable():
        raise InvalidInput(f"a description may hold printable characters only, not {shown(value)}")
    return value


def reason(value: str | None) -> str:
    """Why keys are revoked, replaced or deleted, as every event of that change stores it:
    trimmed, at most :data:`REASON_MAX` printable characters, never a secret (nor part of one);
    ``""`` for none. A refusal repeats nothing of the text (it may hold a pasted secret)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("a reason must be text")
    value = value.strip()
    if _SECRET_PART_RE.search(value):
        raise InvalidInput(
            "a reason may not hold a secret (it has a kt_ secret, or part of one); "
            "name the key by its ID instead"
        )
    if len(value) > REASON_MAX:
        raise InvalidInput(
            f"a reason is at most {REASON_MAX} characters (this one has {len(value)})"
        )
    bad = next((i for i, ch in enumerate(value) if not ch.isprintable()), None)
    if bad is not None:
        raise InvalidInput(
            f"a reason may hold printable characters only (one line, no tabs or control "
            f"characters); character {bad + 1} is not"
        )
    return value


def login(value: str) -> str:
    if not isinstance(value, str) or not _LOGIN_RE.match(value):
        raise InvalidInput(
            f"{shown(str(value))} is not a login (letters, digits, _ . @ -; up to 64 characters)"
        )
    return value


def user_role(value: str) -> str:
    if value not in USER_ROLES:
        raise InvalidInput(
            f"{shown(str(value))} is not a user role; choose {', '.join(USER_ROLES)}"
        )
    return value


def key_role(value: str) -> str:
    if not isinstance(value, str) or not _ROLE_RE.match(value):
        raise InvalidInput(
            f"{shown(str(value))} is not a role name (lower-case letters, digits, _ . : -)"
        )
    return value


def term(value: str | None, what: str = "a search") -> str:
    """A search term or filter: bounded and printable (NUL would break PostgreSQL), stripped."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    if len(value) > TERM_MAX:
        raise InvalidInput(f"{what} is at most {TERM_MAX} characters (this one has {len(value)})")
    if not value.isprintable():
        raise InvalidInput(f"{what} may hold printable characters only, not {shown(value)}")
    return value.strip()


def host(value: str) -> str:
    """A host name (``*.example.com`` allowed), an IP address or a CIDR network, normalised."""
    if isinstance(value, str) and len(value) > 300:  # bounded before any parsing
        raise InvalidInput(f"{shown(value)} is not a host name, an IP address or a CIDR network")
    text = value.strip().lower() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput("an allowed host cannot be empty")
    try:
        if "/" in text:
            return str(_network(text, value))
        address = ipaddress.ip_address(text)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)  # ::ffff:10.0.0.1 is how 10.0.0.1 may arrive
        return str(address)
    except ValueError:
        pass
    if _HOSTNAME_RE.match(text) and not text.replace(".", "").isdigit():
        if text.startswith("*.") and text.count(".") < 2:
            raise InvalidInput(
                f"{shown(value)} would match every host under a top-level domain; "
                "name at least two labels after *. (like *.example.com)"
            )
        return text
    raise InvalidInput(f"{shown(value)} is not a host name, an IP address or a CIDR network")


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _network(text: str, value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR network as written: host bits set (10.0.0.1/0, which would mean every address)
    are refused rather than silently widened; IPv4-mapped IPv6 networks become IPv4."""
    try:
        network = ipaddress.ip_network(text)
    except ValueError as exc:
        if "host bits set" not in str(exc):
            raise
        wide = ipaddress.ip_network(text, strict=False)
        raise InvalidInput(
            f"{shown(value)} has host bits set: it would mean {wide}; write {wide} if that is "
            "what you mean, or a single address without /"
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def hosts(values: list[str] | tuple[str, ...] | None) -> list[str]:
    seen: list[str] = []
    for value in values or ():
        normal = host(value)
        if normal not in seen:
            seen.append(normal)
    if len(seen) > 100:
        raise InvalidInput("at most 100 allowed hosts per key")
    return seen


def expiry(value: str | date | datetime | None, now: datetime) -> datetime | None:
    """``never``/None, ``Nd`` (days from now) or ``YYYY-MM-DD`` (valid through that day, UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        result = value.astimezone(UTC)
    elif isinstance(value, date):
        result = datetime.combine(value, time(23, 59, 59), tzinfo=UTC)
    else:
        text = value.strip().lower()
        if text in ("never", "none", ""):
            return None
        days = _DAYS_RE.match(text)
        if days:
            count = int(days.group(1))
            if not 1 <= count <= MAX_EXPIRY_DAYS:
                raise InvalidInput(f"an expiry in days is between 1 and {MAX_EXPIRY_DAYS}")
            return now + timedelta(days=count)
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{shown(value)} is not an expiry; "
                "use YYYY-MM-DD, a number of days like 90d, or never"
            ) from None
        if len(text) != 10:
            raise InvalidInput(f"{shown(value)} is not an expiry; write the date as YYYY-MM-DD")
        result = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    if result <= now:
        raise InvalidInput(f"the expiry {result:%Y-%m-%d} is in the past")
    if result > now + timedelta(days=MAX_EXPIRY_DAYS):
        raise InvalidInput("an expiry is at most 100 years away")
    return result


def expiry_day(value: str, now: datetime) -> datetime:
    """A date box's expiry: ``YYYY-MM-DD`` only (valid through that day, UTC), with a message
    in the box's own terms (no ``90d``, which the box does not take)."""
    text = value.strip()
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        example = now + timedelta(days=90)
        what = shown(value) if text else "an empty date"
        raise InvalidInput(f"{what} is not a date; write it as YYYY-MM-DD, e.g. {example:%Y-%m-%d}")
    result = expiry(day, now)
    assert result is not None  # a date is never "never"
    return result


def max_keys_per_user(value: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= 1000:
        raise InvalidInput("the maximum of keys per user is between 1 and 1000")
    return value


def max_expiry_days(value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= MAX_EXPIRY_DAYS:
        raise InvalidInput(f"the maximum expiry is between 1 and {MAX_EXPIRY_DAYS} days, or none")
    return value
