"""Zero-copy file bodies: the ASGI `http.response.zerocopysend` extension, which uvicorn lacks.

A blob kept as a local file then goes from the page cache to the socket by os.sendfile,
never through Python buffers. Only plain-HTTP connections get it: TLS has to encrypt the
bytes in this process.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

EXTENSION = "http.response.zerocopysend"

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
        await _copy(socket_fd, file_fd, offset, count)
    except (BrokenPipeError, ConnectionResetError):
        cycle.disconnected = True
        transport.close()
        return
    finally:
        os.close(socket_fd)
    cycle.expected_content_length -= count
    if not message.get("more_body", False):
        await cycle_send({"type": "http.response.body", "body": b"", "more_body": False})


async def _copy(socket_fd: int, file_fd: int, offset: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    while count:
        try:
            # On a worker thread: pages not in the page cache are read from disk meanwhile.
            sent = await loop.run_in_executor(None, os.sendfile, socket_fd, file_fd, offset, count)
        except BlockingIOError:
            sent = 0
        else:
            if sent == 0:
                raise RuntimeError("Response content shorter than Content-Length: file ended")
        offset += sent
        count -= sent
        if count:
            # A short send means the socket's buffer is full: wait for room.
            await _writable(loop, socket_fd)


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
