"""How `serve` listens: the external address, TLS from the config folder, and a drain on SIGTERM."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess

from cargohold.config import ConfigError, Settings

log = logging.getLogger("cargohold")

TLS_CERT_FILE = "ssl.cert"
TLS_KEY_FILE = "ssl.key"
_WILDCARDS = ("0.0.0.0", "::", "")
# How long a multi-process server waits for its HTTP processes before starting its
# background workers anyway.
SERVING_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


def tls_files(settings: Settings, config_dir: str | Path) -> TlsFiles | None:
    """Quay's rule: https without EXTERNAL_TLS_TERMINATION serves ssl.cert/ssl.key itself."""
    folder = Path(config_dir)
    cert, key = folder / TLS_CERT_FILE, folder / TLS_KEY_FILE
    if settings.PREFERRED_URL_SCHEME != "https" or settings.EXTERNAL_TLS_TERMINATION:
        if cert.exists() and not settings.EXTERNAL_TLS_TERMINATION:
            log.warning(
                "%s is in the config folder but PREFERRED_URL_SCHEME is http: serving plain HTTP",
                TLS_CERT_FILE,
            )
        return None
    missing = [path.name for path in (cert, key) if not path.is_file()]
    if missing:
        raise ConfigError(
            f"PREFERRED_URL_SCHEME is https but {' and '.join(missing)} is missing from {folder}"
            " (or set EXTERNAL_TLS_TERMINATION: true behind a TLS-terminating proxy)"
        )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{cert.name} / {key.name}: not a usable certificate and key ({exc})"
        ) from exc
    return TlsFiles(cert, key)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_hostname(hostname: str, scheme: str) -> tuple[str, int]:
    host, sep, port = hostname.rpartition(":")
    if sep and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return hostname.strip("[]"), 443 if scheme == "https" else 80


def derived_hostname(host: str, port: int, scheme: str) -> str:
    """The address clients reach a server on that was given no SERVER_HOSTNAME."""
    name = socket.getfqdn() if host in _WILDCARDS else host
    if ":" in name:
        name = f"[{name}]"
    default_port = 443 if scheme == "https" else 80
    return name if port == default_port else f"{name}:{port}"


def settle_hostname(settings: Settings, host: str, port: int) -> None:
    """Fill in SERVER_HOSTNAME from the bind, or warn when the configured one points elsewhere."""
    if "SERVER_HOSTNAME" not in settings.model_fields_set:
        settings.SERVER_HOSTNAME = derived_hostname(host, port, settings.PREFERRED_URL_SCHEME)
        log.info("SERVER_HOSTNAME is not set: using %s", settings.SERVER_HOSTNAME)
        return
    named_host, named_port = _split_hostname(
        settings.SERVER_HOSTNAME, settings.PREFERRED_URL_SCHEME
    )
    # A name on another machine is a proxy's business; a loopback name is this server.
    points_here = _is_loopback(named_host) or named_host == host
    if points_here and named_port != port:
        log.warning(
            "SERVER_HOSTNAME is %s but the server listens on port %d: clients follow %s "
            "(Bearer realm, links) and will not reach it",
            settings.SERVER_HOSTNAME,
            port,
            settings.server_url,
        )
    elif _is_loopback(named_host) and host not in _WILDCARDS and not _is_loopback(host):
        log.warning(
            "SERVER_HOSTNAME is %s, a loopback name, but the server listens on %s",
            settings.SERVER_HOSTNAME,
            host,
        )


class Drain:
    """Shared between the signal handler and /health/instance: set once SIGTERM arrived, in
    this process or, for the HTTP processes of a multi-process server, in their supervisor,
    which says so with a marker file."""

    def __init__(self, marker: Path | None = None) -> None:
        self.started = threading.Event()
        self.marker = marker

    def is_set(self) -> bool:
        return self.started.is_set() or (self.marker is not None and self.marker.exists())


class DrainingServer(uvicorn.Server):
    """On SIGTERM, report unhealthy and keep serving for the drain period before stopping, so
    that a load balancer moves traffic away before the socket closes. uvicorn then stops
    accepting and waits for the requests in flight. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, drain: Drain, seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self.drain_seconds > 0 and not self.drain.started.is_set():
            self.drain.started.set()
            log.info("SIGTERM: draining for %s s before shutting down", self.drain_seconds)
            timer = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
            return
        super().handle_exit(sig, frame)


class DrainingSupervisor(Multiprocess):
    """The multi-process counterpart: on SIGTERM the supervisor marks the drain (its HTTP
    processes then answer /health/instance with 503) and keeps them serving for the drain
    period; then uvicorn stops them, and each finishes its requests in flight."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], marker: Path, seconds: float
    ) -> None:
        super().__init__(config, sockets)
        self.marker = marker
        self.drain_seconds = seconds
        self._when_serving: Callable[[], None] | None = None
        self._serving_deadline = 0.0

    def when_serving(self, callback: Callable[[], None]) -> None:
        """Call `callback` once every HTTP process has started serving, or after
        SERVING_WAIT_SECONDS whatever they do."""
        self._when_serving = callback
        self._serving_deadline = time.monotonic() + SERVING_WAIT_SECONDS

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        # In the supervisor's loop, which owns the pipes to the processes: pings from
        # another thread would mix up their answers.
        if self._when_serving is not None and not self.should_exit.is_set() and self._serving():
            callback, self._when_serving = self._when_serving, None
            try:
                callback()
            except Exception:
                # Stop the HTTP processes too rather than serve without background work.
                log.exception("the background workers did not start: stopping")
                self.should_exit.set()

    def _serving(self) -> bool:
        if time.monotonic() >= self._serving_deadline:
            return True
        return all(process.is_ready(timeout=1) for process in self.processes)

    def handle_term(self) -> None:
        if self.drain_seconds > 0 and not self.marker.exists():
            self.marker.touch()
            log.info("SIGTERM: draining for %s s before shutting down", self.drain_seconds)
            timer = threading.Timer(self.drain_seconds, self.should_exit.set)
            timer.daemon = True
            timer.start()
            return
        super().handle_term()
