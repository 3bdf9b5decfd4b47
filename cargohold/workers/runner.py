"""Runs background workers: all of them in threads (inside `cargohold serve` or
`cargohold worker all`), or one alone.

A worker is a function doing one unit of work and returning how long to sleep before the
next; workers coordinate only through the database, so any number of processes may run them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from cargohold.config import Settings
from cargohold.db.session import SessionFactory
from cargohold.storage.base import BlobStore

log = logging.getLogger(__name__)

# A worker whose thread died is started again after this pause, so a crash loop stays slow.
RESTART_DELAY_SECONDS = 5.0
FAILURE_DELAY_SECONDS = 5.0


@dataclass
class WorkerContext:
    settings: Settings
    session_factory: SessionFactory
    store: BlobStore
    stopping: threading.Event = field(default_factory=threading.Event)


WorkerFunction = Callable[[WorkerContext], float]


@dataclass(frozen=True)
class Worker:
    name: str
    function: WorkerFunction
    description: str


_REGISTRY: dict[str, Worker] = {}


def register(name: str, description: str) -> Callable[[WorkerFunction], WorkerFunction]:
    def decorator(function: WorkerFunction) -> WorkerFunction:
        _REGISTRY[name] = Worker(name, function, description)
        return function

    return decorator


# One pass of a periodic worker; it may return a delay shorter than the period.
WorkerPass = Callable[[WorkerContext], float | None]


def periodic(
    period_setting: str, enabled: Callable[[Settings], bool]
) -> Callable[[WorkerPass], WorkerFunction]:
    """A worker running its pass when `enabled(settings)` holds, then sleeping for the
    setting `period_setting` (seconds), or less when the pass asks for it."""

    def decorator(run_pass: WorkerPass) -> WorkerFunction:
        @functools.wraps(run_pass)
        def worker(context: WorkerContext) -> float:
            period = float(getattr(context.settings, period_setting))
            if not enabled(context.settings):
                return period
            sooner = run_pass(context)
            return period if sooner is None else min(sooner, period)

        return worker

    return decorator


def load_workers() -> dict[str, Worker]:
    """Import every worker module so that its `register` calls run."""
    import importlib
    import pkgutil

    import cargohold.workers as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("runner", "heartbeat"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def run_loop(worker: Worker, context: WorkerContext) -> None:
    from cargohold import metrics

    log.info("worker %s started", worker.name)
    while not context.stopping.is_set():
        try:
            delay = worker.function(context)
        except Exception:
            log.exception("worker %s failed; retrying shortly", worker.name)
            metrics.WORKER_FAILURES.labels(worker.name).inc()
            delay = FAILURE_DELAY_SECONDS
        context.stopping.wait(max(delay, 0.05))
    log.info("worker %s stopped", worker.name)


class WorkerPool:
    """Every registered worker (or the named ones) in its own daemon thread; a thread that
    dies is logged and started again, so one broken worker never stops the others."""

    def __init__(self, context: WorkerContext, names: list[str] | None = None) -> None:
        self.context = context
        workers = load_workers()
        self.workers = {n: w for n, w in workers.items() if names is None or n in names}
        self.threads: dict[str, threading.Thread] = {}
        self.restarts: dict[str, int] = dict.fromkeys(self.workers, 0)
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        for name in self.workers:
            self._start_one(name)
        self._supervisor = threading.Thread(
            target=self._supervise, name="worker-supervisor", daemon=True
        )
        self._supervisor.start()

    def _start_one(self, name: str) -> None:
        thread = threading.Thread(
            target=run_loop,
            args=(self.workers[name], self.context),
            name=f"worker-{name}",
            daemon=True,
        )
        thread.start()
        self.threads[name] = thread

    def _supervise(self) -> None:
        while not self.context.stopping.wait(RESTART_DELAY_SECONDS):
            for name, thread in list(self.threads.items()):
                if not thread.is_alive() and not self.context.stopping.is_set():
                    log.error("worker %s died; starting it again", name)
                    self.restarts[name] += 1
                    self._start_one(name)

    def wait(self) -> None:
        """Block until the pool is stopped (the `cargohold worker` command's main thread)."""
        while not self.context.stopping.wait(1.0):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        self.context.stopping.set()
        for thread in self.threads.values():
            thread.join(timeout)
