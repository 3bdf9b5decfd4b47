"""File bodies sent by the server: the ASGI `http.response.zerocopysend` extension, which
uvicorn lacks.

A blob kept as a local file goes to the socket from a worker thread, never through the
event loop or uvicorn's buffers. To a remote peer it goes by os.sendfile, straight from the
page cache. To a peer on the same host (a local proxy, a mirror, a CI job) it is copied
through a buffer instead: a loopback reader copies out of the segments it receives, and
reads segments that sendfile built from page-cache pages markedly slower than segments
built by a plain write (measured: one 64 MiB reader drains about 30% faster). Only
plain-HTTP connections get the extension: TLS has to encrypt the bytes in this process.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import select
import threading
from collections.abc import Awaitable, Callable
from typing import Any

EXTENSION = "http.response.zerocopysend"
# How long a worker thread waits for a reader to make room before handing back to the loop.
DRAIN_WAIT_MS = 20
# Bytes per copy to a loopback peer: large enough that the syscalls cost little.
COPY_BUFFER_BYTES = 1 << 20

Send = Callable[[Any], Awaitable[None]]


def offer(scope: dict[str, Any], cycle: Any) -> None:
    """Advertise the extension in a request's scope and answer its messages on uvicorn's
    request cycle (httptools), passing every other message on to the cycle's own send."""
    scope.setdefault("extensions", {})[EXTENSION] = {}
    cycle_send: Send = cycle.send

    async def send(message: Any) -> None:
        if message["type"] == EXTENSION:
            await _send_file(cycle, cycle_send, message)
        else:
            await cycle_send(message)

    cycle.send = send


async def _send_file(cycle: Any, cycle_send: Send, message: dict[str, Any]) -> None:
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"'{EXTENSION}' outside a response body")
    file_fd = message["file"].fileno()
    offset = message.get("offset")
    if offset is None:
        offset = os.lseek(file_fd, 0, os.SEEK_CUR)
    count = message.get("count")
    if count is None:
        count = os.fstat(file_fd).st_size - offset
    if cycle.chunked_encoding or count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    transport = cycle.transport
    # The status line and headers may still sit in the transport's buffer: they go first.
    while not cycle.disconnected and transport.get_write_buffer_size():
        await asyncio.sleep(0.001)
    if cycle.disconnected:
        return
    # A descriptor of our own: if the connection closes meanwhile, its number cannot be
    # reused for another socket or file while bytes are still being sent to it.
    socket_fd = os.dup(transport.get_extra_info("socket").fileno())
    try:
        await _copy(socket_fd, file_fd, offset, count, loopback=_is_loopback(transport))
    except (BrokenPipeError, ConnectionResetError):
        cycle.disconnected = True
        transport.close()
        return
    finally:
        os.close(socket_fd)
    cycle.expected_content_length -= count
    if not message.get("more_body", False):
        await cycle_send({"type": "http.response.body", "body": b"", "more_body": False})


async def _copy(socket_fd: int, file_fd: int, offset: int, count: int, *, loopback: bool) -> None:
    loop = asyncio.get_running_loop()
    while count:
        # On a worker thread: pages not in the page cache are read from disk meanwhile.
        sent = await loop.run_in_executor(
            None, _send_while_drained, socket_fd, file_fd, offset, count, loopback
        )
        offset += sent
        count -= sent
        if count:
            # The reader is slow: wait for room on the event loop, not on the thread.
            await _writable(loop, socket_fd)


def _send_while_drained(
    socket_fd: int, file_fd: int, offset: int, count: int, loopback: bool
) -> int:
    """Send from `offset` for as long as the reader keeps making room within
    DRAIN_WAIT_MS; returns the bytes sent. By sendfile, or to a loopback peer copied
    through the thread's buffer. A fast reader is served without a trip through the event
    loop per socket buffer."""
    buffer = _thread_buffer() if loopback else None
    poller = select.poll()
    poller.register(socket_fd, select.POLLOUT)
    sent = 0
    while sent < count:
        try:
            if buffer is None:
                step = os.sendfile(socket_fd, file_fd, offset + sent, count - sent)
            else:
                step = _copy_step(socket_fd, file_fd, offset + sent, count - sent, buffer)
        except BlockingIOError:
            step = -1
        if step == 0:
            raise RuntimeError("Response content shorter than Content-Length: file ended")
        if step > 0:
            sent += step
        if sent < count and not poller.poll(DRAIN_WAIT_MS):
            break
    return sent


_threads = threading.local()


def _thread_buffer() -> memoryview:
    """The worker thread's copy buffer: as many buffers as threads, however many pulls."""
    buffer = getattr(_threads, "buffer", None)
    if buffer is None:
        buffer = _threads.buffer = memoryview(bytearray(COPY_BUFFER_BYTES))
    return buffer


def _copy_step(socket_fd: int, file_fd: int, offset: int, count: int, buffer: memoryview) -> int:
    """Read up to one buffer at `offset` and write what the socket takes (like sendfile:
    the bytes sent, 0 at the end of the file, BlockingIOError when the socket is full)."""
    read = os.preadv(file_fd, [buffer[: min(count, len(buffer))]], offset)
    if read == 0:
        return 0
    return os.write(socket_fd, buffer[:read])


def _is_loopback(transport: Any) -> bool:
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return True  # a Unix socket: a peer on this host
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    # A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
