"""A key's allowed hosts, parsed once per stored value: host names (``*.example.com`` matches
subdomains), IP addresses and CIDR networks; empty means any host."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AllowedHosts:
    """A key's allowed hosts, parsed once: empty means any host. Entries are host names
    (``*.example.com`` matches subdomains), IP addresses or CIDR networks, normalised by
    :func:`validate.host`."""

    networks: tuple[Network, ...] = ()
    suffixes: tuple[str, ...] = ()  # ".example.com" for "*.example.com"
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allowed: Iterable[str]) -> AllowedHosts:
        networks: list[Network] = []
        suffixes: list[str] = []
        names: set[str] = set()
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if entry.startswith("*."):
                    suffixes.append(entry[1:])
                else:
                    names.add(entry)
        return cls(tuple(networks), tuple(suffixes), frozenset(names))

    @property
    def any_host(self) -> bool:
        return not (self.networks or self.suffixes or self.names)

    def allows(self, host: str | None) -> bool:
        if self.any_host:
            return True
        if not host:
            return False
        host = host.strip().lower()
        if host in self.names or any(host.endswith(suffix) for suffix in self.suffixes):
            return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 (dual-stack sockets)
        return any(
            address.version == network.version and address in network for network in self.networks
        )


class Damaged(ValueError):
    """A key row verify cannot read (its ``expires_at`` or ``allowed_hosts`` edited by hand)."""


def parse_hosts(stored: str) -> AllowedHosts:
    try:
        entries = json.loads(stored)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser
        raise Damaged("allowed_hosts is not JSON") from exc
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise Damaged("allowed_hosts is not a list of text")
    return AllowedHosts.parse(entries)
