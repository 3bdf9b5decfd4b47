"""Runs background workers: all of them in threads inside `cargohold serve`, or one alone.

A worker is a function doing one unit of work and returning how long to sleep before the
next; workers coordinate only through the database, so any number of processes may run them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from cargohold.config import Settings
from cargohold.storage.base import BlobStore

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    store: BlobStore
    stopping: threading.Event = field(default_factory=threading.Event)


WorkerFunction = Callable[[WorkerContext], float]

_REGISTRY: dict[str, WorkerFunction] = {}


def register(name: str) -> Callable[[WorkerFunction], WorkerFunction]:
    def decorator(function: WorkerFunction) -> WorkerFunction:
        _REGISTRY[name] = function
        return function

    return decorator


def load_workers() -> dict[str, WorkerFunction]:
    """Import every worker module so that its `register` calls run."""
    import importlib
    import pkgutil

    import cargohold.workers as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "runner":
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(_REGISTRY)


def run_loop(name: str, function: WorkerFunction, context: WorkerContext) -> None:
    log.info("worker %s started", name)
    while not context.stopping.is_set():
        try:
            delay = function(context)
        except Exception:
            log.exception("worker %s failed; retrying shortly", name)
            delay = 5.0
        context.stopping.wait(max(delay, 0.05))
    log.info("worker %s stopped", name)


class WorkerPool:
    """Every registered worker in its own daemon thread."""

    def __init__(self, context: WorkerContext, names: list[str] | None = None) -> None:
        self.context = context
        workers = load_workers()
        self.workers = {n: f for n, f in workers.items() if names is None or n in names}
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, function in self.workers.items():
            thread = threading.Thread(
                target=run_loop,
                args=(name, function, self.context),
                name=f"worker-{name}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self.context.stopping.set()
        for thread in self.threads:
            thread.join(timeout)
