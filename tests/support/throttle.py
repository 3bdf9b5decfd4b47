"""A TCP forwarder on loopback whose download direction can be slowed down at will, to keep
a client's transfer in flight for as long as a test needs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.server import free_port

CHUNK = 4096


class ThrottledProxy:
    """Forwards 127.0.0.1:<port> to `target`; `rate` (bytes per second, None for no limit)
    applies to what flows back to the client and may change while connections are open."""

    def __init__(self, target_host: str, target_port: int, rate: float | None = None) -> None:
        self.target = (target_host, target_port)
        self.rate = rate
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stopped = threading.Event()

    def start(self) -> ThrottledProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                sink.sendall(data)
                rate = self.rate
                if throttled and rate:
                    time.sleep(len(data) / rate)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
