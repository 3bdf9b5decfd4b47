"""cargohold.zero_copy on a real uvicorn server with cargohold's protocol: file bodies, sent by
sendfile to remote peers and copied through a buffer to loopback ones, arrive whole and in
part, to slow readers too, on a connection kept for the next request; a reader leaving
mid-body costs the server nothing; TLS connections never get it."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cargohold import zero_copy
from cargohold.server import RegistryHttpProtocol
from cargohold.zero_copy import EXTENSION
from tests.support.server import app_in_thread

# Well past what a loopback socket buffers, so that sending has to wait for the reader.
FILE_SIZE = 48 * 1024 * 1024


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("zero-copy") / "blob"
    path.write_bytes(os.urandom(FILE_SIZE))
    return path


def _file_app(path: Path):
    """GET /?offset=&count= answers that window of the file, by the extension when offered."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        query = {k: int(v[0]) for k, v in parse_qs(scope["query_string"].decode()).items()}
        offset = query.get("offset", 0)
        count = query.get("count", FILE_SIZE - offset)
        offered = EXTENSION in scope.get("extensions", {})
        headers = [
            (b"content-length", str(count).encode()),
            (b"x-zero-copy", b"yes" if offered else b"no"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with open(path, "rb") as handle:
            if offered:
                message = {"type": EXTENSION, "file": handle, "offset": offset, "count": count}
                await send(message)
                return
            handle.seek(offset)
            await send({"type": "http.response.body", "body": handle.read(count)})

    return app


@pytest.fixture(params=["sendfile", "copy"])
def port(
    request: pytest.FixtureRequest, payload: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[int]:
    """The server, sending every body the way a remote peer (sendfile) or a loopback peer
    (copy) gets it; the test's own connections are all on loopback."""
    copying = request.param == "copy"
    copy_steps: list[int] = []
    copy_step = zero_copy._copy_step

    def counted_copy_step(*args: Any) -> int:
        copy_steps.append(1)
        return copy_step(*args)

    monkeypatch.setattr(zero_copy, "_is_loopback", lambda transport: copying)
    monkeypatch.setattr(zero_copy, "_copy_step", counted_copy_step)
    with app_in_thread(_file_app(payload), http=RegistryHttpProtocol) as served:
        yield served
    assert bool(copy_steps) == copying, "the body did not go the way the peer gets it"


def _expected(payload: Path, offset: int, count: int) -> bytes:
    with open(payload, "rb") as handle:
        handle.seek(offset)
        return handle.read(count)


def test_file_bodies_arrive_whole_and_in_part_on_one_connection(port: int, payload: Path) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        windows = [(0, FILE_SIZE), (12345, 7_000_000), (FILE_SIZE - 10, 10), (0, FILE_SIZE)]
        for offset, count in windows:
            connection.request("GET", f"/?offset={offset}&count={count}")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.headers["x-zero-copy"] == "yes"
            assert body == _expected(payload, offset, count)
        assert connection.sock is not None, "the server closed the kept connection"
    finally:
        connection.close()


def test_a_slow_reader_gets_every_byte(port: int, payload: Path) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        # The server fills the socket and has to wait until this reader comes back.
        time.sleep(1.0)
        received = bytearray()
        while _body_length(received) < FILE_SIZE:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            received += piece
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == payload.read_bytes()


def _body_length(received: bytearray) -> int:
    end = received.find(b"\r\n\r\n")
    return -1 if end < 0 else len(received) - end - 4


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_reader_leaving_mid_body_costs_nothing(port: int, payload: Path) -> None:
    # Warm the server up first: its first request opens descriptors it keeps.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/?count=10")
    assert connection.getresponse().read() == _expected(payload, 0, 10)
    connection.close()
    before = _open_descriptors()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
            assert sock.recv(1 << 20)
            # Closing with a reset, as a client that gives up does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 10
    while _open_descriptors() > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_descriptors() <= before
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/?offset=5&count=1000")
        response = connection.getresponse()
        assert response.read() == _expected(payload, 5, 1000)
    finally:
        connection.close()


class _Transport:
    def __init__(self, peer: Any) -> None:
        self._peer = peer

    def get_extra_info(self, name: str) -> Any:
        return self._peer if name == "peername" else None


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        (("127.0.0.1", 5000), True),
        (("127.8.9.10", 5000), True),
        (("::1", 5000, 0, 0), True),
        (("::ffff:127.0.0.1", 5000, 0, 0), True),
        (("::ffff:10.0.0.7", 5000, 0, 0), False),
        (("10.0.0.7", 5000), False),
        (("2001:db8::1", 5000, 0, 0), False),
        ("", True),
    ],
)
def test_loopback_peers_are_told_apart(peer: Any, loopback: bool) -> None:
    assert zero_copy._is_loopback(_Transport(peer)) is loopback


def _self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


def test_tls_connections_are_not_offered_the_extension(payload: Path, tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    app = _file_app(payload)
    options = {"http": RegistryHttpProtocol, "ssl_certfile": cert_file, "ssl_keyfile": key_file}
    context = ssl.create_default_context(cafile=cert_file)
    context.check_hostname = False
    with app_in_thread(app, **options) as port:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
        try:
            connection.request("GET", "/?offset=100&count=5000")
            response = connection.getresponse()
            assert response.headers["x-zero-copy"] == "no"
            assert response.read() == _expected(payload, 100, 5000)
        finally:
            connection.close()
