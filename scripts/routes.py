"""Print cargohold's /api/v1 operations (method and path template), one per line.

    python scripts/routes.py                 # every /api/v1 operation
    python scripts/routes.py --prefix /      # every route, pages and registry helpers too
    python scripts/routes.py --against COVERAGE.md
        # which operations a coverage report lists as missing are present now

The application is built with the build, mirror, quota and superuser features on, as the
coverage counts assume; nothing is started and no database is touched.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cargohold.api.route_table import operations, shape  # noqa: E402
from cargohold.app import create_app  # noqa: E402
from cargohold.config import load_settings  # noqa: E402

FEATURES = {
    "SUPER_USERS": ["admin"],
    "FEATURE_BUILD_SUPPORT": True,
    "FEATURE_REPO_MIRROR": True,
    "FEATURE_QUOTA_MANAGEMENT": True,
}
# A row of a coverage table: | METHOD | `path` | nickname | gate | ...
_ROW = re.compile(r"^\|\s*(GET|POST|PUT|DELETE)\s*\|\s*`([^`]+)`\s*\|([^|]*)\|([^|]*)\|")


def _app():
    with tempfile.TemporaryDirectory() as folder:
        config = {**FEATURES, "DATA_DIR": folder, "SERVER_HOSTNAME": "localhost"}
        (Path(folder) / "config.yaml").write_text(yaml.safe_dump(config))
        return create_app(load_settings(folder, environ={}))


def _quay_shape(path: str) -> str:
    """A Quay path from a coverage report in cargohold's shape (`<x>` and `{x}` alike)."""
    return shape("/api/v1" + re.sub(r"<[^>]+>", "{x}", path))


def _against(report: Path, present: set[tuple[str, str]]) -> None:
    found = missing = 0
    for line in report.read_text().splitlines():
        row = _ROW.match(line)
        if row is None:
            continue
        method, path, nickname, gate = (part.strip() for part in row.groups())
        have = (method, _quay_shape(path)) in present
        found, missing = found + have, missing + (not have)
        mark = "present" if have else "missing"
        print(f"{mark:8} {method:6} /api/v1{path}  {nickname}  [{gate}]")
    print(f"\n{found} of the {found + missing} listed operations are present now", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="/api/v1")
    parser.add_argument("--against", type=Path, help="a coverage report with missing operations")
    args = parser.parse_args()
    listed = operations(_app(), args.prefix)
    if args.against:
        _against(args.against, {(method, shape(path)) for method, path in listed})
        return
    for method, path in listed:
        print(f"{method:6} {path}")
    print(f"\n{len(listed)} operations", file=sys.stderr)


if __name__ == "__main__":
    main()
