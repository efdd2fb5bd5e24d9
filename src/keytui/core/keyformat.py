"""The secret's format: ``kt_<id>_<random><checksum>``.

* ``kt_`` lets secret scanners match a keytui key.
* ``<id>`` is the key's public ID (10 characters of ``[0-9a-z]``), so an admin can find a
  leaked key.
* ``<random>`` is 32 base62 characters from :mod:`secrets` (about 190 bits).
* ``<checksum>`` is the CRC32 of everything before it, in 6 base62 characters (as GitHub's
  tokens carry), so a typo is rejected before any database work.
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import NamedTuple

PREFIX = "kt_"
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 10
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6

_SECRET_RE = re.compile(
    rf"^{PREFIX}([0-9a-z]{{{ID_LENGTH}}})_([0-9A-Za-z]{{{RANDOM_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)
_ID_RE = re.compile(rf"[0-9a-z]{{{ID_LENGTH}}}")
SECRET_LENGTH = len(PREFIX) + ID_LENGTH + 1 + RANDOM_LENGTH + CHECKSUM_LENGTH


def checksum(body: str) -> str:
    """The CRC-32 of ``body`` in six base62 digits (62**6 > 2**32), unrolled: every verify of a
    well-formed secret computes it (a flood's guesses too)."""
    number = zlib.crc32(body.encode("ascii"))
    number, a = divmod(number, 62)
    number, b = divmod(number, 62)
    number, c = divmod(number, 62)
    number, d = divmod(number, 62)
    number, e = divmod(number, 62)
    return BASE62[number] + BASE62[e] + BASE62[d] + BASE62[c] + BASE62[b] + BASE62[a]


_BASE62_VALUE = {digit: value for value, digit in enumerate(BASE62)}


def _checksum_number(digits: str) -> int:
    """The number six base62 ``digits`` spell (what :func:`checksum` encoded): decoding the
    given checksum costs a third of encoding the computed one, on the path of every guess."""
    v = _BASE62_VALUE
    number = v[digits[0]]
    for digit in digits[1:]:
        number = number * 62 + v[digit]
    return number


def new_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def is_key_id(text: str) -> bool:
    return isinstance(text, str) and _ID_RE.fullmatch(text) is not None


def new_secret(key_id: str) -> str:
    if not is_key_id(key_id):
        raise ValueError("not a key ID")
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    body = f"{PREFIX}{key_id}_{random_part}"
    return body + checksum(body)


class ParsedSecret(NamedTuple):
    key_id: str


def parse_secret(text: str) -> ParsedSecret | None:
    """The key ID inside ``text`` if it is a well-formed secret with a good checksum, else None.

    Pure string work: no database, no argon2. Surrounding whitespace is tolerated because
    secrets are pasted and piped.
    """
    if not isinstance(text, str) or len(text) > SECRET_LENGTH + 8:
        return None
    stripped = text.strip()
    match = _SECRET_RE.match(stripped)
    if match is None:  # (then it is ASCII: the checksum is the CRC-32 of its body)
        return None
    body = stripped[:-CHECKSUM_LENGTH]
    if zlib.crc32(body.encode("ascii")) != _checksum_number(stripped[-CHECKSUM_LENGTH:]):
        return None
    return ParsedSecret(match.group(1))


def mask(key_id: str) -> str:
    """What a list shows in place of a secret: the prefix and ID, never the random part."""
    return f"{PREFIX}{key_id}_" + "•" * 6


def key_id_of(text: str) -> str | None:
    """The key ID inside ``text`` when ``text`` is a pasted secret with a good checksum, else
    None: the one test every place that asks for an ID uses to recognise a secret there (and
    then never shows more of it than :func:`elided`)."""
    parsed = parse_secret(text)
    return parsed.key_id if parsed else None


def looks_like_secret(text: str) -> bool:
    """Does ``text`` start like a secret (``kt_``)? Then it is not an ID, whatever else it is,
    and a face refuses it without echoing it when :func:`key_id_of` finds no key ID in it."""
    return isinstance(text, str) and text.strip().lower().startswith(PREFIX)


def secret_problem(text: str) -> str:
    """Why ``text`` is not a secret, in words that repeat nothing of it."""
    stripped = text.strip() if isinstance(text, str) else ""
    if _SECRET_RE.match(stripped):
        return "its checksum does not match: the secret is mistyped or altered"
    return (
        f"not a keytui secret (expected {PREFIX}, a {ID_LENGTH}-character key ID, _ and "
        f"{RANDOM_LENGTH + CHECKSUM_LENGTH} letters and digits)"
    )


def elided(key_id: str) -> str:
    """A secret as output shows it once recognised: ``kt_<id>_…``, never its random part."""
    return f"{PREFIX}{key_id}_…"


# What a scanner looks for: the prefix first (so the regex engine searches for the literal
# ``kt_``, hundreds of MB/s, where a leading ``\b`` would make it try every position), then the
# boundary before it as a lookbehind, the shape, and no word character after it. The checksum is
# checked afterwards, by :func:`key_id_of`, only for these candidates.
CANDIDATE = re.compile(
    rb"kt_(?<![0-9A-Za-z_]kt_)[0-9a-z]{%d}_[0-9A-Za-z]{%d}(?![0-9A-Za-z_])"
    % (ID_LENGTH, RANDOM_LENGTH + CHECKSUM_LENGTH)
)
