"""Whose request is it? The address a key's allowed hosts are checked against.

The peer (the TCP client), unless the peer is a trusted proxy: then the address that proxy
vouches for, from ``X-Real-IP``, else the right-most ``X-Forwarded-For`` entry that is not itself
a trusted proxy. Headers from an untrusted peer are ignored, so a client cannot claim another
address by sending them. A trusted proxy's header that is not an IP address gives no address
(``None``): a key limited to some hosts is then refused, never checked against the proxy's own
address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from .options import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1] or [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# Parsing an address with ipaddress and testing it against the trusted networks costs ~10 us,
# more than a warm verify; a server sees the same few peers (its gateways) again and again, so
# what each text came to is kept: at most SEEN texts of at most SEEN_LENGTH characters (an
# address with brackets and a port is shorter), so a client cannot grow it without bound.
SEEN = 4096
SEEN_LENGTH = 64


class ClientAddress:
    def __init__(self, trusted: Sequence[Network]) -> None:
        self.trusted = tuple(trusted)
        self._seen: dict[str, tuple[str | None, bool]] = {}

    def _look(self, text: str) -> tuple[str | None, bool]:
        """``text`` as a normalised address (None when it is not one) and whether it is a
        trusted proxy."""
        seen = self._seen.get(text)
        if seen is None:
            address = parse_ip(text)
            seen = (str(address) if address is not None else None, self.is_trusted(address))
            if len(text) <= SEEN_LENGTH:
                if len(self._seen) >= SEEN:
                    self._seen.clear()
                self._seen[text] = seen
        return seen

    def is_trusted(self, address: Address | None) -> bool:
        return address is not None and any(
            address.version == network.version and address in network for network in self.trusted
        )

    def resolve(
        self, peer: str | None, real_ip: str | None, forwarded_for: str | None
    ) -> str | None:
        """The client's address as text, or None when it cannot be known."""
        if peer is None:  # a Unix socket or a test transport: no address to check
            return None
        peer_text, peer_trusted = self._look(peer)
        if not peer_trusted:
            return peer_text if peer_text is not None else peer
        if real_ip is not None:
            return self._look(real_ip)[0]
        if forwarded_for is not None:
            entries = [entry for entry in forwarded_for.split(",") if entry.strip()]
            for entry in reversed(entries):
                text, trusted = self._look(entry)
                if text is None:
                    return None  # garbage where an address should be: nothing further is sure
                if not trusted:
                    return text
            if entries:  # every hop was a trusted proxy: the left-most is the origin
                return self._look(entries[0])[0]
        return peer_text
