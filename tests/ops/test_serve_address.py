"""`cargohold serve` listens on loopback unless --host says otherwise, and prints the address
it really listens on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.server import LiveServer


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on `port`, from the kernel's table."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, local_port = local.split(":")
        if state == "0A" and int(local_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


@pytest.mark.parametrize(("host", "expected"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_serve_listens_where_it_says(tmp_path: Path, host: str | None, expected: str) -> None:
    live = LiveServer(tmp_path / "server")
    live.listen_host = host
    try:
        live.start()
        assert _listening_addresses(live.port) == {expected}
        assert f"cargohold is serving on http://{expected}:{live.port}/" in live.log_text()
    finally:
        live.destroy()
