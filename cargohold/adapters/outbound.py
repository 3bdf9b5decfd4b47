"""The outbound guard: every connection the server opens to an address a user chose.

Mirrors and their proxies, build archives and git sources, webhooks and any later upstream
ask this module first. A host name is resolved and refused when any of its addresses is
loopback, link-local, private, multicast, unspecified, reserved or a cloud metadata address,
unless `SSRF_ALLOWED_HOSTS` allows it by name, address or CIDR range. Odd IPv4 spellings
(`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`) are read the way the C resolver reads
them before deciding, and IPv4-mapped IPv6 addresses are judged as the IPv4 they carry.

`guarded_client` builds an httpx client that connects to the address it checked (no second
DNS answer can differ) and checks every redirect the same way. Tools that resolve names
themselves (git, skopeo) are checked with `check_host` right before each run.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses that answer cloud metadata requests but are not caught by the range rules.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("100.100.100.200", "fd00:ec2::254")
)
_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
_HOST_NAME = re.compile(
    r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*$"
)


class OutboundRefused(ValueError):
    """The target may not be contacted. The message is safe to show to the user."""


class UnresolvedHost(OutboundRefused):
    """The host name has no address now; callers that only validate a setting may accept it."""


@dataclass(frozen=True)
class AllowList:
    """`SSRF_ALLOWED_HOSTS`: names (with an optional port), addresses and CIDR ranges."""

    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = str(entry).strip()
            if not text:
                continue
            network = _network(text)
            if network is not None:
                networks.append(network)
            else:
                names.add(_canonical_name(text))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str, port: int | None) -> bool:
        name = _canonical_name(host)
        return name in self.names or (port is not None and f"{name}:{port}" in self.names)

    def allows_address(self, address: IPAddress) -> bool:
        return any(
            address in network for network in self.networks if address.version == network.version
        )


def allow_list(settings: Any) -> AllowList:
    return AllowList.parse(getattr(settings, "SSRF_ALLOWED_HOSTS", None) or [])


def _network(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return None


def _canonical_name(host: str) -> str:
    name = host.strip().lower()
    if name.startswith("[") and "]" in name:
        return name[1 : name.index("]")] + name[name.index("]") + 1 :]
    return name.rstrip(".")


def parse_address(host: str) -> IPAddress | None:
    """The IP address `host` denotes, in any spelling a resolver accepts, or None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "%" in text:
        text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = _legacy_ipv4(text.rstrip("."))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`: the forms inet_aton reads."""
    if not text or not re.fullmatch(r"[0-9a-fA-FxX.]+", text) or not text[0].isdigit():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            address = embedded
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and address not in _METADATA_ADDRESSES
    )


def check_host(settings: Any, host: str, port: int | None = None) -> list[str]:
    """The addresses `host` resolves to, all of them allowed, or OutboundRefused."""
    allowed = allow_list(settings)
    name = _canonical_name(host)
    if not name:
        raise OutboundRefused("A host name is required")
    literal = parse_address(name)
    if literal is not None:
        if is_public(literal) or allowed.allows_address(literal) or allowed.allows_name(name, port):
            return [str(literal)]
        raise OutboundRefused(f"The host {host} is not allowed")
    if not _HOST_NAME.match(name):
        raise OutboundRefused(f"The host {host} is not a valid host name")
    if allowed.allows_name(name, port):
        return [str(address) for address in _resolve(name, port)]
    if name in _METADATA_NAMES:
        raise OutboundRefused(f"The host {host} is not allowed")
    addresses = _resolve(name, port)
    for address in addresses:
        if not is_public(address) and not allowed.allows_address(address):
            raise OutboundRefused(f"The host {host} is not allowed")
    return [str(address) for address in addresses]


def _resolve(name: str, port: int | None) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvedHost(f"The host {name} could not be resolved") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = parse_address(str(info[4][0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvedHost(f"The host {name} could not be resolved")
    return addresses


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int | None
    addresses: tuple[str, ...]


def check_url(settings: Any, url: str, schemes: Iterable[str] = ("http", "https")) -> Target:
    """Parse `url`, insist on one of `schemes` and a host, and check the host."""
    allowed_schemes = tuple(schemes)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused("The URL is not valid") from exc
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        raise OutboundRefused(f"The URL scheme must be one of: {', '.join(allowed_schemes)}")
    if not parts.hostname:
        raise OutboundRefused("The URL must name a host")
    port = port or _DEFAULT_PORTS.get(scheme)
    addresses = check_host(settings, parts.hostname, port)
    return Target(scheme, parts.hostname, port, tuple(addresses))


def check_proxy(settings: Any, url: str) -> None:
    """A proxy the user configured is checked like any other target."""
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    check_url(settings, text, ("http", "https", "socks5", "socks5h"))


# scp-style git sources: [user@]host:path, where the path does not start with '/'.
_SCP_SOURCE = re.compile(
    r"^(?:[A-Za-z0-9._~-]+@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?!/)(?P<path>.+)$"
)
GIT_SCHEMES = ("https", "http", "ssh", "git")


def check_git_source(settings: Any, source: str) -> Target:
    """A git URL (https, http, ssh, git) or an scp-style ssh source, aimed at an allowed host."""
    text = source.strip()
    if not text or text.startswith("-"):
        raise OutboundRefused("The build source must be a git URL")
    if "::" in text.split("/", 1)[0]:
        raise OutboundRefused("Git transport helpers (such as ext::) are not allowed")
    if "://" in text:
        return check_url(settings, text, GIT_SCHEMES)
    match = _SCP_SOURCE.match(text)
    if match is None or "/" in text.split(":", 1)[0]:
        raise OutboundRefused(
            "The build source must be an https, http, ssh or git URL, or user@host:path; "
            "local paths and file:// are not allowed"
        )
    host = match.group("host").strip("[]")
    addresses = check_host(settings, host, 22)
    return Target("ssh", host, 22, tuple(addresses))


# A further refusal on top of the guard: given the host as written and the addresses it resolved
# to, True refuses the request (webhooks, for one, may never reach the server itself).
HostRefusal = Callable[[str, list[str]], bool]


class GuardedTransport(httpx.BaseTransport):
    """Checks each request's host and connects to the address it checked."""

    def __init__(
        self, settings: Any, *, refuse: HostRefusal | None = None, **transport_options: Any
    ) -> None:
        self._settings = settings
        self._refuse = refuse
        self._inner = httpx.HTTPTransport(**transport_options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise OutboundRefused("The URL scheme must be one of: http, https")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        addresses = check_host(self._settings, url.host, port)
        if self._refuse is not None and self._refuse(url.host, addresses):
            raise OutboundRefused(f"The host {url.host} is not allowed")
        request.url = url.copy_with(host=addresses[0])
        request.extensions = {**request.extensions, "sni_hostname": url.host}
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def guarded_client(
    settings: Any, *, refuse: HostRefusal | None = None, **client_options: Any
) -> httpx.Client:
    """An httpx client whose every request, redirects included, passes the guard."""
    return httpx.Client(
        transport=GuardedTransport(settings, refuse=refuse), trust_env=False, **client_options
    )


class RequestFailed(Exception):
    """The request got no answer; the message names the transport's failure."""


def post_for_status(
    settings: Any,
    url: str,
    *,
    refuse: HostRefusal | None = None,
    client_options: dict[str, Any],
    **request_options: Any,
) -> int:
    """POST through the guard and return the answer's status. The body is streamed and
    closed unread, whatever its size. Raises OutboundRefused or RequestFailed."""
    with guarded_client(settings, refuse=refuse, **client_options) as client:
        request = client.build_request("POST", url, **request_options)
        try:
            response = client.send(request, stream=True)
            response.close()
        except httpx.HTTPError as exc:
            raise RequestFailed(f"{type(exc).__name__}: {exc}") from exc
    return response.status_code


class DownloadFailed(Exception):
    """A guarded download did not complete; the message (empty when the transport failed,
    whose own words would tell a refused port from a silent one) is safe to show."""


class DownloadTooLarge(DownloadFailed):
    """The download outgrew its size limit or its deadline."""


def download(settings: Any, url: str, target: Path, *, deadline: float, max_bytes: int) -> None:
    """GET `url` into `target` through the guard, redirects followed and checked.
    Raises OutboundRefused, DownloadTooLarge, or DownloadFailed for any other failure."""
    written = 0
    try:
        with (
            guarded_client(settings, timeout=max(deadline - time.monotonic(), 1)) as client,
            client.stream("GET", url, follow_redirects=True) as response,
            target.open("wb") as handle,
        ):
            if response.status_code != 200:
                raise DownloadFailed(f"HTTP {response.status_code}")
            for chunk in response.iter_bytes():
                written += len(chunk)
                if written > max_bytes or time.monotonic() > deadline:
                    raise DownloadTooLarge(f"more than {max_bytes} bytes or past the deadline")
                handle.write(chunk)
    except httpx.HTTPError as exc:
        raise DownloadFailed("") from exc
