"""What ``keytui serve`` was asked to do: one immutable value, handed to every worker.

Workers are separate processes started by uvicorn (``spawn``), so the options travel to them
through an environment variable as JSON; nothing secret is in them (a database URL's password
aside, which the worker needs as much as the parent: it is never logged).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import asdict, dataclass

ENV = "KEYTUI_SERVE_OPTIONS"
DEFAULT_KEY_HEADERS = ("x-api-key",)  # then Authorization (Bearer, else bare)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")  # an RFC 9110 token

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ServeOptions:
    db: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    trusted_proxies: tuple[str, ...] = ()  # CIDR networks, normalised
    key_headers: tuple[str, ...] = ()  # extra header names (lowercase), after the usual ones
    # Limits: a key is ~50 characters; nothing a verifier is sent needs more.
    max_body: int = 4096
    max_header_bytes: int = 8192
    graceful_seconds: float = 30.0
    inline_below: float = 0.001  # CPU seconds: a verify cheaper than this may run on the loop
    # The bench's reference endpoint (/reference: 200, no keytui): not a command-line option.
    reference_route: bool = False
    log_level: str = "info"

    def networks(self) -> tuple[Network, ...]:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeOptions:
        raw = (os.environ if environ is None else environ).get(ENV)
        if not raw:
            return cls()
        data = json.loads(raw)
        data["trusted_proxies"] = tuple(data.get("trusted_proxies", ()))
        data["key_headers"] = tuple(data.get("key_headers", ()))
        return cls(**data)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (all interfaces: 0.0.0.0)."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, not {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"not an IPv6 address: {host!r}") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    return host or "0.0.0.0", port


def parse_network(text: str) -> str:
    """A trusted proxy: an IP address or a CIDR network, normalised (``10.0.0.1/8`` -> its
    network)."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise ValueError(f"--trusted-proxy wants an IP address or CIDR, not {text!r}") from None


def parse_header_name(text: str) -> str:
    name = text.strip()
    if not _HEADER_NAME.match(name):
        raise ValueError(f"--key-header wants a header name, not {text!r}")
    return name.lower()
