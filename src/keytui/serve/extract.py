"""Where the key is in a request: ``x-api-key``, else ``Authorization: Bearer <key>``, else a
bare ``Authorization: <key>`` (Patchworks' style), else the headers named by ``--key-header``, in
that order. A header sent twice is ambiguous (a gateway and its upstream could each read a
different one) and counts as malformed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple


class Ambiguous:
    """A key header sent more than once."""

    __slots__ = ()


AMBIGUOUS = Ambiguous()
Found = str | Ambiguous | None


class RequestHeaders(NamedTuple):
    """The few headers serve reads, gathered in one pass over the raw ones."""

    api_key: Found = None
    authorization: Found = None
    real_ip: str | None = None
    forwarded_for: str | None = None
    extra: tuple[Found, ...] = ()


def read_headers(
    raw: Iterable[tuple[bytes, bytes]], key_headers: Sequence[bytes] = ()
) -> RequestHeaders:
    """``key_headers``: the ``--key-header`` names, lowercase, as bytes (the server's headers
    come lowercase; names are compared as bytes, only the values kept are decoded)."""
    api_key: Found = None
    authorization: Found = None
    real_ip: str | None = None
    forwarded: list[str] = []
    extra: list[Found] | None = [None] * len(key_headers) if key_headers else None
    for name, value in raw:
        if name == b"x-api-key":
            api_key = _once(api_key, value)
        elif name == b"authorization":
            authorization = _once(authorization, value)
        elif name == b"x-real-ip":
            real_ip = value.decode("latin-1")  # the last one: what the nearest proxy set
        elif name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif extra is not None and name in key_headers:
            index = key_headers.index(name)
            extra[index] = _once(extra[index], value)
    return RequestHeaders(
        api_key,
        authorization,
        real_ip,
        ",".join(forwarded) if forwarded else None,
        tuple(extra) if extra is not None else (),
    )


def _once(seen: Found, value: bytes) -> str | Ambiguous:
    return AMBIGUOUS if seen is not None else value.decode("latin-1")


def find_key(headers: RequestHeaders) -> Found:
    """The key's text, ``None`` when no header carries one, or ``AMBIGUOUS``."""
    if headers.api_key is not None:
        return headers.api_key
    if headers.authorization is not None:
        value = headers.authorization
        if isinstance(value, Ambiguous):
            return value
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            return rest.strip()
        if not rest:  # a bare token: Authorization: kt_...
            return scheme
        # another scheme (Basic ...): not a key; the extra headers may still carry one
    for extra in headers.extra:
        if extra is not None:
            return extra
    return None
