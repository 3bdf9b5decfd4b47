"""Helpers for running cargohold as an operator would: real clients, certificates, processes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def run(*args: str, timeout: int = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def podman_storage() -> Iterator[list[str]]:
    """Private container storage for podman (runroot paths must be short)."""
    root = Path(tempfile.mkdtemp(prefix="ch-", dir="/tmp"))
    yield ["--root", str(root / "r"), "--runroot", str(root / "rr"), "--storage-driver", "vfs"]
    shutil.rmtree(root, ignore_errors=True)
