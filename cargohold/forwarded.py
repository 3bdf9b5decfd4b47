"""Forwarded / X-Forwarded-* headers, believed only from the proxies named in TRUSTED_PROXIES.

The client address and scheme seen by the rest of the code come from here: from the socket
peer, or, when that peer is a trusted proxy, from the last address in the forwarding chain
that is not itself a trusted proxy (anything to its left could be written by the client).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """IP addresses and CIDR ranges; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an IP address or CIDR range") from exc
    return networks


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _forwarded_elements(header: str) -> list[dict[str, str]]:
    """RFC 7239: comma-separated elements of semicolon-separated name=value pairs."""
    elements = []
    for element in header.split(","):
        pairs: dict[str, str] = {}
        for pair in element.split(";"):
            name, sep, value = pair.partition("=")
            if sep:
                pairs[name.strip().lower()] = value.strip().strip('"')
        elements.append(pairs)
    return elements


class TrustedProxies:
    """Applies a trusted proxy's headers to a request's scope (`apply`), before anything
    reads the client address or scheme."""

    def __init__(self, trusted: list[Network]) -> None:
        self.trusted = trusted
        # Requests come from few peers: decide each peer address once.
        self._trusted_peer = functools.lru_cache(maxsize=1024)(self._peer_is_trusted)

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return address is not None and any(address in network for network in self.trusted)

    def _peer_is_trusted(self, peer: str) -> bool:
        return self._is_trusted(_address(peer))

    def _chain(self, headers: dict[bytes, str]) -> tuple[list[str], list[str]]:
        """Client addresses and schemes, nearest hop last; Forwarded wins over X-Forwarded-*."""
        if b"forwarded" in headers:
            elements = _forwarded_elements(headers[b"forwarded"])
            return [e.get("for", "") for e in elements], [e.get("proto", "") for e in elements]
        addresses = [a for a in headers.get(b"x-forwarded-for", "").split(",") if a.strip()]
        schemes = [s.strip() for s in headers.get(b"x-forwarded-proto", "").split(",") if s]
        return addresses, schemes

    def apply(self, scope: Scope) -> None:
        peer = scope.get("client")
        if not peer or not self.trusted or not self._trusted_peer(peer[0]):
            return
        headers = {
            name: value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto")
        }
        if not headers:
            return
        addresses, schemes = self._chain(headers)
        # Walk from the nearest hop outwards while the hops are our own proxies.
        client = None
        for index in range(len(addresses) - 1, -1, -1):
            address = _address(addresses[index])
            if address is None:
                break
            client = address
            if not self._is_trusted(address):
                break
        if client is not None:
            scope["client"] = (str(client), 0)
        # The scheme the outermost trusted proxy was reached with.
        scheme = schemes[-1].lower() if schemes else ""
        if scheme in ("http", "https"):
            scope["scheme"] = scheme
