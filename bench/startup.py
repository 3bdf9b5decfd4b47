"""Start-up of `cargohold serve --workers 2` on a migrated SQLite database: wall time from exec
to the first answer of GET /v2/, the CPU seconds each process spent by then (steadier than
wall time on a busy machine) and each process's RSS once idle.

Run from the checkout root: `python -m bench.startup [ROUNDS]`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("cargohold"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in out.split()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_round() -> None:
    folder = tempfile.mkdtemp()
    subprocess.run(
        [CLI, "migrate", "--config-dir", folder], cwd=folder, check=True, capture_output=True
    )
    port = free_port()
    env = {**os.environ, "CARGOHOLD_SHUTDOWN_DRAIN_SECONDS": "0"}
    started = time.monotonic()
    server = subprocess.Popen(
        [CLI, "serve", "--config-dir", folder, "--port", str(port), "--workers", "2"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.01)
        wall = time.monotonic() - started
        processes = [server.pid, *children(server.pid)]
        cpu = [round(cpu_seconds(pid), 2) for pid in processes]
        time.sleep(5)
        rss = [rss_mib(pid) for pid in processes]
        print(f"first answer {wall:.2f} s; CPU s by then {cpu}; idle RSS MiB {rss}", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def main() -> None:
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        one_round()


if __name__ == "__main__":
    main()
