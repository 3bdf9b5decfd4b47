"""Worker processes started apart from the server, as on a worker node."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT, LiveServer

WorkerStarter = Callable[..., subprocess.Popen[bytes]]


def worker_command(server: LiveServer, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "cargohold.cli",
        "--config-dir",
        str(server.workdir),
        "worker",
        *args,
    ]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(extra or {})}
    env.pop("CARGOHOLD_TEST_DB", None)
    env.pop("CARGOHOLD_TEST_STORAGE", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[WorkerStarter]:
    """`cargohold worker ARGS` against a server's config; every one is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(server: LiveServer, *args: str, env: dict[str, str] | None = None):
        log = open(tmp_path / f"worker{len(started)}.log", "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            worker_command(server, *args),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_env(env),
            cwd=server.workdir,
        )
        process.log_path = tmp_path / f"worker{len(started)}.log"  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
