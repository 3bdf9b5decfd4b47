"""`cargohold worker --list` and `cargohold worker all`, and a pool that outlives a worker's
crash."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cargohold import metrics
from cargohold.workers import runner
from tests.support.server import LiveServer, free_port
from tests.workers.conftest import WorkerStarter, worker_command, worker_env

EVERY_WORKER = {
    "autoprune",
    "builder",
    "email",
    "exportactionlogs",
    "gc",
    "notification",
    "notification_expiry",
    "quota_backfill",
    "quota_registry_size",
    "repomirror",
    "service_key_rotation",
}


def test_worker_list_names_and_describes_every_worker(server: LiveServer) -> None:
    done = subprocess.run(
        worker_command(server, "--list"), capture_output=True, text=True, env=worker_env()
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    names = {line.split()[0] for line in lines}
    assert names == EVERY_WORKER
    for line in lines:
        description = line.split(None, 1)[1]
        assert len(description) > 20, line


def test_unknown_worker_is_refused_with_the_known_names(server: LiveServer) -> None:
    done = subprocess.run(
        worker_command(server, "nosuch"), capture_output=True, text=True, env=worker_env()
    )
    assert done.returncode == 2
    assert "unknown worker 'nosuch'" in done.stderr
    assert "all" in done.stderr and "repomirror" in done.stderr


def test_worker_all_runs_every_worker_and_stops_on_sigterm(
    server: LiveServer, start_worker: WorkerStarter
) -> None:
    port = free_port()
    process = start_worker(server, "all", "--metrics-port", str(port))
    log_path = process.log_path  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    started: set[str] = set()
    while time.monotonic() < deadline and started != EVERY_WORKER:
        started = {
            line.split("worker ", 1)[1].split()[0]
            for line in log_path.read_text().splitlines()
            if line.endswith(" started") and "worker " in line
        }
        time.sleep(0.2)
    assert started == EVERY_WORKER, log_path.read_text()[-2000:]
    # A worker node's own metrics endpoint, on loopback.
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    families = {f.name for f in text_string_to_metric_families(scraped.text)}
    assert {"cargohold_queue_depth", "cargohold_mirror_sync_outcomes"} <= families
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert "worker repomirror stopped" in log_path.read_text()


class _Crash(BaseException):
    """Escapes run_loop's error handling, as a bug in the loop itself would: the thread dies."""


def test_pool_restarts_a_dead_worker_and_survives_failing_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"crashy": 0, "failing": 0}
    recovered = threading.Event()

    def crashy(context: runner.WorkerContext) -> float:
        calls["crashy"] += 1
        if calls["crashy"] == 1:
            raise _Crash
        recovered.set()
        return 60.0

    def failing(context: runner.WorkerContext) -> float:
        calls["failing"] += 1
        raise RuntimeError("broken pass")

    monkeypatch.setattr(runner, "_REGISTRY", {})
    monkeypatch.setattr(runner, "load_workers", lambda: dict(runner._REGISTRY))
    monkeypatch.setattr(runner, "RESTART_DELAY_SECONDS", 0.1)
    monkeypatch.setattr(runner, "FAILURE_DELAY_SECONDS", 0.05)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    runner.register("crashy", "dies once")(crashy)
    runner.register("failing", "always raises")(failing)
    failures_before = metrics.WORKER_FAILURES.labels("failing")._value.get()

    context = runner.WorkerContext(settings=None, session_factory=None, store=None)  # type: ignore[arg-type]
    pool = runner.WorkerPool(context)
    pool.start()
    try:
        assert recovered.wait(10), "the crashed worker was not started again"
        time.sleep(0.5)
        assert pool.restarts == {"crashy": 1, "failing": 0}
        assert calls["failing"] >= 3  # it keeps being retried, and never takes the pool down
        assert metrics.WORKER_FAILURES.labels("failing")._value.get() - failures_before >= 3
    finally:
        pool.stop(timeout=5)
    assert not any(thread.is_alive() for thread in pool.threads.values())
