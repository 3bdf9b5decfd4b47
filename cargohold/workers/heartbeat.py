"""Heartbeats for long claims.

A claim (a mirror sync, a queued build) carries an expiration a few heartbeats ahead; a
thread pushes it forward while the work runs. When the worker dies the pushing stops, the
expiration passes, and another worker may claim the work (WORKER_HEARTBEAT_TIMEOUT).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `beat` every `interval` seconds in a thread while the `with` block runs.
    `beat` returns False once the claim was lost (cancelled or taken over)."""

    def __init__(self, beat: Callable[[], bool], interval: float) -> None:
        self.beat = beat
        self.interval = interval
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.beat():
                    self.lost.set()
                    return
            except Exception:
                # A database hiccup: the claim stays ours until it expires, try again.
                log.warning("heartbeat failed; retrying", exc_info=True)
