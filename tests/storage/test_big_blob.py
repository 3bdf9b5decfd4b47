"""A 2 GiB blob pushed in chunks and pulled back through /v2, with the server's memory watched."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import create_user
from tests.support.registry import pull_push, token_for, v2_client
from tests.support.server import LiveServer

BLOB_SIZE = 2 << 30
BLOCK = 1 << 20
CHUNK = 512 << 20
RSS_GROWTH_LIMIT = 64 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


class PeakRss:
    """Samples a process's resident memory in the background and keeps the highest value."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


class GeneratedBlob:
    """2 GiB of bytes made on the fly: a random first block, then one random block repeated."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.head = secrets.token_bytes(BLOCK)
        self.body = secrets.token_bytes(BLOCK)
        hasher = hashlib.sha256(self.head)
        for _ in range(size // BLOCK - 1):
            hasher.update(self.body)
        self.digest = "sha256:" + hasher.hexdigest()

    def blocks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end), block-aligned."""
        for offset in range(start, end, BLOCK):
            yield self.head if offset == 0 else self.body


@pytest.mark.timeout(900)
def test_two_gib_blob_push_and_pull_in_bounded_memory(server_factory) -> None:
    # Its own server: nothing else runs in it, and on S3 it streams the pull itself
    # instead of redirecting to the object store, so both directions are measured.
    server: LiveServer = server_factory({"FEATURE_PROXY_STORAGE": True})
    assert server.process is not None
    # Storage drivers load their machinery on first use (boto3's service models on S3):
    # a round trip first, so that what is measured is the streaming itself.
    assert httpx.get(server.url + "/health/endtoend").status_code == 200
    owner = create_user(server)
    repo = f"{owner.username}/big"
    blob = GeneratedBlob(BLOB_SIZE)
    token = token_for(server, (owner.username, owner.password), pull_push(repo))
    with v2_client(server, token) as client:
        client.timeout = 600
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        with PeakRss(server.process.pid) as memory:
            for start in range(0, BLOB_SIZE, CHUNK):
                end = min(start + CHUNK, BLOB_SIZE)
                response = client.patch(
                    location,
                    content=blob.blocks(start, end),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{end - 1}",
                        "Content-Length": str(end - start),
                    },
                )
                assert response.status_code == 202, response.text
                assert response.headers["Range"] == f"0-{end - 1}"
                location = response.headers["Location"]
            finished = client.put(location, params={"digest": blob.digest})
            assert finished.status_code == 201, finished.text

            hasher, received = hashlib.sha256(), 0
            with client.stream("GET", f"/v2/{repo}/blobs/{blob.digest}") as pulled:
                assert pulled.status_code == 200
                for data in pulled.iter_bytes(BLOCK):
                    hasher.update(data)
                    received += len(data)
        assert received == BLOB_SIZE
        assert "sha256:" + hasher.hexdigest() == blob.digest
    growth = memory.peak - memory.baseline
    assert growth < RSS_GROWTH_LIMIT, f"server RSS grew by {growth / (1 << 20):.1f} MiB"
