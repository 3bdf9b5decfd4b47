"""scripts/routes.py: the operation listing the coverage counts are redone with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "routes.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_lists_each_api_operation_once() -> None:
    result = _run()
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    assert ["GET", "/api/v1/repository/{repository:repopath}"] in lines
    assert ["POST", "/api/v1/repository/{repository:repopath}/exportlogs"] in lines
    # Trailing-slash twins and HEAD are not separate operations.
    assert ["GET", "/api/v1/repository/{repository:repopath}/tag"] not in lines
    assert not any(method == "HEAD" for method, _ in lines)
    assert all(path.startswith("/api/v1") for _, path in lines)
    assert len(lines) == len({tuple(line) for line in lines})
    assert result.stderr.strip() == f"{len(lines)} operations"


def test_marks_report_rows_present_or_missing(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text(
        "| method | path | nickname | gate |\n|---|---|---|---|\n"
        "| POST | `/user/exportlogs` | exportUserLogs | LOG_EXPORT |\n"
        "| GET | `/repository/{repo}/manifest/{digest}/labels` | listManifestLabels | - |\n"
        "| GET | `/plans/` | listPlans | BILLING (off) |\n"
    )
    result = _run("--against", str(report))
    assert result.returncode == 0, result.stderr
    marks = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert marks == ["present", "present", "missing"]
    assert "2 of the 3 listed operations are present now" in result.stderr
