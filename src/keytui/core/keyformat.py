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
from dataclasses import dataclass

PREFIX = "kt_"
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 10
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6

_SECRET_RE = re.compile(
    rf"^{PREFIX}([0-9a-z]{{{ID_LENGTH}}})_([0-9A-Za-z]{{{RANDOM_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})$"
)
_ID_RE = re.compile(rf"^[0-9a-z]{{{ID_LENGTH}}}$")
SECRET_LENGTH = len(PREFIX) + ID_LENGTH + 1 + RANDOM_LENGTH + CHECKSUM_LENGTH


def base62(number: int, width: int) -> str:
    """``number`` in base62, left-padded with ``0`` to ``width`` characters."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def checksum(body: str) -> str:
    return base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def new_key_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def is_key_id(text: str) -> bool:
    return bool(_ID_RE.match(text))


def new_secret(key_id: str) -> str:
    if not is_key_id(key_id):
        raise ValueError("not a key ID")
    random_part = "".join(secrets.choice(BASE62) for _ in range(RANDOM_LENGTH))
    body = f"{PREFIX}{key_id}_{random_part}"
    return body + checksum(body)


@dataclass(frozen=True)
class ParsedSecret:
    key_id: str


def parse_secret(text: str) -> ParsedSecret | None:
    """The key ID inside ``text`` if it is a well-formed secret with a good checksum, else None.

    Pure string work: no database, no argon2. Surrounding whitespace is tolerated because
    secrets are pasted and piped.
    """
    if not isinstance(text, str) or len(text) > SECRET_LENGTH + 8:
        return None
    text = text.strip()
    match = _SECRET_RE.match(text)
    if match is None:
        return None
    body = text[:-CHECKSUM_LENGTH]
    if checksum(body) != match.group(3):
        return None
    return ParsedSecret(key_id=match.group(1))


def mask(key_id: str) -> str:
    """What a list shows in place of a secret: the prefix and ID, never the random part."""
    return f"{PREFIX}{key_id}_" + "•" * 6
